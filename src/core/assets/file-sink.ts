import { writev } from "node:fs";
import { Writable } from "node:stream";
import type { StreamHash } from "./stream-hash";

/** Bytes handed to the thread pool and not yet confirmed, before the sink asks for a pause. */
const MAX_BYTES_IN_FLIGHT = 4 * 1024 * 1024;
/** Chunks are gathered up to this size for one writev: one thread-pool request per MiB, not per 64 KiB. */
const GATHER_BYTES = 1024 * 1024;
/** ...or for at most this long, so a slow stream still reaches the disk (and the progress count) soon. */
const GATHER_MS = 20;

/**
 * Writes chunks at explicit positions of an open file and feeds them to the hash on the way. Several
 * positional writes may run at once in the thread pool, so disk latency does not stall the socket;
 * `written` counts the bytes confirmed on disk without a gap, `hashed` the bytes given to the hash.
 */
export class HashingFileSink extends Writable {
  written: number;
  hashed: number;
  readonly start: number;
  private submitted: number;
  private readonly queue: Array<{ end: number; state: "running" | "done" | "failed" }> = [];
  private running = 0;
  private waiting?: () => void;
  private failure?: Error;
  private idle: Array<() => void> = [];
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  private gatherTimer?: NodeJS.Timeout;

  constructor(
    private readonly fd: number,
    start: number,
    private readonly hash: StreamHash | undefined,
    /** Most bytes the file may reach (absolute position), and the error for a server that sends more. */
    private readonly limit: { bytes: number; error: () => Error } | undefined,
    private readonly onBytes?: (n: number) => void,
  ) {
    super({ highWaterMark: 1 << 20 });
    this.start = start;
    this.written = start;
    this.hashed = start;
    this.submitted = start;
  }

  /** Resolves once no write is running (also after an error), so the file is quiet. */
  settled(): Promise<void> {
    return this.running === 0 ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeBuffers([chunk], callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeBuffers(chunks.map((c) => c.chunk), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.flush();
    void this.settled().then(() => callback(this.failure));
  }

  /** On an error upstream, what was received still goes to disk, so a resume starts after it. */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.flush();
    void this.settled().then(() => callback(error));
  }

  private writeBuffers(buffers: Buffer[], callback: (error?: Error | null) => void): void {
    if (this.failure) return callback(this.failure);
    let length = 0;
    for (const b of buffers) length += b.length;
    if (this.limit !== undefined && this.hashed + length > this.limit.bytes) {
      callback(this.limit.error());
      return;
    }
    this.gathered.push(...buffers);
    this.gatheredBytes += length;
    if (this.gatheredBytes >= GATHER_BYTES) this.flush();
    else this.gatherTimer ??= setTimeout(() => this.flush(), GATHER_MS);
    if (this.hash) for (const b of buffers) this.hash.update(b);
    this.hashed += length;
    const busy = this.hash?.ready();
    const proceed = () => {
      if (this.submitted - this.written < MAX_BYTES_IN_FLIGHT || this.failure) callback(this.failure);
      else this.waiting = () => callback(this.failure);
    };
    if (busy) busy.then(proceed, callback);
    else proceed();
  }

  private flush(): void {
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
    if (this.gatheredBytes === 0 || this.failure) return;
    const buffers = this.gathered;
    const slot: { end: number; state: "running" | "done" | "failed" } = { end: this.submitted + this.gatheredBytes, state: "running" };
    this.queue.push(slot);
    this.running += 1;
    writeAll(this.fd, buffers, this.submitted).then(
      () => {
        slot.state = "done";
        this.running -= 1;
        this.advance();
      },
      (error: Error) => {
        // A failed write stays in the queue: `written` never moves past the gap it leaves.
        slot.state = "failed";
        this.failure ??= error;
        this.running -= 1;
        this.advance();
      },
    );
    this.submitted += this.gatheredBytes;
    this.gathered = [];
    this.gatheredBytes = 0;
  }

  /** Moves `written` over the writes confirmed without a gap; wakes a paused writer and idle waiters. */
  private advance(): void {
    const before = this.written;
    while (this.queue.length > 0 && this.queue[0].state === "done") this.written = this.queue.shift()!.end;
    if (this.written > before) {
      this.hash?.confirmed(this.written);
      this.onBytes?.(this.written - before);
    }
    if (this.waiting && (this.submitted - this.written < MAX_BYTES_IN_FLIGHT || this.failure)) {
      const wake = this.waiting;
      this.waiting = undefined;
      wake();
    }
    if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
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
