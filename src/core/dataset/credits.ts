import { abortError } from "../abort";

/**
 * "next" pacing: how many units (messages, pages) may go before the next `msg.action = "next"`.
 * Starts with one batch; each grant() adds one batch. Without a batch nothing is paced.
 */
export class Credits {
  private available: number;
  private waiter?: () => void;

  constructor(private readonly batch?: number) {
    this.available = batch ?? Infinity;
  }

  /** True when one unit may go now. */
  has(): boolean {
    return this.available > 0;
  }

  /** Spends one unit (after has() said yes). */
  spend(): void {
    this.available -= 1;
  }

  /** One more batch may go ("next"). */
  grant(): void {
    this.available += this.batch ?? 0;
    this.waiter?.();
  }

  /** Waits until a unit may go, then spends it; rejects with ABORTED when the signal fires first. */
  async take(signal: AbortSignal, what: string): Promise<void> {
    while (this.available <= 0) await this.waitForGrant(signal, what);
    this.available -= 1;
  }

  private waitForGrant(signal: AbortSignal, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(abortError(what));
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiter = () => {
        this.waiter = undefined;
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
    });
  }
}
