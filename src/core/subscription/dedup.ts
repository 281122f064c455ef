/**
 * A bounded set of recently seen keys: the oldest keys leave when the set holds `capacity` keys or
 * `maxChars` characters in all, whichever comes first.
 */
export class RecentSet {
  private readonly keys = new Set<string>();
  /** Insertion order; entries before `head` have left. */
  private order: string[] = [];
  private head = 0;
  private chars = 0;
  constructor(
    private readonly capacity: number,
    private readonly maxChars = Infinity,
  ) {}

  get size(): number {
    return this.keys.size;
  }

  /** Characters held by the keys (what the byte bound counts). */
  get heldChars(): number {
    return this.chars;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(key: string): void {
    this.addIfNew(key);
  }

  /** Adds the key; false when it was already there (one hash lookup for a new key). */
  addIfNew(key: string): boolean {
    if (this.capacity <= 0 || key.length > this.maxChars) return true;
    const size = this.keys.size;
    this.keys.add(key);
    if (this.keys.size === size) return false;
    this.order.push(key);
    this.chars += key.length;
    while (this.keys.size > this.capacity || this.chars > this.maxChars) {
      const oldest = this.order[this.head++];
      this.keys.delete(oldest);
      this.chars -= oldest.length;
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
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
export function itemVersionKey(item: Record<string, unknown>, data: string): string | undefined {
  const id = item.id;
  if (typeof id !== "string" || id === "") return undefined;
  const collection = typeof item.collection === "string" ? item.collection : "";
  const props = item.properties;
  const updated = props !== null && typeof props === "object" ? (props as Record<string, unknown>).updated : undefined;
  return `${collection}\u0000${id}\u0000${typeof updated === "string" ? updated : ""}\u0000${data.length}`;
}
