import { DatasphereError } from "../errors";

/** at-most-once: done when written to the socket; at-least-once: done when the server is proven to have read it. */
export type Delivery = "at-most-once" | "at-least-once";

/** How a message that was sent ended: `possibleDuplicate` when it was written more than once. */
export interface SettleInfo {
  possibleDuplicate: boolean;
}

export type OverflowPolicy = "reject-newest" | "drop-oldest";

/** Limits of one owner's (one publish node's) share of the outbox. */
export interface OutboxLimits {
  /** How many of this owner's messages may wait; at least 1. */
  maxMessages: number;
  /** How long a message may wait before it fails with EXPIRED; 0 = no limit. */
  maxAgeMs: number;
  overflow: OverflowPolicy;
}

export const DEFAULT_OUTBOX_LIMITS: OutboxLimits = { maxMessages: 1000, maxAgeMs: 60_000, overflow: "reject-newest" };

export const enum EntryState {
  Queued,
  Inflight,
  Settled,
}

/** One message on its way: waiting, handed to a socket, or finished (exactly once). */
export class OutboxEntry {
  state = EntryState.Queued;
  /** Times it was written again after a connection failed before proving it was read. */
  resends = 0;
  constructor(
    readonly data: Buffer,
    readonly owner: object,
    readonly expiresAt: number,
    readonly delivery: Delivery,
    private readonly onSettled: (err?: DatasphereError, info?: SettleInfo) => void,
  ) {}

  /** Finishes the entry; a second call does nothing (so no message is ever reported twice). */
  settle(err?: DatasphereError, info?: SettleInfo): boolean {
    if (this.state === EntryState.Settled) return false;
    this.state = EntryState.Settled;
    this.onSettled(err, err ? undefined : info);
    return true;
  }
}

/**
 * Messages waiting for a socket, in arrival order, with a per-owner count and limits. Entries
 * dropped from the middle are marked settled and skipped when they reach the head.
 */
export class Outbox {
  private items: Array<OutboxEntry | undefined> = [];
  private head = 0;
  private queued = 0;
  private readonly perOwner = new Map<object, number>();

  get size(): number {
    return this.queued;
  }

  countOf(owner: object): number {
    return this.perOwner.get(owner) ?? 0;
  }

  /**
   * Adds an entry under the owner's limits. When the owner's share is full: `reject-newest` fails
   * the new entry with OUTBOX_FULL; `drop-oldest` fails the owner's oldest waiting entry instead.
   */
  add(entry: OutboxEntry, limits: OutboxLimits): void {
    const max = Math.max(1, limits.maxMessages);
    if (this.countOf(entry.owner) >= max) {
      if (limits.overflow === "reject-newest") {
        entry.settle(new DatasphereError("OUTBOX_FULL", `outbox full (${max} messages waiting): this message was not published`, { details: { policy: "reject-newest", max } }));
        return;
      }
      const oldest = this.oldestOf(entry.owner);
      if (oldest) {
        this.remove(oldest);
        oldest.settle(new DatasphereError("OUTBOX_FULL", `outbox full (${max} messages waiting): the oldest waiting message was dropped to make room`, { details: { policy: "drop-oldest", max } }));
      }
    }
    this.items.push(entry);
    this.count(entry.owner, +1);
  }

  /** Puts entries that a dead socket handed back in front of the queue, keeping their order. */
  returnToFront(entries: ReadonlyArray<OutboxEntry>): void {
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i];
      if (entry.state === EntryState.Settled) continue;
      entry.state = EntryState.Queued;
      if (this.head > 0) this.items[--this.head] = entry;
      else this.items.unshift(entry);
      this.count(entry.owner, +1);
    }
  }

  /** The next waiting entry, left in the queue. */
  peek(): OutboxEntry | undefined {
    while (this.head < this.items.length) {
      const entry = this.items[this.head];
      if (entry && entry.state === EntryState.Queued) return entry;
      this.items[this.head++] = undefined;
    }
    this.compact();
    return undefined;
  }

  /** The next waiting entry, taken out of the queue (not settled). */
  take(): OutboxEntry | undefined {
    while (this.head < this.items.length) {
      const entry = this.items[this.head];
      this.items[this.head++] = undefined;
      if (entry && entry.state === EntryState.Queued) {
        this.count(entry.owner, -1);
        this.compact();
        return entry;
      }
    }
    this.compact();
    return undefined;
  }

  /** Fails every waiting entry whose age limit has passed. */
  expire(now: number, makeError: (entry: OutboxEntry) => DatasphereError): number {
    let n = 0;
    for (let i = this.head; i < this.items.length; i++) {
      const entry = this.items[i];
      if (entry && entry.state === EntryState.Queued && now >= entry.expiresAt) {
        this.remove(entry);
        entry.settle(makeError(entry));
        n++;
      }
    }
    return n;
  }

  /** Fails every waiting entry (of one owner, or all). */
  failAll(err: DatasphereError, owner?: object): number {
    let n = 0;
    for (let i = this.head; i < this.items.length; i++) {
      const entry = this.items[i];
      if (entry && entry.state === EntryState.Queued && (owner === undefined || entry.owner === owner)) {
        this.remove(entry);
        entry.settle(err);
        n++;
      }
    }
    this.compact();
    return n;
  }

  private oldestOf(owner: object): OutboxEntry | undefined {
    for (let i = this.head; i < this.items.length; i++) {
      const entry = this.items[i];
      if (entry && entry.state === EntryState.Queued && entry.owner === owner) return entry;
    }
    return undefined;
  }

  /** Marks an entry as no longer waiting; its slot is skipped later. */
  private remove(entry: OutboxEntry): void {
    entry.state = EntryState.Inflight;
    this.count(entry.owner, -1);
  }

  private count(owner: object, delta: number): void {
    this.queued += delta;
    const n = (this.perOwner.get(owner) ?? 0) + delta;
    if (n <= 0) this.perOwner.delete(owner);
    else this.perOwner.set(owner, n);
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
