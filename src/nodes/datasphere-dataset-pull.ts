import { setMaxListeners } from "node:events";
import { abortError } from "../core/abort";
import { DeliveryTracker, FlowWindow, planPull, readDataset, type ItemsEvent, type PullMode, type PullPlan, type PullSpec, type ResumeCursor } from "../core/dataset";
import type { DatasetOrder } from "../core/endpoints";
import { DatasphereError, toDatasphereError } from "../core/errors";
import { isUsableConfig, type DatasphereConfigNode } from "./shared/config-node";
import { resolveEnv } from "./shared/env";
import type { DoneFunction, MessageHookEvent, Node, NodeAPI, NodeDef, NodeMessage, SendFunction } from "./shared/node-red";
import { once } from "./shared/once";
import { ThrottledStatus } from "./shared/status";
import { numberOr, oneOf, positiveInt } from "./shared/settings";

const TYPE = "datasphere-dataset-pull";
/** Core nodes that keep `done()` until a whole sequence has arrived: their receipt releases the window. */
const SEQUENCE_HOLDERS = new Set(["join", "batch", "sort"]);
const MALFORMED_WARNINGS = 10;
const MAX_QUEUE = 100;

interface PullDef extends NodeDef {
  server?: string;
  package?: string;
  mode?: string;
  order?: string;
  from?: string;
  fromType?: string;
  to?: string;
  toType?: string;
  output?: string;
  arraySize?: number | string;
  window?: number | string;
  release?: string;
  pacing?: string;
  batch?: number | string;
  busy?: string;
  retries?: number | string;
  idleTimeout?: number | string;
  stallTimeout?: number | string;
}

interface Job {
  msg: NodeMessage;
  send: SendFunction;
  done: DoneFunction;
}

