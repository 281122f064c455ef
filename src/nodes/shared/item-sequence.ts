import { abortError } from "../../core/abort";
import { DeliveryTracker, FlowWindow } from "../../core/dataset/flow-window";
import type { MessageHookEvent, Node, NodeAPI, NodeMessage, SendFunction } from "./node-red";

/** Core nodes that keep `done()` until a whole sequence has arrived: their receipt releases the window. */
const SEQUENCE_HOLDERS = new Set(["join", "batch", "sort"]);

export interface ItemSequenceOptions {
  /** Messages carry arrays of `arraySize` Items instead of one Item each. */
  arrays: boolean;
  arraySize: number;
  /** Messages in flight on output 1 (message hooks), or sent per event-loop turn without them. */
  window: number;
  /** Release on receipt instead of on completion. */
  releaseOnReceive: boolean;
  /** Nothing released for this long: what is in flight is written off (a next node that never completes). */
  stallMs: number;
  topic: string;
  onStall(inFlight: number): void;
}

interface HookedRuntime {
  add(id: string, fn: (event: any) => void): void;
  remove(id: string): void;
}

interface Held<M> {
  payload: unknown;
  marks: M[];
}

/**
 * Output 1 of a reading node as a `msg.parts` sequence (one Item or an array of N per message) under
 * the dataset-pull flow control: message hooks keep at most `window` messages in flight until the
 * next nodes complete them (or receive them, for join/batch/sort); without hooks it yields to the
 * event loop every `window` messages. One message is held back so the last one carries parts.count.
 * `delivered` is called, in order, with the marks of each message sent (for the resume cursor).
 */
export class ItemSequence<M> {
  readonly flowControl: "hooks" | "yield";
  messages = 0;
  private readonly window: FlowWindow;
  private readonly tracker: DeliveryTracker;
  private readonly hooks?: HookedRuntime;
  private hookIds: string[] = [];
  private deliveries = 0;
  private held?: Held<M>;
  private buffer: unknown[] = [];
  private bufferMarks: M[] = [];
  private sinceYield = 0;
  private stallWarned = false;

  constructor(
    private readonly RED: NodeAPI,
    private readonly node: Node & { wires?: string[][] },
    private readonly send: SendFunction,
    private readonly options: ItemSequenceOptions,
    private readonly id: string,
    private readonly signal: AbortSignal,
    private readonly delivered: (marks: M[]) => void,
  ) {
    const hooks = (RED as unknown as { hooks?: HookedRuntime }).hooks;
    this.hooks = hooks && typeof hooks.add === "function" ? hooks : undefined;
    this.flowControl = this.hooks ? "hooks" : "yield";
    this.window = new FlowWindow(options.window);
    this.tracker = new DeliveryTracker(this.window);
    if (this.hooks) this.registerHooks();
  }

  /** Adds one Item; resolves when it may be followed by the next (flow control). */
  async push(item: unknown, mark: M): Promise<void> {
    if (!this.options.arrays) return this.hold({ payload: item, marks: [mark] });
    this.buffer.push(item);
    this.bufferMarks.push(mark);
    if (this.buffer.length < this.options.arraySize) return;
    const message = { payload: this.buffer, marks: this.bufferMarks };
    this.buffer = [];
    this.bufferMarks = [];
    return this.hold(message);
  }

  /**
   * Ends the sequence: the held message goes out with parts.count (without waiting for room when the
   * run failed or was stopped, so a join downstream is not left waiting). Removes the hooks.
   */
  async end(waitForRoom: boolean): Promise<void> {
    try {
      if (this.buffer.length > 0) {
        const message = { payload: this.buffer, marks: this.bufferMarks };
        this.buffer = [];
        this.bufferMarks = [];
        if (waitForRoom) await this.hold(message);
        else this.sendHeldNow(false, message);
      }
      if (this.held && waitForRoom) await this.waitToSend();
    } finally {
      this.sendHeldNow(true);
      for (const id of this.hookIds) this.hooks!.remove(id);
      this.hookIds = [];
      this.tracker.clear();
    }
  }

  private async hold(next: Held<M>): Promise<void> {
    if (this.held) {
      if (!this.mayProceed()) await this.waitToSend();
      this.sinceYield++;
      this.sendHeldNow(false);
    }
    this.held = next;
  }

  private sendHeldNow(last: boolean, replacement?: Held<M>): void {
    const message = this.held;
    this.held = replacement;
    if (!message) return;
    const index = this.messages++;
    const parts: Record<string, unknown> = { id: this.id, index, type: "array", len: this.options.arrays ? this.options.arraySize : 1 };
    if (last) parts.count = index + 1;
    const msgid = `${this.id}-${index}`;
    const out: NodeMessage = { _msgid: msgid, payload: message.payload, topic: this.options.topic, parts };
    if (this.hooks) this.tracker.sent(msgid, this.deliveries);
    this.send([out, null]);
    if (this.hooks) this.tracker.settleUndelivered(msgid);
    this.delivered(message.marks);
  }

  private mayProceed(): boolean {
    return this.hooks ? this.window.hasRoom : this.sinceYield < this.options.window;
  }

  private async waitToSend(): Promise<void> {
    if (this.hooks) {
      while (!this.window.hasRoom) {
        if (await this.window.waitForRoomOrStall(this.signal, this.options.stallMs)) break;
        if (!this.stallWarned) this.options.onStall(this.window.inFlight);
        this.stallWarned = true;
        this.tracker.clear();
      }
    } else if (this.sinceYield >= this.options.window) {
      this.sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
      if (this.signal.aborted) throw abortError("search");
    }
  }

  /** The same hook choice as dataset-pull: completion where the next node reports it, receipt otherwise. */
  private registerHooks(): void {
    const wired = this.node.wires?.[0] ?? [];
    const onReceipt = new Set<string>();
    const onCompletion = new Set<string>();
    let allKnown = true;
    for (const id of wired) {
      const target = this.RED.nodes.getNode(id) as (Node & { _expectedDoneCount?: number }) | null;
      if (!target) allKnown = false;
      if (!target || this.options.releaseOnReceive || SEQUENCE_HOLDERS.has(target.type) || target._expectedDoneCount === 0) onReceipt.add(id);
      else onCompletion.add(id);
    }
    const label = `datasphereSequence${this.id.replace(/[^A-Za-z0-9]/g, "")}`;
    const add = (hook: string, fn: (event: any) => void) => {
      this.hooks!.add(`${hook}.${label}`, fn);
      this.hookIds.push(`${hook}.${label}`);
    };
    const tracker = this.tracker;
    const nodeId = this.node.id;
    if (!allKnown) {
      add("postDeliver", (event: MessageHookEvent & { source?: { id: string; port?: number } }) => {
        if (event.source?.id !== nodeId || event.source.port !== 0) return;
        const id = event.msg?._msgid;
        if (tracker.isTracked(id)) tracker.delivered(id as string);
      });
    }
    if (onReceipt.size > 0) {
      add("postReceive", (event: MessageHookEvent) => {
        const id = event.msg?._msgid;
        if (event.destination && onReceipt.has(event.destination.id) && tracker.isTracked(id)) tracker.finished(id as string);
      });
    }
    if (onCompletion.size > 0) {
      add("onComplete", (event: { msg?: NodeMessage; node?: { id: string } }) => {
        const id = event.msg?._msgid;
        if (event.node && onCompletion.has(event.node.id) && tracker.isTracked(id)) tracker.finished(id as string);
      });
    }
    this.deliveries = allKnown ? wired.length : 0;
  }
}
