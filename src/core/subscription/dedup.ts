/** A bounded set of recently seen keys: the oldest key leaves when the set is full. */
export class RecentSet {
  private readonly keys = new Set<string>();
  private readonly ring: string[] = [];
  private next = 0;
  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.keys.size;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(key: string): void {
    this.addIfNew(key);
  }

  /** Adds the key; false when it was already there (one hash lookup for a new key, not three). */
  addIfNew(key: string): boolean {
    if (this.capacity <= 0) return true;
    const size = this.keys.size;
    this.keys.add(key);
    if (this.keys.size === size) return false;
    if (this.ring.length < this.capacity) this.ring.push(key);
    else {
      this.keys.delete(this.ring[this.next]);
      this.ring[this.next] = key;
      this.next = this.next + 1 === this.capacity ? 0 : this.next + 1;
    }
    return true;
  }
}

/**
 * The identity of an Item for de-duplication when the server sends no event ids: collection, id,
 * `properties.updated` and the length of its JSON text. A replayed Item matches; an Item republished
 * with changes (another `updated`, other content length) and Items of other collections do not.
 * Undefined (never de-duplicated) when the object has no string `id`.
 */
export function itemKey(item: Record<string, unknown>, data: string): string | undefined {
  const id = item.id;
  if (typeof id !== "string" || id === "") return undefined;
  const collection = typeof item.collection === "string" ? item.collection : "";
  const props = item.properties;
  const updated = props !== null && typeof props === "object" ? (props as Record<string, unknown>).updated : undefined;
  return `${collection}\u0000${id}\u0000${typeof updated === "string" ? updated : ""}\u0000${data.length}`;
}
