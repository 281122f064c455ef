import { abortError } from "../abort";
import type { DeliveryTracker } from "./flow-window";

export interface SendGateOptions {
  /** The run's tracker; its window bounds the messages in flight. */
  tracker: DeliveryTracker;
  /** Nothing released for this long: what is in flight is written off. */
  stallMs: number;
  /** Once per run, when the window stalled and was written off. */
  onStall(inFlight: number): void;
  /** Names the operation in the ABORTED error ("pull", "search"). */
  what: string;
}

/**
 * The flow control between two messages of a sequence (PullSession, ItemSequence): with an observer
 * (message hooks), room in the window; without one, an event-loop yield every `window.size` messages.
 */
export class SendGate {
  private sinceYield = 0;
  private stallWarned = false;

  constructor(private readonly options: SendGateOptions) {}

  /** True when a message may go now: room in the window (observed), or no yield due. */
  mayProceed(observed: boolean): boolean {
    const window = this.options.tracker.window;
    return observed ? window.hasRoom : this.sinceYield < window.size;
  }

  /** Waits for room in the window, or, without an observer, yields one event-loop turn when one is due. */
  async wait(observed: boolean, signal: AbortSignal): Promise<void> {
    const { tracker, stallMs } = this.options;
    const window = tracker.window;
    if (observed) {
      while (!window.hasRoom) {
        if (await window.waitForRoomOrStall(signal, stallMs)) break;
        // Nothing came back for stallMs: a next node does not report completion (e.g. it threw).
        // Write off what is in flight rather than stall for ever; say so once.
        if (!this.stallWarned) this.options.onStall(window.inFlight);
        this.stallWarned = true;
        tracker.clear();
      }
    } else if (this.sinceYield >= window.size) {
      this.sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
      if (signal.aborted) throw abortError(this.options.what);
    }
  }

  /** One message went. */
  sent(): void {
    this.sinceYield++;
  }
}
