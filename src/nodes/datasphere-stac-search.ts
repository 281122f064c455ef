import { Credits } from "../core/dataset/credits";
import { DatasphereError, toDatasphereError } from "../core/errors";
import { ItemSequence } from "../core/item-sequence";
import { normalizeSearch, parseMaxItems, parseMethod, type SearchCursor, type SearchPage, type SearchPlan, type SearchSpec, type StacApiClient } from "../core/stac-search";
import { defineNode, type ConfiguredKit, type NodeDefWithServer } from "./shared/define-node";
import { hasMessageHooks, observeDeliveries } from "./shared/delivery-hooks";
import type { NodeAPI, NodeMessage, SendFunction } from "./shared/node-red";
import { RunQueue, type Job } from "./shared/run-queue";
import type { NumericSettings } from "./shared/settings";
import { isUsableStacApi, type StacApiConfigNode } from "./shared/stac-api-config";

const TYPE = "datasphere-stac-search";
/** Search parameters: node property (with a `<name>Type` TypedInput type), each overridable by `msg.<name>`. */
const PARAMS = ["collections", "ids", "bbox", "intersects", "datetime", "limit", "sortby", "fields", "filter", "maxItems"] as const;

type SearchDef = NodeDefWithServer & Partial<Record<(typeof PARAMS)[number] | `${(typeof PARAMS)[number]}Type`, string>> & {
  method?: string;
  filterLang?: string;
  output?: string;
  arraySize?: string | number;
  window?: string | number;
  release?: string;
  busy?: string;
  pacing?: string;
  retries?: string | number;
  idleTimeout?: string | number;
  stallTimeout?: string | number;
};

type UsableStacApi = StacApiConfigNode & { client: StacApiClient };

/** The completion report (output 2). */
interface SearchSummary {
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

/**
 * One search's cancellation: `stop` (the user's action) ends it with a summary, `abort` (close) does
 * not. With pacing, one page per `next` (the first page goes at once).
 */
class SearchRun {
  readonly controller = new AbortController();
  readonly pages: Credits;
  stopped = false;

  constructor(pacePages: boolean) {
    this.pages = new Credits(pacePages ? 1 : undefined);
  }

  stop(): void {
    this.stopped = true;
    this.controller.abort();
  }