interface Summary {
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

/** A message waiting to be sent: one Item (batch + index) or an array of Items (marks). */
interface Held {
  payload: unknown;
  batch?: ItemsEvent;
  index?: number;
  marks?: Array<[ItemsEvent, number]>;
}

interface Pacing {
  hasCredit(): boolean;
  spendCredit(): void;
  takeCredit(): Promise<void>;
}

interface HookedRuntime {
  add(id: string, fn: (event: any) => void): void;
  remove(id: string): void;
}

export = function register(RED: NodeAPI): void {
  function DatasphereDatasetPull(this: Node & { wires?: string[][] }, def: PullDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const config = RED.nodes.getNode(def.server ?? "") as DatasphereConfigNode | null;
    const env = (v: string | undefined) => resolveEnv(RED, node, v);
    const settings = {
      package: env(def.package).trim(),
      mode: oneOf<PullMode>(env(def.mode), ["stream", "paginate", "item"], "stream"),
      order: oneOf<DatasetOrder>(env(def.order), ["new", "old"], "new"),
      arrays: def.output === "array",
      arraySize: positiveInt(env(String(def.arraySize ?? "")), 100),
      window: positiveInt(env(String(def.window ?? "")), 200),
      releaseOnReceive: def.release === "receive",
      pacing: def.pacing === "next" ? "next" : "auto",
      batch: positiveInt(env(String(def.batch ?? "")), 100),
      refuseWhenBusy: def.busy === "refuse",
      retries: Math.floor(numberOr(env(String(def.retries ?? "")), 4, 0)),
      idleTimeoutMs: positiveInt(env(String(def.idleTimeout ?? "")), 60) * 1000,
      stallMs: positiveInt(env(String(def.stallTimeout ?? "")), 60) * 1000,
    };
    const hooks = (RED as unknown as { hooks?: HookedRuntime }).hooks;
    const hookLabel = `datasphereDatasetPull${node.id.replace(/[^A-Za-z0-9]/g, "")}`;
    const status = new ThrottledStatus(node);
    const queue: Job[] = [];
    let current: { job: Job; controller: AbortController; stopped: boolean; finished: Promise<void>; credit: () => void } | undefined;
    let closing = false;
    let pullCounter = 0;

    const usable = isUsableConfig(config);
    if (usable) config.register(node);
    status.set(usable ? { fill: "grey", shape: "ring", text: RED._(`${TYPE}.status.idle`) } : { fill: "red", shape: "ring", text: RED._(`${TYPE}.status.noConfig`) });

    const redact = (text: string) => (config ? config.redact(text) : text);

    node.on("input", (msg: NodeMessage, send: SendFunction, done: DoneFunction) => {
      const action = msg.action;
      if (action !== undefined && action !== null && action !== "") {
        if (action === "stop") {
          for (const queued of queue.splice(0)) finishQueued(queued);
          if (current) {
            current.stopped = true;
            current.controller.abort();
          }
          return done();
        }
        if (action === "next") {
          if (settings.pacing !== "next") return done(new Error(RED._(`${TYPE}.errors.nextNeedsPacing`)));
          current?.credit();
          return done();
        }
        return done(new Error(RED._(`${TYPE}.errors.unknownAction`, { action: String(action).slice(0, 40) })));
      }
      if (!usable) return done(new Error(RED._(`${TYPE}.errors.noConfig`)));
      const job = { msg, send, done: once(done) };
      if (current) {
        if (settings.refuseWhenBusy) return done(new Error(RED._(`${TYPE}.errors.busy`)));
        if (queue.length >= MAX_QUEUE) return done(new Error(RED._(`${TYPE}.errors.queueFull`, { max: MAX_QUEUE })));
        queue.push(job);
        return;
      }
      start(job);
    });

    function finishQueued(job: Job): void {
      job.done();
    }

    function start(job: Job): void {
      const controller = new AbortController();
      setMaxListeners(0, controller.signal);
      let credits = settings.pacing === "next" ? settings.batch : Infinity;
      let creditWaiter: (() => void) | undefined;
      const entry = {
        job,
        controller,
        stopped: false,
        finished: Promise.resolve(),
        credit: () => {
          credits += settings.batch;
          creditWaiter?.();
        },
      };
      const waitForCredit = () =>
        new Promise<void>((resolve, reject) => {
          const onAbort = () => reject(abortError("pull"));
          if (controller.signal.aborted) return onAbort();
          controller.signal.addEventListener("abort", onAbort, { once: true });
          creditWaiter = () => {
            creditWaiter = undefined;
            controller.signal.removeEventListener("abort", onAbort);
            resolve();
          };
        });
      current = entry;
      const pacing: Pacing = {
        hasCredit: () => credits > 0,
        spendCredit: () => {
          credits -= 1;
        },
        takeCredit: async () => {
          while (credits <= 0) await waitForCredit();
          credits -= 1;
        },
      };
      entry.finished = runPull(job, controller.signal, pacing, () => entry.stopped)
        .catch((error) => {
          const message = redact(String((error as Error)?.message ?? error));
          node.error(message);
          job.done(new Error(message));
        })
        .finally(() => {
          current = undefined;
          const next = queue.shift();
          if (next && !closing) start(next);
        });
    }

    async function resolveSpec(msg: NodeMessage): Promise<PullSpec> {
      const pick = (value: unknown) => (value === undefined || value === null || value === "" ? undefined : value);
      const spec: PullSpec = {
        mode: settings.mode,
        package: typeof msg.package === "string" && msg.package !== "" ? msg.package : settings.package,
        order: (pick(msg.order) as DatasetOrder | undefined) ?? settings.order,
        from: pick(msg.from) ?? (await evaluate(def.from, def.fromType, msg)),
        to: pick(msg.to) ?? (await evaluate(def.to, def.toType, msg)),
      };
      if (typeof msg.url === "string" && msg.url.trim() !== "") spec.url = msg.url;
      if (msg.resume !== undefined && msg.resume !== null) spec.resume = msg.resume as ResumeCursor;
      return spec;
    }

    function evaluate(value: string | undefined, type: string | undefined, msg: NodeMessage): Promise<unknown> {
      if (value === undefined || value === "") return Promise.resolve(undefined);
      if (!type || type === "str" || type === "datetime") return Promise.resolve(env(value));
      return new Promise((resolve, reject) => {
        RED.util.evaluateNodeProperty(value, type, node, msg, (err, result) => (err ? reject(err) : resolve(result)));
      });
    }

    async function runPull(job: Job, signal: AbortSignal, pacing: Pacing, wasStopped: () => boolean): Promise<void> {
      const { hasCredit, spendCredit, takeCredit } = pacing;
      const started = Date.now();
      const pullId = `${node.id}-${Date.now().toString(36)}-${++pullCounter}`;
      const useHooks = !!hooks && typeof hooks.add === "function";
      const window = new FlowWindow(settings.window);
      const tracker = new DeliveryTracker(window);
      const summary: Summary = { package: "", mode: undefined, items: 0, messages: 0, pages: 0, malformed: 0, durationMs: 0, cursor: null, stopped: false, flowControl: useHooks ? "hooks" : "yield" };
      let plan: PullPlan | undefined;
      let hookIds: string[] = [];
      let deliveriesPerMessage = 0;
      let failure: DatasphereError | undefined;
      let index = 0;
      let held: Held | undefined;
      let nextStatusAt = 0;
      let stallWarned = false;
      let sinceYield = 0;
      let lastPage = "";
      let readerEnded = false;

      const showProgress = () => {
        const now = Date.now();
        if (now < nextStatusAt) return;
        nextStatusAt = now + 1000;
        const seconds = Math.max(0.001, (Date.now() - started) / 1000);
        status.progress({ fill: "green", shape: "dot", text: RED._(`${TYPE}.status.pulling`, { count: summary.items, rate: Math.round(summary.items / seconds) }) });
      };

      const deliver = (message: Held, last: boolean) => {
        const parts: Record<string, unknown> = { id: pullId, index, type: "array", len: settings.arrays ? settings.arraySize : 1 };
        if (last) parts.count = index + 1;
        const msgid = `${pullId}-${index}`;
        index += 1;
        const out: NodeMessage = { _msgid: msgid, payload: message.payload, topic: summary.package, parts };
        if (useHooks) tracker.sent(msgid, deliveriesPerMessage);
        job.send([out, null]);
        if (useHooks) tracker.settleUndelivered(msgid);
        if (message.marks) {
          for (const [batch, i] of message.marks) plan!.tracker.delivered(batch, i);
          summary.items += message.marks.length;
        } else {
          plan!.tracker.delivered(message.batch!, message.index!);
          summary.items += 1;
        }
        summary.messages += 1;
      };

      /** True when a message may go now: pacing credit and room in the window (or, without hooks, no yield due). */
      const mayProceed = () => {
        if (!hasCredit()) return false;
        if (useHooks) return window.hasRoom;
        return sinceYield < settings.window;
      };

      /** Waits for pacing credit and room in the window, or, without hooks, yields one event-loop turn. */
      const waitToSend = async () => {
        await takeCredit();
        if (useHooks) {
          while (!window.hasRoom) {
            if (await window.waitForRoomOrStall(signal, settings.stallMs)) break;
            // Nothing came back for stallMs: a next node does not report completion (e.g. it threw).
            // Write off what is in flight rather than stall the pull for ever; say so once.
            if (!stallWarned) node.warn(RED._(`${TYPE}.warnings.stalled`, { count: window.inFlight, seconds: settings.stallMs / 1000 }));
            stallWarned = true;
            tracker.clear();
          }
        } else if (sinceYield >= settings.window) {
          sinceYield = 0;
          await new Promise((resolve) => setImmediate(resolve));
          if (signal.aborted) throw abortError("pull");
        }
      };

      /** One message is held back until the next arrives, so the last one can carry parts.count. */
      const sendHeld = async (last: boolean) => {
        if (!held) return;
        if (mayProceed()) spendCredit();
        else await waitToSend();
        sinceYield++;
        const message = held;
        held = undefined;
        deliver(message, last);
      };

      const hold = (next: Held): Promise<void> | undefined => {
        if (held && mayProceed()) {
          spendCredit();
          sinceYield++;
          const message = held;
          held = undefined;
          deliver(message, false);
        }
        if (!held) {
          held = next;
          return undefined;
        }
        return sendHeld(false).then(() => {
          held = next;
        });
      };

      try {
        status.set({ fill: "yellow", shape: "ring", text: RED._(`${TYPE}.status.connecting`) });
        if (!isUsableConfig(config)) throw new DatasphereError("INVALID_CONFIG", RED._(`${TYPE}.errors.noConfig`));
        const spec = await resolveSpec(job.msg);
        plan = planPull(spec, config.endpoints);
        summary.package = plan.package;
        summary.mode = plan.mode;
        if (useHooks) {
          const registered = registerHooks(tracker);
          hookIds = registered.ids;
          deliveriesPerMessage = registered.deliveries ?? 0;
        }
        const options = {
          auth: config.auth,
          isApiOrigin: (u: string) => config.endpoints.isApiOrigin(u),
          signal,
          retries: settings.retries,
          idleTimeoutMs: settings.idleTimeoutMs,
          onRetry: (info: { delayMs: number; error: DatasphereError }) => {
            status.set({ fill: "yellow", shape: "ring", text: RED._(`${TYPE}.status.retrying`, { seconds: Math.ceil(info.delayMs / 1000), reason: redact(info.error.message) }) });
          },
        };
        let arrayBuffer: unknown[] = [];
        let arrayMarks: Array<[ItemsEvent, number]> = [];
        for await (const event of readDataset(plan, options)) {
          if (event.kind === "malformed") {
            summary.malformed += 1;
            if (summary.malformed <= MALFORMED_WARNINGS) {
              node.warn(RED._(`${TYPE}.warnings.malformed`, { line: event.lineNumber, reason: event.reason, preview: redact(event.preview) }));
            }
            continue;
          }
          if (event.page && event.page.href !== lastPage) {
            lastPage = event.page.href;
            summary.pages += 1;
          }
          const items = event.items;
          for (let i = 0; i < items.length; i++) {
            if (!settings.arrays) {
              const waiting = hold({ payload: items[i], batch: event, index: i });
              if (waiting) await waiting;
              continue;
            }
            arrayBuffer.push(items[i]);
            arrayMarks.push([event, i]);
            if (arrayBuffer.length >= settings.arraySize) {
              const waiting = hold({ payload: arrayBuffer, marks: arrayMarks });
              if (waiting) await waiting;
              arrayBuffer = [];
              arrayMarks = [];
            }
          }
          showProgress();
        }
        if (arrayBuffer.length > 0) await hold({ payload: arrayBuffer, marks: arrayMarks });
        readerEnded = true;
      } catch (error) {
        failure = toDatasphereError(error, "dataset pull");
      }
      // Close the sequence so a join node downstream is not left waiting (also after an error or stop:
      // the pull is over, so the last message goes without waiting for credit or room).
      if (held && !closing) {
        if (failure) {
          const message = held;
          held = undefined;
          deliver(message, true);
        } else {
          try {
            await sendHeld(true);
          } catch (error) {
            failure = toDatasphereError(error, "dataset pull");
            const message = held;
            held = undefined;
            if (message) deliver(message, true);
          }
        }
      }
      if (readerEnded && !failure) plan?.tracker.complete();
      for (const id of hookIds) hooks!.remove(id);
      tracker.clear();
      summary.durationMs = Date.now() - started;
      summary.cursor = plan?.tracker.cursor() ?? null;
      const stopped = wasStopped() && failure?.code === "ABORTED";
      summary.stopped = stopped;
      if (closing) return job.done();
      if (failure && !stopped) summary.error = { code: failure.code, message: redact(failure.message) };
      job.send([null, { _msgid: job.msg._msgid, topic: summary.package, payload: summary }]);
      if (stopped) {
        status.set({ fill: "grey", shape: "ring", text: RED._(`${TYPE}.status.stopped`, { count: summary.items }) });
        job.done();
      } else if (failure) {
        status.set({ fill: "red", shape: "ring", text: RED._(`${TYPE}.status.error`, { reason: redact(failure.message).slice(0, 80) }) });
        job.done(new Error(redact(failure.message)));
      } else {
        status.set({ fill: "green", shape: "ring", text: RED._(`${TYPE}.status.done`, { count: summary.items }) });
        job.done();
      }
    }

    /**
     * Message hooks see every delivery in the runtime. A message we sent on output 1 stays in the
     * window until each delivery of it is completed (`onComplete`) by the node it went to, or, for
     * nodes that never call done() or hold it for a whole sequence (join, batch, sort), received
     * (`postReceive`). When every wired node is known, the number of deliveries per message is known
     * up front; otherwise `postDeliver` counts them. Only the hooks needed are added.
     */
    function registerHooks(tracker: DeliveryTracker): { deliveries?: number; ids: string[] } {
      const wired = node.wires?.[0] ?? [];
      const onReceipt = new Set<string>();
      const onCompletion = new Set<string>();
      let allKnown = true;
      for (const id of wired) {
        const target = RED.nodes.getNode(id) as (Node & { _expectedDoneCount?: number }) | null;
        if (!target) allKnown = false;
        if (!target || settings.releaseOnReceive || SEQUENCE_HOLDERS.has(target.type) || target._expectedDoneCount === 0) onReceipt.add(id);
        else onCompletion.add(id);
      }
      const ids: string[] = [];
      const add = (hook: string, fn: (event: any) => void) => {
        hooks!.add(`${hook}.${hookLabel}`, fn);
        ids.push(`${hook}.${hookLabel}`);
      };
      if (!allKnown) {
        add("postDeliver", (event: MessageHookEvent & { source?: { id: string; port?: number } }) => {
          if (event.source?.id !== node.id || event.source.port !== 0) return;
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
      return { deliveries: allKnown ? wired.length : undefined, ids };
    }

    node.on("close", (_removed: boolean, done: () => void) => {
      closing = true;
      for (const queued of queue.splice(0)) finishQueued(queued);
      const running = current;
      if (running) running.controller.abort();
      const finish = once(() => {
        status.stop();
        if (usable) config.deregister(node);
        done();
      });
      if (!running) return finish();
      const timer = setTimeout(finish, 5000);
      running.finished.then(() => {
        clearTimeout(timer);
        finish();
      });
    });
  }

  RED.nodes.registerType(TYPE, DatasphereDatasetPull);
};
