import { DatasphereError } from "../core/errors";
import { Subscription, type MalformedEvent, type SubscriptionItem, type SubscriptionStateChange } from "../core/subscription";
import { defineNode, type ConfiguredKit, type NodeDefWithServer } from "./shared/define-node";
import type { NodeAPI, NodeMessage } from "./shared/node-red";
import { ItemArrays } from "./shared/item-arrays";
import { itemWindowSender } from "./shared/item-window-sender";
import { messageIdSequence } from "./shared/message-id";
import { RateMeter } from "./shared/rate-meter";
import { persistentStore, ResumeStore } from "./shared/resume-store";
import { booleanFrom } from "./shared/settings";
import { StacCheckWarnings } from "./shared/stac-check-warnings";

const TYPE = "datasphere-subscribe-in";
const REASONS: Record<string, string> = {
  AUTH: "reason.auth",
  NOT_FOUND: "reason.notFound",
  BAD_REQUEST: "reason.badRequest",
  RATE_LIMITED: "reason.rateLimited",
  SERVER: "reason.server",
  TIMEOUT: "reason.timeout",
  PROTOCOL: "reason.protocol",
};

interface SubscribeDef extends NodeDefWithServer {
  package?: string;
  output?: string;
  messages?: string;
  arraySize?: number | string;
  stacCheck?: string;
  idleTimeout?: number | string;
  backoffCap?: number | string;
  connectTimeout?: number | string;
  autoConnect?: boolean | string;
  resume?: boolean | string;
  window?: number | string;
  stallTimeout?: number | string;
}

