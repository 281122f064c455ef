import { systemClock, type Clock, type TimerHandle } from "../clock";
import { DeliveryTracker, FlowWindow } from "../dataset/flow-window";

export interface ItemsInFlightOptions {
  /** Items sent and not yet finished by the next nodes, at most (the Subscription's `maxUntaken`). */
  maxItems: number;
  /** Full, and nothing finished for this long: what is in flight is written off. */
  stallMs: number;
  /** Items left the window: the subscription may hand out as many more (`Subscription.release`). */
  release(items: number): void;
  /** Once: the window stalled and this many Items were written off. */
  onStall(items: number): void;
  clock?: Clock;
}

/**
 * subscribe-in's flow control: the Items of messages sent and not yet finished by the next nodes, as
 * the message hooks report them through `tracker`. Each finished message releases its Items to the
 * Subscription, which keeps the Items it receives meanwhile in its backlog (and pauses reading when
 * that grows large). When the window is full and nothing finishes for `stallMs` (a next node that
 * threw instead of calling done()), everything in flight is written off, so the stream cannot hang.
 */
export class ItemsInFlight {
  readonly tracker: DeliveryTracker;
  private readonly itemsOf = new Map<string, number>();
  private count = 0;
  private left = 0;
  private timer?: TimerHandle;
  private stallReported = false;
  private readonly clock: Clock;

  constructor(private readonly options: ItemsInFlightOptions) {
    this.clock = options.clock ?? systemClock;
    this.tracker = new DeliveryTracker(new FlowWindow(Infinity), (msgid) => this.leave(msgid));
  }

  /** Items in messages sent and not yet finished. */
  get items(): number {
    return this.count;
  }

  /** Before `node.send`: the message and its Items count from now on (see DeliveryTracker.sent). */
  sent(msgid: string, items: number, deliveries?: number): void {
    this.itemsOf.set(msgid, items);
    this.count += items;
    this.tracker.sent(msgid, deliveries);
  }

  /** After `node.send`: a message nobody was given leaves at once; a full window starts the stall watch. */
  afterSend(msgid: string): void {
    this.tracker.settleUndelivered(msgid);
    if (this.count >= this.options.maxItems) this.watchForStall();
  }

  /** Forgets everything (a new subscription); later completions of earlier messages are ignored. */
  reset(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.itemsOf.clear();
    this.tracker.clear();
    this.count = 0;
  }

  private leave(msgid: string): void {
    const items = this.itemsOf.get(msgid);
    if (items === undefined) return;
    this.itemsOf.delete(msgid);
    this.count -= items;
    this.left += 1;
    this.options.release(items);
  }

  private watchForStall(): void {
    if (this.timer !== undefined) return;
    const seen = this.left;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.count < this.options.maxItems) return;
      if (this.left !== seen) return this.watchForStall();
      const items = this.count;
      this.itemsOf.clear();
      this.tracker.clear();
      this.count = 0;
      if (!this.stallReported) this.options.onStall(items);
      this.stallReported = true;
      this.options.release(items);
    }, this.options.stallMs);
  }
}
