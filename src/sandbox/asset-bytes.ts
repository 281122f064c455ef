import { createCipheriv, createHash, type Cipher } from "node:crypto";

/**
 * Deterministic asset bodies of any size, streamed: the bytes are the AES-128-CTR keystream of a
 * key derived from the content id, so any offset can be produced without generating what precedes
 * it (Range requests), and a multi-GB body never sits in memory.
 */
export type ChecksumAlgorithm = "sha2-256" | "sha3-256";

const MULTIHASH_PREFIX: Record<ChecksumAlgorithm, string> = { "sha2-256": "1220", "sha3-256": "1620" };
const NODE_HASH: Record<ChecksumAlgorithm, string> = { "sha2-256": "sha256", "sha3-256": "sha3-256" };
const CHUNK = 64 * 1024;
const ZEROS = Buffer.alloc(CHUNK);

export interface AssetContent {
  /** Identifies the bytes: same id, same bytes. */
  id: string;
  size: number;
  algorithm: ChecksumAlgorithm;
  /** Fixed bytes instead of generated ones (addAsset with a body). */
  body?: Buffer;
}

function keyOf(id: string): Buffer {
  return createHash("sha256").update(id).digest().subarray(0, 16);
}

function cipherAt(id: string, offset: number): { cipher: Cipher; skip: number } {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(Math.floor(offset / 16)), 8);
  return { cipher: createCipheriv("aes-128-ctr", keyOf(id), iv), skip: offset % 16 };
}

/** Yields the bytes [start, endExclusive) of the content in chunks of at most 64 KiB. */
export function* contentChunks(content: AssetContent, start: number, endExclusive: number): Generator<Buffer> {
  if (content.body) {
    for (let at = start; at < endExclusive; at += CHUNK) yield content.body.subarray(at, Math.min(endExclusive, at + CHUNK));
    return;
  }
  const { cipher, skip } = cipherAt(content.id, start);
  let remaining = endExclusive - start;
  let toSkip = skip;
  while (remaining > 0) {
    const want = Math.min(CHUNK, remaining + toSkip);
    let chunk = cipher.update(want === CHUNK ? ZEROS : ZEROS.subarray(0, want));
    if (toSkip > 0) {
      chunk = chunk.subarray(toSkip);
      toSkip = 0;
    }
    remaining -= chunk.length;
    yield chunk;
  }
}

/** Whole content as one buffer: for small bodies and tests only. */
export function contentBytes(content: AssetContent): Buffer {
  return Buffer.concat([...contentChunks(content, 0, content.size)]);
}

export function multihash(algorithm: ChecksumAlgorithm, digestHex: string): string {
  return MULTIHASH_PREFIX[algorithm] + digestHex;
}

const SYNC_LIMIT = 4 * 1024 * 1024;

/**
 * Multihash checksums, computed lazily and cached by content id. Small bodies are hashed
 * synchronously; large ones asynchronously, yielding to the event loop between chunks.
 */
export class ChecksumCache {
  readonly #done = new Map<string, string>();
  readonly #pending = new Map<string, Promise<string>>();
  /** Content objects are reused per variant: remember their checksum without building a key. */
  readonly #byObject = new WeakMap<AssetContent, string>();

  get(content: AssetContent): string | undefined {
    const known = this.#byObject.get(content);
    if (known !== undefined) return known;
    const key = `${content.algorithm}:${content.id}:${content.size}`;
    const hit = this.#done.get(key);
    if (hit !== undefined) this.#byObject.set(content, hit);
    if (hit !== undefined || content.size > SYNC_LIMIT) return hit;
    const hash = createHash(NODE_HASH[content.algorithm]);
    for (const chunk of contentChunks(content, 0, content.size)) hash.update(chunk);
    const value = multihash(content.algorithm, hash.digest("hex"));
    this.#done.set(key, value);
    this.#byObject.set(content, value);
    return value;
  }

  async compute(content: AssetContent): Promise<string> {
    const cached = this.get(content);
    if (cached !== undefined) return cached;
    const key = `${content.algorithm}:${content.id}:${content.size}`;
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = (async () => {
        const hash = createHash(NODE_HASH[content.algorithm]);
        let sinceYield = 0;
        for (const chunk of contentChunks(content, 0, content.size)) {
          hash.update(chunk);
          sinceYield += chunk.length;
          if (sinceYield >= 8 * 1024 * 1024) {
            sinceYield = 0;
            await new Promise((r) => setImmediate(r));
          }
        }
        const value = multihash(content.algorithm, hash.digest("hex"));
        this.#done.set(key, value);
        this.#pending.delete(key);
        return value;
      })();
      this.#pending.set(key, pending);
    }
    return pending;
  }
}

/** A strong ETag from the content identity (cheap: no need to hash the body). */
export function etagOf(content: AssetContent): string {
  return `"${createHash("sha1").update(`${content.id}:${content.size}`).digest("hex").slice(0, 24)}"`;
}