function start(kit: ConfiguredKit<SubscribeDef>) {
  const { RED, node, def, config, status, t } = kit;
  const seconds = (property: string, fallback: number) => kit.numbers.number(property, fallback, 0.1) * 1000;
  const outputString = def.output === "string";
  const stacCheck = def.stacCheck === "warn" || def.stacCheck === "drop" ? def.stacCheck : "off";
  const idleTimeoutMs = seconds("idleTimeout", 90);
  const backoffCapMs = seconds("backoffCap", 60);
  const connectTimeoutMs = seconds("connectTimeout", 30);
  const autoConnect = booleanFrom(def.autoConnect) ?? true;
  const resume = booleanFrom(def.resume) ?? false;
  const positions = resume ? new ResumeStore(node, persistentStore(RED.settings)) : undefined;
  const meter = new RateMeter();
  const nextMsgId = messageIdSequence();
  const arraySize = def.messages === "array" ? kit.numbers.integer("arraySize", 100) : 0;
  const arrays = arraySize > 0 ? new ItemArrays<SubscriptionItem>(arraySize, sendArray, (error) => kit.report(error)) : undefined;
  let pkg = kit.env(def.package).trim();
  const windowItems = kit.numbers.integer("window", 1000);
  const stallMs = seconds("stallTimeout", 60);
  const inFlight = itemWindowSender(RED, node, {
    maxItems: windowItems,
    stallMs,
    release: (items) => subscription?.release(items),
    onStall: (items) => node.warn(t("warnings.stalled", { items, seconds: stallMs / 1000 })),
  });
  const stacWarnings = new StacCheckWarnings((r) => node.warn(t("errors.invalidStac", { what: kit.redact(r.what).slice(0, 200), id: r.eventId, problems: kit.redact(r.problems), more: r.more })));
  /** With flow control, where a resume starts: the id of the last Item sent (later ones may still wait in the backlog). */
  let lastSentId = "";

  let subscription: Subscription | undefined;
  let subscribedPackage = "";
  let generation = 0;
  let closing = false;
  let loggedState = "";
  let loggedReason = "";
  const counts = { items: 0, invalid: 0 };

  const reasonText = (error: DatasphereError | undefined) => t(REASONS[error?.code ?? ""] ?? "reason.network", { status: error?.status });
  const positionOf = (current: Subscription | undefined) => (current ? { package: subscribedPackage, lastEventId: inFlight ? lastSentId : current.lastEventId } : undefined);

  /** `asState`: the connection just opened (shown at once); else a count/rate update (throttled). */
  function connectedStatus(rate: number, asState = false): void {
    const bad = (subscription?.stats.malformed ?? 0) + counts.invalid;
    const shown = { count: counts.items, rate: Math.round(rate), bad };
    const text = bad > 0 ? t("status.connectedWithProblems", shown) : t("status.connected", shown);
    const waiting = subscription?.waiting ?? 0;
    (asState ? status.set : status.progress).call(status, { fill: "green", shape: "dot", text: waiting > 0 ? t("status.waiting", { text, waiting }) : text });
  }

  function onState(change: SubscriptionStateChange): void {
    if (closing) return;
    meter.stop();
    switch (change.state) {
      case "connecting":
        if (loggedState !== "backing-off" && loggedState !== "failed") status.set({ fill: "yellow", shape: "ring", text: t("status.connecting") });
        return;
      case "connected":
        meter.start((rate) => connectedStatus(rate));
        connectedStatus(0, true);
        if (loggedState !== "connected") node.log(t("log.connected", { package: subscribedPackage }));
        loggedState = "connected";
        loggedReason = "";
        return;
      case "backing-off":
      case "failed": {
        const reason = reasonText(change.error);
        const seconds = Math.max(1, Math.round((change.retryInMs ?? 0) / 1000));
        if (change.state === "failed") status.set({ fill: "red", shape: "ring", text: t("status.failed", { reason, seconds }) });
        else status.set({ fill: "yellow", shape: "ring", text: t("status.retrying", { seconds, attempt: change.attempt ?? 1 }) });
        // Log state changes, not attempts: once per distinct reason until the next connection.
        if (reason !== loggedReason) {
          const detail = kit.redact(change.error?.message ?? "");
          if (change.state === "failed") node.warn(t("log.failed", { package: subscribedPackage, reason, detail }));
          else node.log(t("log.retrying", { package: subscribedPackage, reason, detail }));
          loggedReason = reason;
        }
        loggedState = change.state;
        return;
      }
      case "stopped":
        status.set({ fill: "red", shape: "ring", text: t("status.stopped") });
        node.warn(t("log.stopped", { package: subscribedPackage }));
        loggedState = change.state;
        return;
    }
  }

  function onItem(event: SubscriptionItem): void {
    if (stacCheck !== "off") {
      const problems = stacWarnings.problemsOf(event.item);
      if (problems.length > 0) {
        counts.invalid += 1;
        stacWarnings.report(event.item, problems, event.eventId);
        if (stacCheck === "drop") {
          if (inFlight) subscription?.release(1);
          return;
        }
      }
    }
    counts.items += 1;
    meter.add();
    if (arrays) arrays.add(event);
    else send(outputString ? event.data : event.item, event.eventId, 1);
  }

  function send(payload: unknown, eventId: string | undefined, items: number): void {
    const msg: NodeMessage & { _msgid: string } = { _msgid: nextMsgId(), payload, topic: subscribedPackage };
    if (eventId !== undefined) msg.eventId = lastSentId = eventId;
    if (inFlight) inFlight.send(msg, items);
    else node.send(msg);
    positions?.saveSoon(() => positionOf(subscription));
  }

  /** Arrays mode: msg.eventId is the last id among the array's Items (where a resume starts). */
  function sendArray(events: SubscriptionItem[]): void {
    let eventId: string | undefined;
    for (let i = events.length - 1; i >= 0 && eventId === undefined; i--) eventId = events[i].eventId;
    send(events.map((e): unknown => (outputString ? e.data : e.item)), eventId, events.length);
  }

  function onMalformed(event: MalformedEvent): void {
    const reason = event.reason === "not JSON" ? t("errors.notJson") : t("errors.notObject");
    node.error(t("errors.malformed", { id: event.eventId ?? "-", reason, preview: event.preview }), { topic: subscribedPackage, eventId: event.eventId, payload: event.preview });
    if (event.last) node.warn(t("errors.malformedMore"));
  }

  async function connect(): Promise<void> {
    if (subscription || closing) return;
    if (!pkg) {
      status.set({ fill: "red", shape: "ring", text: t("status.noPackage") });
      return;
    }
    const mine = ++generation;
    const forPackage = pkg;
    status.set({ fill: "yellow", shape: "ring", text: t("status.connecting") });
    const lastEventId = await positions?.load(forPackage);
    if (mine !== generation || closing || subscription) return;
    const url = config.endpoints.subscription(forPackage);
    subscribedPackage = forPackage;
    lastSentId = lastEventId ?? "";
    inFlight?.reset();
    loggedState = "";
    loggedReason = "";
    subscription = new Subscription({
      url,
      auth: config.auth,
      lastEventId,
      connectTimeoutMs,
      idleTimeoutMs,
      maxRetryMs: backoffCapMs,
      slowRetryMs: Math.max(30_000, Math.min(backoffCapMs, 300_000)),
      redact: kit.redact,
      what: `subscription "${forPackage}"`,
      maxUntaken: inFlight ? windowItems : undefined,
      onItem,
      onMalformed,
      onState,
      onNotice: (notice) => node.warn(kit.redact(notice.message)),
    });
    subscription.start();
  }

  /** Closes the subscription, then saves where it stopped. */
  async function disconnect(): Promise<void> {
    generation += 1;
    meter.stop();
    const current = subscription;
    if (!current) return;
    subscription = undefined;
    await current.close();
    arrays?.flush();
    await positions?.save(positionOf(current));
    loggedState = "";
  }

  if (autoConnect) void connect();
  else status.set({ fill: "grey", shape: "ring", text: t("status.disconnected") });

  return {
    serialActions: true,
    actions: {
      connect,
      disconnect: async () => {
        await disconnect();
        if (!closing) status.set({ fill: "grey", shape: "ring", text: t("status.disconnected") });
      },
      // The package comes from the message as it is: `${VAR}` in message content is not expanded.
      subscribe: async (msg: NodeMessage) => {
        const next = typeof msg.package === "string" ? msg.package.trim() : "";
        if (!next) throw new DatasphereError("BAD_REQUEST", t("errors.noPackageInMessage"));
        if (next === subscribedPackage && subscription) return;
        await disconnect();
        pkg = next;
        counts.items = counts.invalid = 0;
        await connect();
      },
    },
    close: async () => {
      closing = true;
      await disconnect();
      positions?.cancel();
      inFlight?.close();
    },
  };
}

export = function register(RED: NodeAPI): void {
  defineNode<SubscribeDef>(RED, TYPE, { hasActions: true, start });
};
