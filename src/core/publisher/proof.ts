import type { OutboxEntry } from "./outbox";

interface Written {
  seq: number;
  at: number;
  /** At-least-once entries wait here for proof; at-most-once writes are only counted. */
  entry?: OutboxEntry;
}

/**
 * What one connection has proven the server read. Writes are numbered in flush order. A ping sent
 * after write N proves writes up to N when its pong comes back (TCP keeps order and ws answers a ping
 * only after reading what came before it). Any other server frame proves the writes made at least
 * `graceMs` before it.
 */
export class ProofTracker {
  private readonly queue: Written[] = [];
  private head = 0;
  private seq = 0;
  private proven = 0;
  private pingSeq?: number;
  /** When the outstanding ping was sent (undefined: none out). */
  pingSentAt?: number;

  constructor(private readonly graceMs: number) {}

  /** At-least-once entries written and not yet proven. */
  waiting = 0;

  written(entry: OutboxEntry | undefined, now: number): void {
    this.queue.push({ seq: ++this.seq, at: now, entry });
    if (entry) this.waiting++;
  }

  wantsPing(): boolean {
    return this.pingSentAt === undefined && this.seq > this.proven;
  }

  pingSent(now: number): void {
    this.pingSeq = this.seq;
    this.pingSentAt = now;
  }

  pong(): OutboxEntry[] {
    const upTo = this.pingSeq ?? this.proven;
    this.pingSeq = undefined;
    this.pingSentAt = undefined;
    return this.proveWhile((w) => w.seq <= upTo);
  }

  heard(now: number): OutboxEntry[] {
    return this.proveWhile((w) => w.at <= now - this.graceMs);
  }

  all(): OutboxEntry[] {
    return this.proveWhile(() => true);
  }

  /** The connection failed: the unproven at-least-once entries (in order) and how many other writes were unproven. */
  fail(): { entries: OutboxEntry[]; others: number } {
    const entries: OutboxEntry[] = [];
    let others = 0;
    for (let i = this.head; i < this.queue.length; i++) {
      const w = this.queue[i];
      if (w.entry) entries.push(w.entry);
      else others++;
    }
    this.queue.length = 0;
    this.head = 0;
    this.waiting = 0;
    this.proven = this.seq;
    return { entries, others };
  }

  private proveWhile(test: (w: Written) => boolean): OutboxEntry[] {
    const proven: OutboxEntry[] = [];
    while (this.head < this.queue.length && test(this.queue[this.head])) {
      const w = this.queue[this.head++];
      this.proven = w.seq;
      if (w.entry) proven.push(w.entry);
    }
    this.waiting -= proven.length;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return proven;
  }
}
