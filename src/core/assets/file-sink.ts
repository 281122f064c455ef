import { writev } from "node:fs";
import { Writable } from "node:stream";
import { DatasphereError } from "../errors";
import type { StreamHash } from "./stream-hash";

/**
 * Writes chunks at explicit positions of an open file and feeds them to the hash while the write
 * runs in the thread pool. `written` counts bytes confirmed on disk; `hashed` bytes given to the hash.
 */
export class HashingFileSink extends Writable {
  written: number;
  hashed: number;
  readonly start: number;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly fd: number,
    start: number,
    private readonly hash: StreamHash | undefined,
    private readonly limit: number | undefined,
    private readonly onBytes?: (n: number) => void,
  ) {
    super({ highWaterMark: 4 << 20 });
    this.start = start;
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
    let length = 0;
    for (const b of buffers) length += b.length;
    if (this.limit !== undefined && this.hashed + length > this.limit) {
      callback(new DatasphereError("SIZE", `server sent more than the ${this.limit} bytes file:size announces`));
      return;
    }
    const writing = writeAll(this.fd, buffers, this.written);
    if (this.hash) for (const b of buffers) this.hash.update(b);
    this.hashed += length;
    const hashing = this.hash?.ready();
    const running = hashing ? Promise.all([writing, hashing]).then(() => undefined) : writing;
    this.inFlight = running;
    running.then(
      () => {
        this.written += length;
        this.onBytes?.(length);
        callback();
      },
      (error: Error) => callback(error),
    );
  }
}

/** One writev for all buffers (no copy), continuing after a short write. */
function writeAll(fd: number, buffers: Buffer[], position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (rest: Buffer[], at: number) => {
      writev(fd, rest, at, (error, n) => {
        if (error) return reject(error);
        let left = n;
        let i = 0;
        while (i < rest.length && left >= rest[i].length) left -= rest[i++].length;
        if (i >= rest.length) return resolve();
        step([rest[i].subarray(left), ...rest.slice(i + 1)], at + n);
      });
    };
    step(buffers, position);
  });
}
