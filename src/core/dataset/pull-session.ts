import { systemClock, type Clock } from "../clock";
import type { Endpoints } from "../endpoints";
import { toDatasphereError, type DatasphereError } from "../errors";
import { planPull, readDataset, type PullMode, type PullPlan, type PullSpec } from "../dataset";
import { Credits } from "./credits";
import type { ResumeCursor } from "./cursor";
import type { ItemsEvent, MalformedEvent } from "./events";
import { DeliveryTracker, FlowWindow } from "./flow-window";
import { SendGate } from "./send-gate";
import type { ReaderOptions } from "./http";

/** The completion report of one pull (the node's second output). */
export interface PullSummary {
  package: string;
  mode: PullMode | undefined;
  items: number;
  messages: number;
  pages: number;
  malformed: number;
  durationMs: number;
  cursor: ResumeCursor | null;
  stopped: boolean;
  flowControl: "hooks" | "yield";
  error?: { code: string; message: string };
}

/** One outgoing message: an Item, or an array of Items, with its sequence `parts`. */
export interface PullMessage {
  msgid: string;
  /** The package pulled (the message topic). */
  package: string;
  payload: unknown;
  parts: Record<string, unknown>;
}

/** Whoever observes deliveries downstream (Node-RED's message hooks) and releases the window. */
export interface DeliveryObserver {
  /** Deliveries per message when known up front; otherwise the observer counts them. */
  deliveries?: number;
  remove(): void;
}

export interface PullSessionOptions {
  spec(): PullSpec | Promise<PullSpec>;
  endpoints: Pick<Endpoints, "apiBase" | "apiOrigin" | "isApiOrigin" | "dataset" | "item">;
  reader: Omit<ReaderOptions, "signal">;
  pullId: string;
  /** Messages in flight at most (with an observer), or messages between event-loop yields (without). */
  window: number;
  /** Items per message; undefined sends one Item per message. */
  arraySize?: number;
  /** "next" pacing: this many messages per credit(); undefined sends as fast as the window allows. */
  creditBatch?: number;
  /** Nothing released for this long: what is in flight is written off. */
  stallMs: number;
  observe?(tracker: DeliveryTracker): DeliveryObserver;
  send(message: PullMessage): void;
  redact?(text: string): string;
  clock?: Clock;
  onMalformed?(event: MalformedEvent, count: number): void;
  /** At most once a second while Items flow. */
  onProgress?(items: number, elapsedMs: number): void;
  /** Once per pull, when the window stalled and was written off. */
  onStall?(inFlight: number): void;
}

/** A message waiting to be sent: one Item (batch + index) or an array of Items (marks). */
interface Held {
  payload: unknown;
  marks: Array<[ItemsEvent, number]>;
}

/**
 * One dataset pull: reads the dataset, sends Items within the flow window and the pacing credit,
 * tracks what was delivered and answers the resume cursor. Knows nothing of Node-RED.
 */
export class PullSession {
  readonly window: FlowWindow;
  readonly tracker: DeliveryTracker;
  /** Set when the pull failed (also after a stop: ABORTED). */
  failure?: DatasphereError;
  private readonly controller = new AbortController();
  private readonly clock: Clock;
  private stopped = false;
  private closed = false;
  private readonly credits: Credits;
  private observer?: DeliveryObserver;
  private plan?: PullPlan;
  private held?: Held;
  private index = 0;
  private readonly gate: SendGate;
  private readonly summary: PullSummary;

  constructor(private readonly options: PullSessionOptions) {
    this.clock = options.clock ?? systemClock;
    this.window = new FlowWindow(options.window, undefined, this.clock);
    this.tracker = new DeliveryTracker(this.window);
    this.gate = new SendGate({ tracker: this.tracker, stallMs: options.stallMs, onStall: (inFlight) => this.options.onStall?.(inFlight), what: "pull" });
    this.credits = new Credits(options.creditBatch);
    this.summary = { package: "", mode: undefined, items: 0, messages: 0, pages: 0, malformed: 0, durationMs: 0, cursor: null, stopped: false, flowControl: options.observe ? "hooks" : "yield" };
  }

  /** "next" pacing: one more batch of messages may go. */
  credit(): void {
    this.credits.grant();
  }

  /** Ends the pull; its summary says stopped. */
  stop(): void {
    this.stopped = true;
    this.controller.abort();
  }

  /** Ends the pull without sending anything more (the node is closing). */
  abort(): void {
    this.closed = true;
    this.controller.abort();
  }

