import { createHash } from "node:crypto";

/** How many delivered ties a cursor lists by id, and how many it keeps as 8-byte hashes after that. */
export interface TieLimits {
  maxIds: number;
  maxHashes: number;
}

export const DEFAULT_TIE_LIMITS: TieLimits = { maxIds: 1000, maxHashes: 1_000_000 };

const HASH_BYTES = 8;

/** The first 8 bytes of SHA-256 of an Item key (`collection/id`): 2^-64 odds that two keys collide. */
export function tieHash(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest().subarray(0, HASH_BYTES);
}

/**
 * The keys of the Items delivered at one datetime, in bounded memory: plain keys while there are few,
 * then 8-byte hashes (8 MB for a million), then only a count of the ones no longer recorded.
 */
export class TieSet {
  private ids: string[] = [];
  private hashes?: Buffer;
  private hashCount = 0;
  /** Items added past the hash cap: a resume may send these again. */
  unrecorded = 0;

  constructor(private readonly limits: TieLimits = DEFAULT_TIE_LIMITS) {}

  static restore(saved: { skipIds: string[]; skipHashes?: string; mayRepeat?: number }, limits: TieLimits = DEFAULT_TIE_LIMITS): TieSet {
    const set = new TieSet(limits);
    for (const id of saved.skipIds) set.add(id);
    if (saved.skipHashes) {
      const raw = Buffer.from(saved.skipHashes, "base64");
      for (let i = 0; i + HASH_BYTES <= raw.length; i += HASH_BYTES) set.addHash(raw.subarray(i, i + HASH_BYTES));
    }
    set.unrecorded += saved.mayRepeat ?? 0;
    return set;
  }

  get size(): number {
    return this.ids.length + this.hashCount + this.unrecorded;
  }

  add(key: string): void {
    if (!this.hashes && this.ids.length < this.limits.maxIds) {
      this.ids.push(key);
      return;
    }
    if (!this.hashes) {
      const ids = this.ids;
      this.ids = [];
      this.hashes = Buffer.alloc(0);
      for (const id of ids) this.addHash(tieHash(id));
    }
    this.addHash(tieHash(key));
  }

  /** The cursor fields: `skipIds` (plain keys), `skipHashes` (base64 of 8-byte hashes), `mayRepeat`. */
  save(): { skipIds: string[]; skipHashes?: string; mayRepeat?: number } {
    const saved: { skipIds: string[]; skipHashes?: string; mayRepeat?: number } = { skipIds: [...this.ids] };
    if (this.hashes && this.hashCount > 0) saved.skipHashes = this.hashes.subarray(0, this.hashCount * HASH_BYTES).toString("base64");
    if (this.unrecorded > 0) saved.mayRepeat = this.unrecorded;
    return saved;
  }

  private addHash(hash: Buffer): void {
    if (this.hashCount >= this.limits.maxHashes) {
      this.unrecorded++;
      return;
    }
    if (!this.hashes) this.hashes = Buffer.alloc(0);
    const needed = (this.hashCount + 1) * HASH_BYTES;
    if (needed > this.hashes.length) {
      const grown = Buffer.alloc(Math.min(this.limits.maxHashes * HASH_BYTES, Math.max(needed, this.hashes.length * 2, 64 * HASH_BYTES)));
      this.hashes.copy(grown, 0, 0, this.hashCount * HASH_BYTES);
      this.hashes = grown;
    }
    hash.copy(this.hashes, this.hashCount * HASH_BYTES);
    this.hashCount++;
  }
}

/** Answers "was this key delivered?" for a saved tie set: a Set of ids and a sorted hash table. */
export class TieLookup {
  private readonly ids: Set<string>;
  private readonly hashes: BigUint64Array;

  constructor(saved: { skipIds: string[]; skipHashes?: string }) {
    this.ids = new Set(saved.skipIds);
    const raw = saved.skipHashes ? Buffer.from(saved.skipHashes, "base64") : Buffer.alloc(0);
    const n = Math.floor(raw.length / HASH_BYTES);
    this.hashes = new BigUint64Array(n);
    for (let i = 0; i < n; i++) this.hashes[i] = raw.readBigUInt64BE(i * HASH_BYTES);
    this.hashes.sort();
  }

  get empty(): boolean {
    return this.ids.size === 0 && this.hashes.length === 0;
  }

  has(key: string): boolean {
    if (this.ids.has(key)) return true;
    if (this.hashes.length === 0) return false;
    const wanted = tieHash(key).readBigUInt64BE(0);
    let lo = 0;
    let hi = this.hashes.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const value = this.hashes[mid];
      if (value === wanted) return true;
      if (value < wanted) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }
}
