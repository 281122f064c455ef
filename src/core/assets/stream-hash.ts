import { createHash, type Hash } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { Worker } from "node:worker_threads";

/**
 * An incremental hash of a file being written. `update` feeds bytes as they arrive (inline hashing);
 * `confirmed` tells how far the file is on disk (hashing that reads the file back); `digest(length)`
 * gives the hex digest of the file's first `length` bytes.
 */
export interface StreamHash {
  /** True when the hash reads the file itself, so it stays valid whatever happened in memory. */
  readonly followsFile: boolean;
  update(chunk: Buffer): void;
  confirmed(position: number): void;
  /** A promise while the hash lags too far behind, else undefined. */
  ready(): Promise<void> | undefined;
  digest(length: number): Promise<string>;
  dispose(): Promise<void>;
}

/** Hashing on the calling thread, chunk by chunk: for small files, where a worker costs more than it saves. */
export class InlineHash implements StreamHash {
  readonly followsFile = false;
  private readonly hash: Hash;
  constructor(algorithm: string) {
    this.hash = createHash(algorithm);
  }
  update(chunk: Buffer): void {
    this.hash.update(chunk);
  }
  confirmed(): void {}
  ready(): undefined {
    return undefined;
  }
  digest(): Promise<string> {
    return Promise.resolve(this.hash.digest("hex"));
  }
  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { readSync } = require("node:fs");
const hash = require("node:crypto").createHash(workerData.algorithm);
const buffer = Buffer.allocUnsafe(1 << 20);
let position = 0;
function catchUp(upTo) {
  while (position < upTo) {
    const n = readSync(workerData.fd, buffer, 0, Math.min(buffer.length, upTo - position), position);
    if (n === 0) throw new Error("file shorter than expected");
    hash.update(buffer.subarray(0, n));
    position += n;
  }
}
parentPort.on("message", (m) => {
  try {
    catchUp(m.upTo);
    if (m.digest) parentPort.postMessage({ hex: hash.digest("hex") });
    else parentPort.postMessage({ hashed: position });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
});
`;

/** How far the worker may lag behind the confirmed bytes before the download waits for it. */
const MAX_LAG_BYTES = 32 * 1024 * 1024;

/**
 * Hashing on a worker thread that reads the file back (from the page cache) behind the writer: the
 * event loop only receives and writes, the hashing runs on another core, nothing is copied in
 * memory, and the digest is always that of the bytes on disk.
 */
export class FileReadbackHash implements StreamHash {
  readonly followsFile = true;
  private readonly fd: number;
  private readonly worker: Worker;
  private posted = 0;
  private hashed = 0;
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private digestWaiter?: { resolve: (hex: string) => void; reject: (e: Error) => void };
  private failure?: Error;
  private disposed?: Promise<void>;

  constructor(algorithm: string, path: string) {
    this.fd = openSync(path, "r");
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { algorithm, fd: this.fd } });
    this.worker.unref();
    this.worker.on("message", (m: { hashed?: number; hex?: string; error?: string }) => {
      if (m.error !== undefined) this.fail(new Error(`hash worker: ${m.error}`));
      else if (m.hex !== undefined) {
        this.digestWaiter?.resolve(m.hex);
        this.digestWaiter = undefined;
      } else if (m.hashed !== undefined) {
        this.hashed = m.hashed;
        if (this.posted - this.hashed < MAX_LAG_BYTES) for (const w of this.waiters.splice(0)) w.resolve();
      }
    });
    this.worker.on("error", (error) => this.fail(error));
    this.worker.on("exit", () => this.fail(new Error("hash worker stopped")));
  }

  update(): void {}

  confirmed(position: number): void {
    if (position <= this.posted || this.failure) return;
    this.posted = position;
    this.worker.postMessage({ upTo: position });
  }

  ready(): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.posted - this.hashed < MAX_LAG_BYTES) return undefined;
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  digest(length: number): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.digestWaiter = { resolve, reject };
      this.posted = Math.max(this.posted, length);
      this.worker.postMessage({ upTo: length, digest: true });
    });
  }

  /** Stops the worker and closes its file (before a rename: some systems refuse to rename open files). */
  dispose(): Promise<void> {
    this.failure ??= new Error("hash disposed");
    this.disposed ??= this.worker.terminate().then(
      () => closeSync(this.fd),
      () => closeSync(this.fd),
    );
    return this.disposed;
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const w of this.waiters.splice(0)) w.reject(error);
    this.digestWaiter?.reject(error);
    this.digestWaiter = undefined;
  }
}

/** Files at least this large (or of unknown size) are hashed by reading them back on a worker thread. */
export const READBACK_HASH_THRESHOLD = 16 * 1024 * 1024;

export function createStreamHash(algorithm: string, path: string, expectedSize: number | undefined, threshold = READBACK_HASH_THRESHOLD): StreamHash {
  return expectedSize === undefined || expectedSize >= threshold ? new FileReadbackHash(algorithm, path) : new InlineHash(algorithm);
}