  abort(): void {
    this.controller.abort();
  }
}

function settingsOf(def: SearchDef, numbers: NumericSettings) {
  return {
    arraySize: def.output === "array" ? numbers.integer("arraySize", 100) : undefined,
    window: numbers.integer("window", 200),
    releaseOnReceive: def.release === "receive",
    refuseWhenBusy: def.busy === "refuse",
    pacePages: def.pacing === "next",
    retries: numbers.integer("retries", 4, 0),
    idleTimeoutMs: numbers.integer("idleTimeout", 60) * 1000,
    stallMs: numbers.integer("stallTimeout", 60) * 1000,
  };
}

function start(kit: ConfiguredKit<SearchDef, UsableStacApi>) {
  const { RED, node, def, config, status, t } = kit;
  const client = config.client;
  const settings = settingsOf(def, kit.numbers);
  let counter = 0;
  status.set({ fill: "grey", shape: "ring", text: t("status.idle") });

  /** `msg.<name>` when set, else the node's typed property (`${VAR}` expanded in texts). */
  async function param(name: (typeof PARAMS)[number], msg: NodeMessage): Promise<unknown> {
    const fromMsg = msg[name];
    if (fromMsg !== undefined && fromMsg !== null && fromMsg !== "") return fromMsg;
    const type = def[`${name}Type`];
    return kit.evaluate(def[name], type === "num" ? "str" : type, msg);
  }

  async function specOf(msg: NodeMessage): Promise<SearchSpec> {
    const values: Record<string, unknown> = {};
    for (const name of PARAMS) values[name] = await param(name, msg);
    const filterLang = msg.filterLang ?? msg["filter-lang"] ?? (def.filterLang && def.filterLang !== "auto" ? def.filterLang : undefined);
    const spec: SearchSpec = { params: normalizeSearch({ ...values, filterLang }), method: parseMethod(msg.method ?? def.method), maxItems: parseMaxItems(values.maxItems) };
    if (msg.resume !== undefined && msg.resume !== null) spec.resume = msg.resume as SearchCursor;
    return spec;
  }

  /**
   * One page per `next`: the previous page goes out whole (its last message is not held back for
   * this one), then the page waits for its credit. A stop while waiting closes the sequence with this
   * page's first Item, so that a join downstream is not left waiting.
   */
  async function pageTurn(run: SearchRun, sequence: ItemSequence<[SearchPage, number]>, page: SearchPage, summary: SearchSummary): Promise<void> {
    if (summary.pages > 0) await sequence.flush();
    if (!run.pages.has()) status.set({ fill: "blue", shape: "ring", text: t("status.waitingNext", { count: summary.items, pages: summary.pages }) });
    try {
      await run.pages.take(run.controller.signal, "search");
    } catch (error) {
      if (run.stopped) {
        summary.pages += 1;
        sequence.push(page.items[0], [page, page.offset]);
      }
      throw error;
    }
    status.set({ fill: "green", shape: "dot", text: t("status.searching", { count: summary.items, pages: summary.pages }) });
  }

  async function runSearch(job: Job, run: SearchRun): Promise<SearchSummary> {
    const started = Date.now();
    const signal = run.controller.signal;
    const summary: SearchSummary = { api: client.url, items: 0, messages: 0, pages: 0, durationMs: 0, cursor: null, stopped: false, flowControl: hasMessageHooks(RED) ? "hooks" : "yield" };
    const options = {
      signal,
      retries: settings.retries,
      idleTimeoutMs: settings.idleTimeoutMs,
      onRetry: (report: { retryInMs: number; error: DatasphereError }) =>
        status.set({ fill: "yellow", shape: "ring", text: t("status.retrying", { seconds: Math.ceil(report.retryInMs / 1000), reason: kit.redact(report.error.message) }) }),
    };
    let plan: SearchPlan | undefined;
    let sequence: ItemSequence<[SearchPage, number]> | undefined;
    let failure: DatasphereError | undefined;
    let nextStatusAt = 0;
    try {
      plan = await client.plan(await specOf(job.msg), options);
      const position = plan.position;
      sequence = new ItemSequence<[SearchPage, number]>({
        id: `${node.id}-${Date.now().toString(36)}-${++counter}`,
        arraySize: settings.arraySize,
        window: settings.window,
        stallMs: settings.stallMs,
        signal,
        observe: hasMessageHooks(RED) ? (tracker) => observeDeliveries(RED, node, tracker, settings.releaseOnReceive) : undefined,
        send: (m) => job.send([{ _msgid: m.msgid, payload: m.payload, topic: client.url, parts: m.parts }, null]),
        delivered: (marks) => {
          for (const [page, index] of marks) position.itemDelivered(page, index);
          summary.items += marks.length;
        },
        onStall: (count) => node.warn(t("warnings.stalled", { count, seconds: settings.stallMs / 1000 })),
      });
      for await (const page of client.pages(plan, options)) {
        if (settings.pacePages) await pageTurn(run, sequence, page, summary);
        summary.pages += 1;
        if (page.numberMatched !== undefined) summary.numberMatched = page.numberMatched;
        for (let i = 0; i < page.items.length; i++) {
          const waiting = sequence.push(page.items[i], [page, page.offset + i]);
          if (waiting) await waiting;
        }
        if (Date.now() >= nextStatusAt) {
          nextStatusAt = Date.now() + 1000;
          status.set({ fill: "green", shape: "dot", text: t("status.searching", { count: summary.items, pages: summary.pages }) });
        }
      }
      await sequence.end(true);
      position.complete();
    } catch (error) {
      failure = toDatasphereError(error, "stac search");
      if (queue.closing) sequence?.abandon();
      else await sequence?.end(false).catch(() => undefined);
    }
    summary.messages = sequence?.messages ?? 0;
    summary.durationMs = Date.now() - started;
    summary.cursor = plan?.position.cursor() ?? null;
    summary.stopped = run.stopped && failure?.code === "ABORTED";
    if (failure && !summary.stopped) summary.error = { code: failure.code, message: kit.redact(failure.message) };
    if (queue.closing) return summary;
    job.send([null, { _msgid: job.msg._msgid, topic: client.url, payload: summary }]);
    if (summary.stopped) {
      status.set({ fill: "grey", shape: "ring", text: t("status.stopped", { count: summary.items }) });
      job.resolve();
    } else if (failure) {
      const typed = kit.failure(failure);
      status.set({ fill: "red", shape: "ring", text: t("status.error", { reason: typed.message.slice(0, 80) }) });
      job.reject(typed);
    } else {
      status.set({ fill: "green", shape: "ring", text: t("status.done", { count: summary.items }) });
      job.resolve();
    }
    return summary;
  }

  const queue = new RunQueue<SearchRun>({
    refuseWhenBusy: settings.refuseWhenBusy,
    t,
    begin: (job) => {
      status.set({ fill: "yellow", shape: "ring", text: t("status.connecting") });
      const run = new SearchRun(settings.pacePages);
      return { run, finished: runSearch(job, run).then(() => undefined) };
    },
  });

  return {
    input: (msg: NodeMessage, send: SendFunction) => queue.input(msg, send),
    actions: {
      stop: () => queue.stop(),
      next: () => {
        if (!settings.pacePages) throw new DatasphereError("BAD_REQUEST", t("errors.nextNeedsPacing"));
        queue.current?.pages.grant();
      },
    },
    close: () => queue.close(),
  };
}

export = function register(RED: NodeAPI): void {
  defineNode<SearchDef, UsableStacApi>(RED, TYPE, { hasActions: true, isUsable: isUsableStacApi, start });
};
