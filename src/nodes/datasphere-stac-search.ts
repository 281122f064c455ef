import { setMaxListeners } from "node:events";
import { DatasphereError, toDatasphereError } from "../core/errors";
import { normalizeSearch, parseMaxItems, parseMethod, type SearchCursor, type SearchPage, type SearchSpec } from "../core/stac-search";
import { ItemSequence } from "./shared/item-sequence";
import { resolveEnv } from "./shared/env";
import type { DoneFunction, Node, NodeAPI, NodeDef, NodeMessage, SendFunction } from "./shared/node-red";
import { once } from "./shared/once";
import { numberOr, positiveInt } from "./shared/settings";
import { isUsableStacApi, type StacApiConfigNode } from "./shared/stac-api-config";
import { ThrottledStatus } from "./shared/status";

const TYPE = "datasphere-stac-search";
const MAX_QUEUE = 100;
/** Search parameters: node property (with a `<name>Type` TypedInput type), each overridable by `msg.<name>`. */
const PARAMS = ["collections", "ids", "bbox", "intersects", "datetime", "limit", "sortby", "fields", "filter", "maxItems"] as const;

type SearchDef = NodeDef & Partial<Record<(typeof PARAMS)[number] | `${(typeof PARAMS)[number]}Type`, string>> & {
  server?: string;
  method?: string;
  filterLang?: string;
  output?: string;
  arraySize?: string | number;
  window?: string | number;
  release?: string;
  busy?: string;
  retries?: string | number;
  idleTimeout?: string | number;
  stallTimeout?: string | number;
};

interface Job {
  msg: NodeMessage;
  send: SendFunction;
  done: DoneFunction;
}

interface Summary {
  api: string;
  items: number;
  messages: number;
  pages: number;
  numberMatched?: number;
  durationMs: number;
  cursor: SearchCursor | null;
  stopped: boolean;
  flowControl: "hooks" | "yield";
  error?: { code: string; message: string };
}

type Mark = [SearchPage, number];

