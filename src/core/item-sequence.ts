import type { Clock } from "./clock";
import { DeliveryTracker, FlowWindow } from "./dataset/flow-window";
import { SendGate } from "./dataset/send-gate";
import type { DeliveryObserver } from "./dataset/pull-session";

/** One outgoing message of a sequence: an Item or an array of Items, with its `parts`. */
export interface SequenceMessage {
  msgid: string;
  payload: unknown;
  parts: Record<string, unknown>;
}

export interface ItemSequenceOptions<M> {
  /** The sequence id (`parts.id`); message ids are `<id>-<index>`. */
  id: string;
  /** Items per message; undefined sends one Item per message. */
  arraySize?: number;
  /** Messages in flight at most (with an observer), or messages between event-loop yields (without). */
  window: number;
  /** Nothing released for this long: what is in flight is written off. */
  stallMs: number;
  signal: AbortSignal;
  clock?: Clock;
  /** Whoever sees deliveries downstream (Node-RED's message hooks) and releases the window. */
  observe?(tracker: DeliveryTracker): DeliveryObserver;
  send(message: SequenceMessage): void;
  /** Called, in order, with the marks of the Items each sent message carried (for the resume cursor). */
  delivered(marks: M[]): void;
  /** Once per run, when the window stalled and was written off. */
  onStall?(inFlight: number): void;
}

interface Held<M> {
  payload: unknown;
  marks: M[];
}

/**
 * Items out as a `parts` sequence under the dataset-pull flow control, for any reader (the STAC
 * search; the dataset PullSession does the same for its reader): at most `window` messages in flight
 * while an observer releases them, or an event-loop yield every `window` messages without one. One
 * message is held back so that the last carries `parts.count`. Knows nothing of Node-RED.
 */
export class ItemSequence<M> {
  readonly flowControl: "hooks" | "yield";
  messages = 0;
  private readonly window: FlowWindow;
  private readonly tracker: DeliveryTracker;
  private readonly observer?: DeliveryObserver;
  private held?: Held<M>;
  private buffer: Held<M> = { payload: [], marks: [] };
  private readonly gate: SendGate;

  constructor(private readonly options: ItemSequenceOptions<M>) {
    this.window = new FlowWindow(options.window, undefined, options.clock);
    this.tracker = new DeliveryTracker(this.window);
    this.gate = new SendGate({ tracker: this.tracker, stallMs: options.stallMs, onStall: (inFlight) => this.options.onStall?.(inFlight), what: "search" });
    this.observer = options.observe?.(this.tracker);
    this.flowControl = this.observer ? "hooks" : "yield";
  }

  /**
   * Adds one Item. Returns a promise only when the caller must wait before the next one (flow
   * control); undefined in the common case, so there is no promise per Item.
   */
  push(item: unknown, mark: M): Promise<void> | undefined {
    const size = this.options.arraySize;
    if (size === undefined) return this.hold({ payload: item, marks: [mark] });
    (this.buffer.payload as unknown[]).push(item);
    this.buffer.marks.push(mark);
    if (this.buffer.marks.length < size) return undefined;
    const full = this.buffer;
    this.buffer = { payload: [], marks: [] };
    return this.hold(full);
  }

  /**
   * Sends what is held back now (a partial array too), without parts.count, after waiting for room:
   * for a caller that knows more Items follow but will not push them yet (one page per "next").
   */
  async flush(): Promise<void> {
    if (this.buffer.marks.length > 0) {
      const rest = this.buffer;
      this.buffer = { payload: [], marks: [] };
      const waiting = this.hold(rest);
      if (waiting) await waiting;
    }
    if (!this.held) return;
    if (!this.mayProceed()) await this.waitToSend();
    this.gate.sent();
    this.sendHeld(false);
  }

  /**
   * Ends the sequence: the last message goes with parts.count, after waiting for room when
   * `waitForRoom` (a normal end), at once otherwise (a failure or stop: a join downstream must not be
   * left waiting). Removes the observer.
   */
  async end(waitForRoom: boolean): Promise<void> {
    try {
      if (this.buffer.marks.length > 0) {
        const rest = this.buffer;
        this.buffer = { payload: [], marks: [] };
        if (waitForRoom) await this.hold(rest);
        else {
          this.sendHeld(false);
          this.held = rest;
        }
      }
      if (this.held && waitForRoom && !this.mayProceed()) await this.waitToSend();
    } finally {
      this.sendHeld(true);
      this.observer?.remove();
      this.tracker.clear();
    }
  }

  /** Ends the sequence without sending anything more (the node is closing): removes the observer. */
  abandon(): void {
    this.held = undefined;
    this.buffer = { payload: [], marks: [] };
    this.observer?.remove();
    this.tracker.clear();
  }

  private hold(next: Held<M>): Promise<void> | undefined {
    if (this.held && !this.mayProceed()) {
      return this.waitToSend().then(() => {
        this.gate.sent();
        this.sendHeld(false);
        this.held = next;
      });
    }
    if (this.held) {
      this.gate.sent();
      this.sendHeld(false);
    }
    this.held = next;
    return undefined;
  }

  private sendHeld(last: boolean): void {
    const message = this.held;
    this.held = undefined;
    if (!message) return;
    const { id, arraySize } = this.options;
    const index = this.messages++;
    const parts: Record<string, unknown> = { id, index, type: "array", len: arraySize ?? 1 };
    if (last) parts.count = index + 1;
    const msgid = `${id}-${index}`;
    if (this.observer) this.tracker.sent(msgid, this.observer.deliveries ?? 0);
    this.options.send({ msgid, payload: message.payload, parts });
    if (this.observer) this.tracker.settleUndelivered(msgid);
    this.options.delivered(message.marks);
  }

  private mayProceed(): boolean {
    return this.gate.mayProceed(this.observer !== undefined);
  }

  private waitToSend(): Promise<void> {
    return this.gate.wait(this.observer !== undefined, this.options.signal);
  }
}
