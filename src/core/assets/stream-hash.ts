import { createHash, type Hash } from "node:crypto";

/** An incremental hash; `ready()` gives backpressure to implementations that hash asynchronously. */
export interface StreamHash {
  update(chunk: Buffer): void;
  /** A promise while too much data waits to be hashed (backpressure), else undefined. */
  ready(): Promise<void> | undefined;
  digest(): Promise<string>;
  dispose(): void;
}

/**
 * Hashing on the calling thread. A worker-thread variant was measured (bench/asset.ts, 200 MB, loaded
 * 2-core machine): it used 40% more CPU in all (copies, messages) and was slower, so it is not used.
 */
export class InlineHash implements StreamHash {
  private readonly hash: Hash;
  constructor(algorithm: string) {
    this.hash = createHash(algorithm);
  }
  update(chunk: Buffer): void {
    this.hash.update(chunk);
  }
  ready(): undefined {
    return undefined;
  }
  digest(): Promise<string> {
    return Promise.resolve(this.hash.digest("hex"));
  }
  dispose(): void {}
}

export function createStreamHash(algorithm: string): StreamHash {
  return new InlineHash(algorithm);
}
