import { abortError } from "../abort";
import { systemClock, type Clock, type TimerHandle } from "../clock";

/**
 * A bounded count of messages in flight. The producer waits for room before sending; whoever
 * observes delivery (message hooks) releases. Pure: no timers, no I/O.
 */
export class FlowWindow {
  private count = 0;
  private releases = 0;
  private waiter?: { resolve: (room: boolean) => void; reject: (e: Error) => void; signal?: AbortSignal; onAbort: () => void; timer?: TimerHandle };

  /** A waiting producer is woken when the count falls to `lowWater` (default: half the size), so it sends in bursts, not one message per release. */
  readonly lowWater: number;

  constructor(readonly size: number, lowWater?: number, private readonly clock: Clock = systemClock) {
    this.lowWater = Math.max(0, Math.min(size - 1, lowWater ?? Math.floor(size / 2)));
  }

  get inFlight(): number {
    return this.count;
  }

  get hasRoom(): boolean {
    return this.count < this.size;
  }

  add(n = 1): void {
    this.count += n;
  }

  release(n = 1): void {
    this.releases += n;
    this.count = Math.max(0, this.count - n);
    if (this.waiter && this.count <= this.lowWater) this.wake();
  }

  /** Resolves when a message may be sent; rejects with ABORTED when the signal fires first. */
  waitForRoom(signal?: AbortSignal): Promise<void> {
    return this.waitForRoomOrStall(signal).then(() => undefined);
  }

  /**
   * Like waitForRoom, but with `stallMs` it resolves false when nothing at all was released for that
   * long (a downstream node that never reports completion); true when there is room.
   */
  waitForRoomOrStall(signal?: AbortSignal, stallMs?: number): Promise<boolean> {
    if (this.hasRoom) return Promise.resolve(true);
    if (signal?.aborted) return Promise.reject(abortError("pull"));
    if (this.waiter) throw new Error("FlowWindow: one waiter at a time");
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.clock.clearTimeout(this.waiter?.timer);
        this.waiter = undefined;
        reject(abortError("pull"));
      };
      this.waiter = { resolve, reject, signal, onAbort };
      signal?.addEventListener("abort", onAbort, { once: true });
      if (stallMs !== undefined) {
        let seen = this.releases;
        const check = () => {
          if (!this.waiter) return;
          if (this.releases !== seen) {
            seen = this.releases;
            this.waiter.timer = this.clock.setTimeout(check, stallMs);
            return;
          }
          const waiter = this.waiter;
          this.waiter = undefined;
          waiter.signal?.removeEventListener("abort", waiter.onAbort);
          waiter.resolve(false);
        };
        this.waiter.timer = this.clock.setTimeout(check, stallMs);
      }
    });
  }

  /** Forgets everything in flight (end of a pull). */
  reset(): void {
    this.count = 0;
    if (this.waiter) this.wake();
  }

  private wake(): void {
    const waiter = this.waiter!;
    this.waiter = undefined;
    this.clock.clearTimeout(waiter.timer);
    waiter.signal?.removeEventListener("abort", waiter.onAbort);
    waiter.resolve(true);
  }
}

/**
 * Tracks deliveries of sent messages by message id: a message stays in the window until every
 * delivery of it is finished (received or completed, as the caller decides per destination).
 */
export class DeliveryTracker {
  private readonly pending = new Map<string, number>();

  /** `onLeave`: a message left the window (its last delivery finished, or nobody was given it). */
  constructor(
    readonly window: FlowWindow,
    private readonly onLeave?: (msgid: string) => void,
  ) {}

  isTracked(msgid: unknown): boolean {
    return typeof msgid === "string" && this.pending.has(msgid);
  }

  /**
   * Before sending: the message counts in the window from now on. `deliveries`, when known, is how
   * many nodes will get it; otherwise `delivered` counts them as they happen.
   */
  sent(msgid: string, deliveries = 0): void {
    this.pending.set(msgid, deliveries);
    this.window.add(1);
  }

  /** One delivery of the message was dispatched. */
  delivered(msgid: string): void {
    const n = this.pending.get(msgid);
    if (n !== undefined) this.pending.set(msgid, n + 1);
  }

  /** One delivery finished; the message leaves the window when its last delivery does. */
  finished(msgid: string): void {
    const n = this.pending.get(msgid);
    if (n === undefined) return;
    if (n <= 1) this.leave(msgid);
    else this.pending.set(msgid, n - 1);
  }

  /** After sending: a message nobody was given (no wire, dropped by a hook) leaves at once. */
  settleUndelivered(msgid: string): void {
    if (this.pending.get(msgid) === 0) this.leave(msgid);
  }

  private leave(msgid: string): void {
    this.pending.delete(msgid);
    this.window.release(1);
    this.onLeave?.(msgid);
  }

  clear(): void {
    this.pending.clear();
    this.window.reset();
  }
}
