import type { DatasphereError } from "../core/errors";
import { checkStac, describeStac } from "../core/stac";
import { Subscription, type MalformedEvent, type SubscriptionItem, type SubscriptionStateChange } from "../core/subscription";
import { isUsableConfig, type DatasphereConfigNode } from "./shared/config-node";
import { resolveEnv } from "./shared/env";
import type { DoneFunction, Node, NodeAPI, NodeDef, NodeMessage } from "./shared/node-red";
import { ThrottledStatus } from "./shared/status";
import { booleanFrom, numberOr } from "./shared/settings";

const TYPE = "datasphere-subscribe-in";
const CONTEXT_KEY = "datasphere-last-event-id";
const SAVE_EVERY_MS = 1000;
const CONTEXT_DEADLINE_MS = 2000;

interface SubscribeDef extends NodeDef {
  server?: string;
  package?: string;
  output?: string;
  stacCheck?: string;
  idleTimeout?: number | string;
  backoffCap?: number | string;
  connectTimeout?: number | string;
  autoConnect?: boolean | string;
  resume?: boolean | string;
}

interface SavedPosition {
  package: string;
  lastEventId: string;
}

/** The first context store that keeps values across restarts (not the memory module), if any. */
function persistentStore(settings: Record<string, unknown>): string | undefined {
  let stores: unknown;
  try {
    stores = settings.contextStorage;
  } catch {
    return undefined;
  }
  if (!stores || typeof stores !== "object") return undefined;
  for (const [name, store] of Object.entries(stores as Record<string, unknown>)) {
    if (store && typeof store === "object" && (store as { module?: unknown }).module !== "memory") return name;
  }
  return undefined;
}

