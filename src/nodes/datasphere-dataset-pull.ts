import type { PullMode, PullSpec, ResumeCursor } from "../core/dataset";
import { PullSession, type PullSummary } from "../core/dataset/pull-session";
import type { DatasetOrder } from "../core/endpoints";
import { DatasphereError } from "../core/errors";
import { defineNode, type ConfiguredKit, type NodeDefWithServer } from "./shared/define-node";
import { hasMessageHooks, observeDeliveries } from "./shared/delivery-hooks";
import type { NodeAPI, NodeMessage, SendFunction } from "./shared/node-red";
import { RunQueue, type Job } from "./shared/run-queue";
import { oneOf, type NumericSettings } from "./shared/settings";

const TYPE = "datasphere-dataset-pull";
const MALFORMED_WARNINGS = 10;

interface PullDef extends NodeDefWithServer {
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
  maxBodyMB?: number | string;
  stallTimeout?: number | string;
}

function settingsOf(def: PullDef, env: (v: string | undefined) => string, numbers: NumericSettings) {
  return {
    package: env(def.package).trim(),
    mode: oneOf<PullMode>(env(def.mode), ["stream", "paginate", "item"], "stream"),
    order: oneOf<DatasetOrder>(env(def.order), ["new", "old"], "new"),
    arraySize: def.output === "array" ? numbers.integer("arraySize", 100) : undefined,
    window: numbers.integer("window", 200),
    releaseOnReceive: def.release === "receive",
    creditBatch: def.pacing === "next" ? numbers.integer("batch", 100) : undefined,
    refuseWhenBusy: def.busy === "refuse",
    retries: numbers.integer("retries", 4, 0),
    idleTimeoutMs: numbers.integer("idleTimeout", 60) * 1000,
    maxBodyBytes: numbers.integer("maxBodyMB", 64) * 1024 * 1024,
    stallMs: numbers.integer("stallTimeout", 60) * 1000,
  };
}

function start(kit: ConfiguredKit<PullDef>) {
  const { RED, node, def, config, status, t } = kit;
  const settings = settingsOf(def, kit.env, kit.numbers);
  let pullCounter = 0;
  status.set({ fill: "grey", shape: "ring", text: t("status.idle") });

  async function specOf(msg: NodeMessage): Promise<PullSpec> {
    const pick = (value: unknown) => (value === undefined || value === null || value === "" ? undefined : value);
    const spec: PullSpec = {
      mode: settings.mode,
      package: typeof msg.package === "string" && msg.package !== "" ? msg.package : settings.package,
      order: (pick(msg.order) as DatasetOrder | undefined) ?? settings.order,
      from: pick(msg.from) ?? (await kit.evaluate(def.from, def.fromType, msg)),
      to: pick(msg.to) ?? (await kit.evaluate(def.to, def.toType, msg)),
    };
    if (typeof msg.url === "string" && msg.url.trim() !== "") spec.url = msg.url;
    if (msg.resume !== undefined && msg.resume !== null) spec.resume = msg.resume as ResumeCursor;
    return spec;
  }

  function sessionFor(job: Job): PullSession {
    const pullId = `${node.id}-${Date.now().toString(36)}-${++pullCounter}`;
    return new PullSession({
      spec: () => specOf(job.msg),
      endpoints: config.endpoints,
      reader: {
        auth: config.auth,
        isApiOrigin: (u: string) => config.endpoints.isApiOrigin(u),
        retries: settings.retries,
        idleTimeoutMs: settings.idleTimeoutMs,
        maxBodyBytes: settings.maxBodyBytes,
        onRetry: (report) => status.set({ fill: "yellow", shape: "ring", text: t("status.retrying", { seconds: Math.ceil(report.retryInMs / 1000), reason: kit.redact(report.error.message) }) }),
      },
      pullId,
      window: settings.window,
      arraySize: settings.arraySize,
      creditBatch: settings.creditBatch,
      stallMs: settings.stallMs,
      observe: hasMessageHooks(RED) ? (tracker) => observeDeliveries(RED, node, tracker, settings.releaseOnReceive) : undefined,
      send: (m) => job.send([{ _msgid: m.msgid, payload: m.payload, topic: m.package, parts: m.parts }, null]),
      redact: kit.redact,
      onMalformed: (event, count) => {
        if (count <= MALFORMED_WARNINGS) node.warn(t("warnings.malformed", { line: event.lineNumber, reason: event.reason, preview: event.preview }));
      },
      onProgress: (items, elapsedMs) => status.progress({ fill: "green", shape: "dot", text: t("status.pulling", { count: items, rate: Math.round(items / Math.max(0.001, elapsedMs / 1000)) }) }),
      onStall: (count) => node.warn(t("warnings.stalled", { count, seconds: settings.stallMs / 1000 })),
    });
  }

  const queue = new RunQueue<PullSession>({
    refuseWhenBusy: settings.refuseWhenBusy,
    t,
    begin: (job) => {
      const session = sessionFor(job);
      status.set({ fill: "yellow", shape: "ring", text: t("status.connecting") });
      return { run: session, finished: session.run().then((summary) => finish(job, session, summary)) };
    },
  });

  function finish(job: Job, session: PullSession, summary: PullSummary): void {
    if (queue.closing) return job.resolve();
    job.send([null, { _msgid: job.msg._msgid, topic: summary.package, payload: summary }]);
    if (summary.stopped) {
      status.set({ fill: "grey", shape: "ring", text: t("status.stopped", { count: summary.items }) });
      job.resolve();
    } else if (session.failure) {
      const failure = kit.failure(session.failure);
      status.set({ fill: "red", shape: "ring", text: t("status.error", { reason: failure.message.slice(0, 80) }) });
      job.reject(failure);
    } else {
      status.set({ fill: "green", shape: "ring", text: t("status.done", { count: summary.items }) });
      job.resolve();
    }
  }

  return {
    input: (msg: NodeMessage, send: SendFunction) => queue.input(msg, send),
    actions: {
      stop: () => queue.stop(),
      next: () => {
        if (settings.creditBatch === undefined) throw new DatasphereError("BAD_REQUEST", t("errors.nextNeedsPacing"));
        queue.current?.credit();
      },
    },
    close: () => queue.close(),
  };
}

export = function register(RED: NodeAPI): void {
  defineNode<PullDef>(RED, TYPE, { hasActions: true, start });
};