  async run(): Promise<PullSummary> {
    const started = this.clock.now();
    let readerEnded = false;
    try {
      this.plan = planPull(await this.options.spec(), this.options.endpoints);
      this.summary.package = this.plan.package;
      this.summary.mode = this.plan.mode;
      this.observer = this.options.observe?.(this.tracker);
      await this.read(started);
      readerEnded = true;
    } catch (error) {
      this.failure = toDatasphereError(error, "dataset pull");
    }
    // Close the sequence so a join node downstream is not left waiting (also after an error or stop:
    // the pull is over, so the last message goes without waiting for credit or room).
    if (this.held && !this.closed) {
      if (!this.failure) {
        try {
          await this.sendHeld(true);
        } catch (error) {
          this.failure = toDatasphereError(error, "dataset pull");
        }
      }
      if (this.held) this.deliver(this.held, true);
    }
    if (readerEnded && !this.failure) this.plan?.tracker.complete();
    this.observer?.remove();
    this.tracker.clear();
    const summary = this.summary;
    summary.durationMs = this.clock.now() - started;
    summary.cursor = this.plan?.tracker.cursor() ?? null;
    summary.stopped = this.stopped && this.failure?.code === "ABORTED";
    if (this.failure && !summary.stopped) summary.error = { code: this.failure.code, message: this.redact(this.failure.message) };
    return summary;
  }

  private redact(text: string): string {
    return this.options.redact ? this.options.redact(text) : text;
  }

  private async read(started: number): Promise<void> {
    const { arraySize } = this.options;
    const signal = this.controller.signal;
    let lastPage = "";
    let nextProgressAt = 0;
    let arrayMarks: Array<[ItemsEvent, number]> = [];
    for await (const event of readDataset(this.plan!, { ...this.options.reader, signal })) {
      if (event.kind === "malformed") {
        this.summary.malformed += 1;
        this.options.onMalformed?.({ ...event, preview: this.redact(event.preview) }, this.summary.malformed);
        continue;
      }
      if (event.page && event.page.href !== lastPage) {
        lastPage = event.page.href;
        this.summary.pages += 1;
      }
      for (let i = 0; i < event.items.length; i++) {
        if (arraySize === undefined) {
          const waiting = this.hold({ payload: event.items[i], marks: [[event, i]] });
          if (waiting) await waiting;
          continue;
        }
        arrayMarks.push([event, i]);
        if (arrayMarks.length >= arraySize) {
          const waiting = this.hold(arrayOf(arrayMarks));
          if (waiting) await waiting;
          arrayMarks = [];
        }
      }
      const now = this.clock.now();
      if (now >= nextProgressAt) {
        nextProgressAt = now + 1000;
        this.options.onProgress?.(this.summary.items, now - started);
      }
    }
    if (arrayMarks.length > 0) await this.hold(arrayOf(arrayMarks));
  }

  private deliver(message: Held, last: boolean): void {
    this.held = undefined;
    const { pullId, arraySize } = this.options;
    const parts: Record<string, unknown> = { id: pullId, index: this.index, type: "array", len: arraySize ?? 1 };
    if (last) parts.count = this.index + 1;
    const msgid = `${pullId}-${this.index}`;
    this.index += 1;
    if (this.observer) this.tracker.sent(msgid, this.observer.deliveries ?? 0);
    this.options.send({ msgid, package: this.summary.package, payload: message.payload, parts });
    if (this.observer) this.tracker.settleUndelivered(msgid);
    for (const [batch, i] of message.marks) this.plan!.tracker.delivered(batch, i);
    this.summary.items += message.marks.length;
    this.summary.messages += 1;
  }

  /** True when a message may go now: pacing credit and room in the window (or, without an observer, no yield due). */
  private mayProceed(): boolean {
    if (!this.credits.has()) return false;
    return this.gate.mayProceed(this.observer !== undefined);
  }

  /** Waits for pacing credit and room in the window, or, without an observer, yields one event-loop turn. */
  private async waitToSend(): Promise<void> {
    const signal = this.controller.signal;
    await this.credits.take(signal, "pull");
    await this.gate.wait(this.observer !== undefined, signal);
  }

  /** One message is held back until the next arrives, so the last one can carry parts.count. */
  private async sendHeld(last: boolean): Promise<void> {
    if (!this.held) return;
    if (this.mayProceed()) this.credits.spend();
    else await this.waitToSend();
    this.gate.sent();
    this.deliver(this.held, last);
  }

  /** Undefined when the message was taken without waiting (the common case: no promise per Item). */
  private hold(next: Held): Promise<void> | undefined {
    if (this.held && this.mayProceed()) {
      this.credits.spend();
      this.gate.sent();
      this.deliver(this.held, false);
    }
    if (!this.held) {
      this.held = next;
      return undefined;
    }
    return this.sendHeld(false).then(() => {
      this.held = next;
    });
  }
}

function arrayOf(marks: Array<[ItemsEvent, number]>): Held {
  return { payload: marks.map(([batch, i]) => batch.items[i]), marks };
}
