import { write } from "node:fs";
import type { Hash } from "node:crypto";
import { Writable } from "node:stream";
import { DatasphereError } from "../errors";

/**
 * Writes chunks at explicit positions of an open file and feeds them to the hash while the write
 * runs in the thread pool. `written` counts bytes confirmed on disk; `hashed` bytes given to the hash.
 */
export class HashingFileSink extends Writable {
  written: number;
  hashed: number;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly fd: number,
    start: number,
    private readonly hash: Hash | undefined,
    private readonly limit: number | undefined,
    private readonly onBytes?: (n: number) => void,
  ) {
    super({ highWaterMark: 1 << 20 });
    this.written = start;
    this.hashed = start;
  }

  /** Resolves once no write is running (also after an error), so the file is quiet. */
  settled(): Promise<void> {
    return this.inFlight.catch(() => undefined);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeBuffers([chunk], callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeBuffers(chunks.map((c) => c.chunk), callback);
  }

  private writeBuffers(buffers: Buffer[], callback: (error?: Error | null) => void): void {
    const data = buffers.length === 1 ? buffers[0] : Buffer.concat(buffers);
    if (this.limit !== undefined && this.hashed + data.length > this.limit) {
      callback(new DatasphereError("SIZE", `server sent more than the ${this.limit} bytes file:size announces`));
      return;
    }
    const position = this.written;
    const running = writeAll(this.fd, data, position);
    this.hash?.update(data);
    this.hashed += data.length;
    this.inFlight = running;
    running.then(
      () => {
        this.written += data.length;
        this.onBytes?.(data.length);
        callback();
      },
      (error: Error) => callback(error),
    );
  }
}

function writeAll(fd: number, data: Buffer, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (offset: number) => {
      write(fd, data, offset, data.length - offset, position + offset, (error, n) => {
        if (error) return reject(error);
        if (offset + n < data.length) step(offset + n);
        else resolve();
      });
    };
    step(0);
  });
}