export = function register(RED: NodeAPI): void {
  function DatasphereStacSearch(this: Node & { wires?: string[][] }, def: SearchDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const config = RED.nodes.getNode(def.server ?? "") as StacApiConfigNode | null;
    const env = (v: string | number | undefined) => resolveEnv(RED, node, v === undefined ? undefined : String(v));
    const settings = {
      arrays: def.output === "array",
      arraySize: positiveInt(env(def.arraySize), 100),
      window: positiveInt(env(def.window), 200),
      releaseOnReceive: def.release === "receive",
      refuseWhenBusy: def.busy === "refuse",
      retries: Math.floor(numberOr(env(def.retries), 4, 0)),
      idleTimeoutMs: positiveInt(env(def.idleTimeout), 60) * 1000,
      stallMs: positiveInt(env(def.stallTimeout), 60) * 1000,
    };
    const status = new ThrottledStatus(node);
    const usable = isUsableStacApi(config);
    const redact = (text: string) => (config ? config.redact(text) : text);
    const queue: Job[] = [];
    let current: { controller: AbortController; stopped: boolean; finished: Promise<void> } | undefined;
    let closing = false;
    let counter = 0;

    if (usable) config.register(node);
    status.set(usable ? { fill: "grey", shape: "ring", text: RED._(`${TYPE}.status.idle`) } : { fill: "red", shape: "ring", text: RED._(`${TYPE}.status.noConfig`) });

    node.on("input", (msg: NodeMessage, send: SendFunction, done: DoneFunction) => {
      if (msg.action === "stop") {
        for (const queued of queue.splice(0)) queued.done();
        if (current) {
          current.stopped = true;
          current.controller.abort();
        }
        return done();
      }
      if (msg.action !== undefined && msg.action !== null && msg.action !== "") return done(new Error(RED._(`${TYPE}.errors.unknownAction`, { action: String(msg.action).slice(0, 40) })));
      if (!usable) return done(new Error(RED._(`${TYPE}.errors.noConfig`)));
      const job = { msg, send, done: once(done) };
      if (current) {
        if (settings.refuseWhenBusy) return done(new Error(RED._(`${TYPE}.errors.busy`)));
        if (queue.length >= MAX_QUEUE) return done(new Error(RED._(`${TYPE}.errors.queueFull`, { max: MAX_QUEUE })));
        return void queue.push(job);
      }
      start(job);
    });

    function start(job: Job): void {
      const controller = new AbortController();
      setMaxListeners(0, controller.signal);
      const entry = { controller, stopped: false, finished: Promise.resolve() };
      current = entry;
      entry.finished = runSearch(job, controller.signal, () => entry.stopped)
        .catch((error) => job.done(new Error(redact(String((error as Error)?.message ?? error)))))
        .finally(() => {
          current = undefined;
          const next = queue.shift();
          if (next && !closing) start(next);
        });
    }

    /** A parameter: `msg.<name>` when set, else the node's typed property (`${VAR}` expanded in texts). */
    async function param(name: (typeof PARAMS)[number], msg: NodeMessage): Promise<unknown> {
      const fromMsg = msg[name];
      if (fromMsg !== undefined && fromMsg !== null && fromMsg !== "") return fromMsg;
      const value = def[name];
      const type = def[`${name}Type`];
      if (value === undefined || value === "") return undefined;
      if (!type || type === "str" || type === "num") return env(value);
      return new Promise((resolve, reject) => RED.util.evaluateNodeProperty(value, type, node, msg, (err, result) => (err ? reject(err) : resolve(result))));
    }

    async function resolveSpec(msg: NodeMessage): Promise<SearchSpec> {
      const values: Record<string, unknown> = {};
      for (const name of PARAMS) values[name] = await param(name, msg);
      const filterLang = msg.filterLang ?? msg["filter-lang"] ?? (def.filterLang && def.filterLang !== "auto" ? def.filterLang : undefined);
      const spec: SearchSpec = { params: normalizeSearch({ ...values, filterLang }), method: parseMethod(msg.method ?? def.method), maxItems: parseMaxItems(values.maxItems) };
      if (msg.resume !== undefined && msg.resume !== null) spec.resume = msg.resume as SearchCursor;
      return spec;
    }

    async function runSearch(job: Job, signal: AbortSignal, wasStopped: () => boolean): Promise<void> {
      const started = Date.now();
      const client = (config as StacApiConfigNode).client!;
      const summary: Summary = { api: client.url, items: 0, messages: 0, pages: 0, durationMs: 0, cursor: null, stopped: false, flowControl: "yield" };
      let failure: DatasphereError | undefined;
      let sequence: ItemSequence<Mark> | undefined;
      let plan: Awaited<ReturnType<typeof client.plan>> | undefined;
      let nextStatusAt = 0;
      const run = {
        signal,
        retries: settings.retries,
        idleTimeoutMs: settings.idleTimeoutMs,
        onRetry: (info: { delayMs: number; error: DatasphereError }) =>
          status.set({ fill: "yellow", shape: "ring", text: RED._(`${TYPE}.status.retrying`, { seconds: Math.ceil(info.delayMs / 1000), reason: redact(info.error.message) }) }),
      };
      try {
        status.set({ fill: "yellow", shape: "ring", text: RED._(`${TYPE}.status.connecting`) });
        plan = await client.plan(await resolveSpec(job.msg), run);
        const position = plan.position;
        sequence = new ItemSequence<Mark>(RED, node, job.send, { ...settings, topic: client.url, onStall: (count) => node.warn(RED._(`${TYPE}.warnings.stalled`, { count, seconds: settings.stallMs / 1000 })) }, `${node.id}-${Date.now().toString(36)}-${++counter}`, signal, (marks) => {
          for (const [page, index] of marks) position.itemDelivered(page, index);
          summary.items += marks.length;
        });
        summary.flowControl = sequence.flowControl;
        for await (const page of client.pages(plan, run)) {
          summary.pages += 1;
          if (page.numberMatched !== undefined) summary.numberMatched = page.numberMatched;
          for (let i = 0; i < page.items.length; i++) await sequence.push(page.items[i], [page, page.offset + i]);
          if (Date.now() >= nextStatusAt) {
            nextStatusAt = Date.now() + 1000;
            status.set({ fill: "green", shape: "dot", text: RED._(`${TYPE}.status.searching`, { count: summary.items, pages: summary.pages }) });
          }
        }
        await sequence.end(!closing);
        position.complete();
      } catch (error) {
        failure = toDatasphereError(error, "stac search");
        if (sequence) await sequence.end(false).catch(() => undefined);
      }
      summary.messages = sequence?.messages ?? 0;
      summary.durationMs = Date.now() - started;
      summary.cursor = plan?.position.cursor() ?? null;
      const stopped = wasStopped() && failure?.code === "ABORTED";
      summary.stopped = stopped;
      if (closing) return job.done();
      if (failure && !stopped) summary.error = { code: failure.code, message: redact(failure.message) };
      job.send([null, { _msgid: job.msg._msgid, topic: client.url, payload: summary }]);
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

    node.on("close", (_removed: boolean, done: () => void) => {
      closing = true;
      for (const queued of queue.splice(0)) queued.done();
      const running = current;
      running?.controller.abort();
      const finish = once(() => {
        status.stop();
        if (usable) config.deregister(node);
        done();
      });
      if (!running) return finish();
      const timer = setTimeout(finish, 5000);
      void running.finished.then(() => {
        clearTimeout(timer);
        finish();
      });
    });
  }

  RED.nodes.registerType(TYPE, DatasphereStacSearch);
};