export = function register(RED: NodeAPI): void {
  const t = (key: string, subs?: Record<string, unknown>) => RED._(`${TYPE}.${key}`, subs);

  function reasonText(error: DatasphereError | undefined): string {
    switch (error?.code) {
      case "AUTH":
        return t("reason.auth");
      case "NOT_FOUND":
        return t("reason.notFound");
      case "BAD_REQUEST":
        return t("reason.badRequest");
      case "RATE_LIMITED":
        return t("reason.rateLimited");
      case "SERVER":
        return t("reason.server", { status: error.status });
      case "TIMEOUT":
        return t("reason.timeout");
      case "PROTOCOL":
        return t("reason.protocol");
      default:
        return t("reason.network");
    }
  }

  function SubscribeIn(this: Node, def: SubscribeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const config = def.server ? (RED.nodes.getNode(def.server) as DatasphereConfigNode | null) : null;
    const status = new ThrottledStatus(node);
    const outputString = def.output === "string";
    const stacCheck = def.stacCheck === "warn" || def.stacCheck === "drop" ? def.stacCheck : "off";
    const idleTimeoutMs = numberOr(resolveEnv(RED, node, String(def.idleTimeout ?? "")), 90, 0.1) * 1000;
    const backoffCapMs = numberOr(resolveEnv(RED, node, String(def.backoffCap ?? "")), 60, 0.1) * 1000;
    const connectTimeoutMs = numberOr(resolveEnv(RED, node, String(def.connectTimeout ?? "")), 30, 0.1) * 1000;
    const autoConnect = booleanFrom(def.autoConnect) ?? true;
    const resume = booleanFrom(def.resume) ?? false;
    const store = resume ? persistentStore(RED.settings) : undefined;
    let pkg = resolveEnv(RED, node, def.package).trim();

    let subscription: Subscription | undefined;
    let subscribedPackage = "";
    let generation = 0;
    let closing = false;
    let queue: Promise<unknown> = Promise.resolve();
    let rateTimer: NodeJS.Timeout | undefined;
    let saveTimer: NodeJS.Timeout | undefined;
    let loggedState = "";
    let loggedReason = "";
    let warnedAt = 0;
    let warnSuppressed = 0;
    const counts = { items: 0, malformed: 0, invalid: 0, lastTickItems: 0, lastTickAt: 0 };

    if (!isUsableConfig(config)) {
      status.set({ fill: "red", shape: "ring", text: config?.configError ? t("status.invalidConfig") : t("status.noConfig") });
      node.on("input", (_msg: NodeMessage, _send: unknown, done: DoneFunction) => done(new Error(t("errors.noConfig"))));
      node.on("close", (_removed: boolean, done: () => void) => {
        status.stop();
        done();
      });
      return;
    }
    const cfg = config;
    cfg.register(node);

    // ---- status -----------------------------------------------------------------------------
    function connectedStatus(): void {
      const now = Date.now();
      const elapsed = (now - counts.lastTickAt) / 1000;
      const rate = elapsed > 0 ? Math.round((counts.items - counts.lastTickItems) / elapsed) : 0;
      counts.lastTickItems = counts.items;
      counts.lastTickAt = now;
      const bad = (subscription?.stats.malformed ?? 0) + counts.invalid;
      status.set({
        fill: "green",
        shape: "dot",
        text: bad > 0 ? t("status.connectedWithProblems", { count: counts.items, rate, bad }) : t("status.connected", { count: counts.items, rate }),
      });
    }

    function stopRateTimer(): void {
      if (rateTimer) clearInterval(rateTimer);
      rateTimer = undefined;
    }

    function onState(change: SubscriptionStateChange): void {
      if (closing) return;
      switch (change.state) {
        case "connecting":
          stopRateTimer();
          if (loggedState !== "backing-off" && loggedState !== "failed") status.set({ fill: "yellow", shape: "ring", text: t("status.connecting") });
          return;
        case "connected":
          counts.lastTickItems = counts.items;
          counts.lastTickAt = Date.now();
          connectedStatus();
          stopRateTimer();
          rateTimer = setInterval(connectedStatus, 1000);
          if (loggedState !== "connected") node.log(t("log.connected", { package: subscribedPackage }));
          loggedState = "connected";
          loggedReason = "";
          return;
        case "backing-off":
        case "failed": {
          stopRateTimer();
          const reason = reasonText(change.error);
          const seconds = Math.max(1, Math.round((change.retryInMs ?? 0) / 1000));
          if (change.state === "failed") status.set({ fill: "red", shape: "ring", text: t("status.failed", { reason, seconds }) });
          else status.set({ fill: "yellow", shape: "ring", text: t("status.retrying", { seconds, attempt: change.attempt ?? 1 }) });
          // Log state changes, not attempts: once per distinct reason until the next connection.
          if (reason !== loggedReason) {
            const detail = cfg.redact(change.error?.message ?? "");
            if (change.state === "failed") node.warn(t("log.failed", { package: subscribedPackage, reason, detail }));
            else node.log(t("log.retrying", { package: subscribedPackage, reason, detail }));
            loggedReason = reason;
          }
          loggedState = change.state;
          return;
        }
        case "stopped":
          stopRateTimer();
          status.set({ fill: "red", shape: "ring", text: t("status.stopped") });
          node.warn(t("log.stopped", { package: subscribedPackage }));
          loggedState = change.state;
          return;
        default:
          stopRateTimer();
      }
    }

    // ---- items ------------------------------------------------------------------------------
    function warnInvalid(item: Record<string, unknown>, problems: string[], eventId: string | undefined): void {
      const now = Date.now();
      if (now - warnedAt < 1000) {
        warnSuppressed += 1;
        return;
      }
      warnedAt = now;
      const more = warnSuppressed;
      warnSuppressed = 0;
      node.warn(
        t("errors.invalidStac", {
          what: cfg.redact(describeStac(item)).slice(0, 200),
          id: eventId ?? "-",
          problems: cfg.redact(problems.slice(0, 5).join("; ")),
          more,
        }),
      );
    }

    function onItem(event: SubscriptionItem): void {
      if (stacCheck !== "off") {
        const check = checkStac(event.item);
        const problems = check.kind === "Item" || check.problems.length > 0 ? check.problems : [`not an Item (a ${check.kind})`];
        if (problems.length > 0) {
          counts.invalid += 1;
          warnInvalid(event.item, problems, event.eventId);
          if (stacCheck === "drop") return;
        }
      }
      counts.items += 1;
      const msg: NodeMessage = { payload: outputString ? event.data : event.item, topic: subscribedPackage };
      if (event.eventId !== undefined) msg.eventId = event.eventId;
      node.send(msg);
      if (resume && !saveTimer) saveTimer = setTimeout(savePosition, SAVE_EVERY_MS);
    }

    function onMalformed(event: MalformedEvent): void {
      counts.malformed += 1;
      const reason = event.reason === "not JSON" ? t("errors.notJson") : t("errors.notObject");
      node.error(t("errors.malformed", { id: event.eventId ?? "-", reason, preview: event.preview }), {
        topic: subscribedPackage,
        eventId: event.eventId,
        payload: event.preview,
      });
      if (event.last) node.warn(t("errors.malformedMore"));
    }

    // ---- resume position --------------------------------------------------------------------
    function loadPosition(forPackage: string): Promise<string | undefined> {
      if (!resume) return Promise.resolve(undefined);
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(undefined), CONTEXT_DEADLINE_MS);
        try {
          node.context().get(CONTEXT_KEY, store, (err, value) => {
            clearTimeout(timer);
            const saved = value as SavedPosition | undefined;
            resolve(!err && saved && saved.package === forPackage && typeof saved.lastEventId === "string" && saved.lastEventId ? saved.lastEventId : undefined);
          });
        } catch {
          clearTimeout(timer);
          resolve(undefined);
        }
      });
    }

    function savePosition(current: Subscription | undefined = subscription): Promise<void> {
      if (saveTimer) clearTimeout(saveTimer);
      saveTimer = undefined;
      if (!resume || !current || current.lastEventId === "") return Promise.resolve();
      const value: SavedPosition = { package: subscribedPackage, lastEventId: current.lastEventId };
      return new Promise((resolve) => {
        const timer = setTimeout(resolve, CONTEXT_DEADLINE_MS);
        try {
          node.context().set(CONTEXT_KEY, value, store, () => {
            clearTimeout(timer);
            resolve();
          });
        } catch {
          clearTimeout(timer);
          resolve();
        }
      });
    }

    // ---- connect / disconnect ---------------------------------------------------------------
    async function connect(): Promise<void> {
      if (subscription || closing) return;
      if (!pkg) {
        status.set({ fill: "red", shape: "ring", text: t("status.noPackage") });
        return;
      }
      const mine = ++generation;
      const forPackage = pkg;
      status.set({ fill: "yellow", shape: "ring", text: t("status.connecting") });
      const lastEventId = await loadPosition(forPackage);
      if (mine !== generation || closing || subscription) return;
      const endpoints = cfg.endpoints;
      const auth = cfg.auth;
      subscribedPackage = forPackage;
      loggedState = "";
      loggedReason = "";
      subscription = new Subscription({
        url: endpoints.subscription(forPackage),
        headers: () => auth.headersFor(endpoints.subscription(forPackage)),
        lastEventId,
        connectTimeoutMs,
        idleTimeoutMs,
        maxRetryMs: backoffCapMs,
        slowRetryMs: Math.max(30_000, Math.min(backoffCapMs, 300_000)),
        redact: (text) => cfg.redact(text),
        what: `subscription "${forPackage}"`,
        onItem,
        onMalformed,
        onState,
        onNotice: (notice) => node.warn(cfg.redact(notice.message)),
      });
      subscription.start();
    }

    async function disconnect(): Promise<void> {
      generation += 1;
      stopRateTimer();
      const current = subscription;
      if (!current) return;
      subscription = undefined;
      await current.close();
      await savePosition(current);
      loggedState = "";
    }

    /** Control messages run one after another. */
    function enqueue(work: () => Promise<void>, done: DoneFunction): void {
      const run = queue.then(work);
      queue = run.catch(() => undefined);
      run.then(
        () => done(),
        (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
      );
    }

    node.on("input", (msg: NodeMessage, _send: unknown, done: DoneFunction) => {
      const action = msg.action;
      if (action === "connect") {
        enqueue(connect, done);
      } else if (action === "disconnect") {
        enqueue(async () => {
          await disconnect();
          if (!closing) status.set({ fill: "grey", shape: "ring", text: t("status.disconnected") });
        }, done);
      } else if (action === "subscribe") {
        // Message content is taken literally: ${VAR} belongs to the node's configuration only.
        const next = typeof msg.package === "string" ? msg.package.trim() : "";
        if (!next) {
          done(new Error(t("errors.noPackageInMessage")));
          return;
        }
        enqueue(async () => {
          if (next === subscribedPackage && subscription) return;
          await disconnect();
          pkg = next;
          counts.items = counts.malformed = counts.invalid = 0;
          await connect();
        }, done);
      } else {
        done(new Error(t("errors.unknownAction", { action: typeof action === "string" ? action.slice(0, 40) : typeof action })));
      }
    });

    node.on("close", (_removed: boolean, done: () => void) => {
      generation += 1;
      status.stop();
      stopRateTimer();
      const current = subscription;
      const finish = () => {
        closing = true;
        if (saveTimer) clearTimeout(saveTimer);
        saveTimer = undefined;
        cfg.deregister(node);
        done();
      };
      if (!current) {
        finish();
        return;
      }
      // Abort at once, then save the position (bounded by CONTEXT_DEADLINE_MS).
      closing = true;
      subscription = undefined;
      current
        .close()
        .then(() => savePosition(current))
        .then(finish, finish);
    });

    if (autoConnect) void connect();
    else status.set({ fill: "grey", shape: "ring", text: t("status.disconnected") });
  }

  RED.nodes.registerType(TYPE, SubscribeIn);
};
