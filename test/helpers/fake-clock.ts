import type { Clock, TimerHandle } from "../../src/core/clock";
import { clampDelay } from "../../src/core/clock";

interface Pending {
  id: number;
  at: number;
  callback: () => void;
}

/** A clock the test moves: timers fire only inside `advance`, in time order. */
export class FakeClock implements Clock {
  private current: number;
  private nextId = 1;
  private pending: Pending[] = [];

  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.pending.push({ id, at: this.current + clampDelay(ms), callback });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    this.pending = this.pending.filter((p) => p.id !== (handle as unknown as number));
  }

  /** Delays of the timers now pending, soonest first (what the code under test asked to wait). */
  pendingDelays(): number[] {
    return this.pending.map((p) => p.at - this.current).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, firing each due timer at its own time and letting promises settle between. */
  async advance(ms: number): Promise<void> {
    const end = this.current + ms;
    for (;;) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const due = this.pending.filter((p) => p.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.pending = this.pending.filter((p) => p !== due);
      this.current = Math.max(this.current, due.at);
      due.callback();
    }
    this.current = end;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
