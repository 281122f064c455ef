import { DatasphereError, isDatasphereError } from "../core/errors";
import { preparePublishMessage, type Publisher, type OutboxLimits, type PreparedMessage, type PublisherStatus, type PublishFields, type SettleInfo } from "../core/publisher";
import { publishRecorded, replayRecorded } from "../core/publisher/durable-publish";
import { DEFAULT_FILE_MB, deliveryOf, openNodeOutbox } from "./publish-delivery";
import type { Lease } from "../core/shared-resource";
import { createSchemaValidator, schemaVerdict, type SchemaCheckMode, type SchemaValidator } from "../core/stac-schema";
import { defineNode, type ConfiguredKit, type NodeDefWithServer, type NodeKit } from "./shared/define-node";
import type { NodeAPI, NodeMessage, NodeStatus } from "./shared/node-red";
import { booleanFrom } from "./shared/settings";

const TYPE = "datasphere-publish-out";
const CATALOG_KEYS: Record<string, string> = {
  INVALID_STAC: "errors.invalidStac",
  BAD_REQUEST: "errors.badRequest",
  OUTBOX_FULL: "errors.outboxFull",
  EXPIRED: "errors.expired",
  CLOSED: "errors.closed",
};

interface PublishDef extends NodeDefWithServer {
  activeParent?: string;
  provider?: string;
  subscribable?: boolean | string;
  schemaCheck?: string;
  schemaDir?: string;
  outboxSize?: number | string;
  outboxAge?: number | string;
  outboxFileMb?: number | string;
  overflow?: string;
  heartbeatTimeout?: number | string;
  delivery?: string;
  durable?: boolean | string;
  fsync?: string;
}

/** The core's error, with a user-facing message from the catalog; the core text stays in details. */
function userError(kit: NodeKit, error: unknown): DatasphereError {
  const err = isDatasphereError(error) ? error : new DatasphereError("PROTOCOL", String((error as Error)?.message ?? error));
  // The catalog text already says "Not published:": a core message that says it too is not repeated.
  const detail = err.message.replace(/^not published:\s*/i, "");
  return new DatasphereError(err.code, kit.t(CATALOG_KEYS[err.code] ?? "errors.other", { detail }), { details: { ...err.details, detail } });
}

function fieldsOf(msg: NodeMessage, configured: PublishFields): PublishFields {
  const activeParent = msg.activeParent !== undefined ? msg.activeParent : configured.activeParent;
  const provider = msg.provider !== undefined ? msg.provider : configured.provider;
  let subscribable = configured.subscribable;
  if (msg.subscribable !== undefined) {
    const b = booleanFrom(msg.subscribable);
    if (b === undefined) throw new DatasphereError("BAD_REQUEST", `msg.subscribable must be true or false (got ${JSON.stringify(msg.subscribable)})`);
    subscribable = b;
  }
  if (typeof activeParent !== "string") throw new DatasphereError("BAD_REQUEST", "msg.activeParent must be a string");
  if (typeof provider !== "string") throw new DatasphereError("BAD_REQUEST", "msg.provider must be a string");
  return { activeParent, provider: provider || undefined, subscribable };
}

function start(kit: ConfiguredKit<PublishDef>) {
  const { RED, node, def, config, status, t } = kit;
  const fields: PublishFields = {
    activeParent: kit.env(def.activeParent).trim(),
    provider: kit.env(def.provider).trim(),
    subscribable: booleanFrom(def.subscribable) ?? true,
  };
  const limits: OutboxLimits = {
    maxMessages: kit.numbers.integer("outboxSize", 1000),
    maxAgeMs: kit.numbers.number("outboxAge", 60, 0) * 1000,
    overflow: def.overflow === "drop-oldest" ? "drop-oldest" : "reject-newest",
  };
  const schemaMode: SchemaCheckMode = def.schemaCheck === "warn" || def.schemaCheck === "reject" ? def.schemaCheck : "off";
  const schemaDir = kit.env(def.schemaDir).trim();
  let validator: SchemaValidator | undefined;
  if (schemaMode !== "off") {
    if (schemaDir) validator = createSchemaValidator({ schemaDir });
    else node.warn(t("errors.noSchemaDir"));
  }

  const delivery = deliveryOf(def.delivery);
  const durable = openNodeOutbox(RED, node, def, kit.numbers.number("outboxFileMb", DEFAULT_FILE_MB, 0.001), (text) => node.error(text));
  let publisher: Publisher | undefined;
  let lease: Lease<Publisher> | undefined;
  let closing = false;
  let sent = 0;
  let chain: Promise<void> = Promise.resolve();

  // The socket and its settings belong to the config node; this node's heartbeatTimeout only counts
  // for flows saved before the config node had one.
  const leasePromise = config.publishConnection.acquire(node, def.heartbeatTimeout);

  // The socket's state as the config node last pushed it; the counters are this node's own.
  let connection: PublisherStatus = { state: "connecting", outbox: 0 };
  let shownState = "";
  function showStatus(): void {
    const st = connection;
    let next: NodeStatus;
    const s = Math.max(0, Math.ceil(((st.retryAt ?? 0) - Date.now()) / 1000));
    const n = publisher ? publisher.outboxSize : st.outbox;
    switch (st.state) {
      case "connected":
        next = { fill: "green", shape: "dot", text: n > 0 ? t("status.connectedOutbox", { sent, n }) : t("status.connected", { sent }) };
        if (publisher && publisher.stats.resent > 0) next.text += t("status.resent", { n: publisher.stats.resent });
        if (publisher && publisher.stats.possiblyLost > 0) next.text += t("status.possiblyLost", { n: publisher.stats.possiblyLost });
        break;
      case "connecting":
        next = { fill: "yellow", shape: "ring", text: t("status.connecting", { n }) };
        break;
      case "backing-off":
        next = { fill: "yellow", shape: "ring", text: t("status.reconnecting", { s, n }) };
        break;
      case "token-rejected":
        next = { fill: "red", shape: "ring", text: t("status.tokenRejected", { s, n }) };
        break;
      case "idle":
        next = { fill: "grey", shape: "ring", text: t("status.disconnected", { n }) };
        break;
      default:
        return;
    }
    // A new state shows at once; the sent count and countdowns of the same state are throttled.
    if (st.state !== shownState) status.set(next);
    else status.progress(next);
    shownState = st.state;
  }
  const statusTimer = setInterval(() => showStatus(), 1000);
  showStatus();

  void leasePromise.then(
    (l) => {
      lease = l;
      if (closing) return;
      publisher = l.resource;
      publisher.start();
      if (durable && durable.size > 0) {
        const { replayed, expired } = replayRecorded(durable, publisher, node, limits, delivery, Date.now(), (err) => (err ? node.warn(userError(kit, err).message) : sent++));
        node.log(t("log.replayed", { replayed, expired }));
      }
    },
    (error) => kit.report(userError(kit, error)),
  );

  /**
   * Hands the message to the publisher at once when it is there (recorded in the durable outbox
   * first, when on); resolves when it is delivered as the delivery mode means it.
   */
  function publish(prepared: PreparedMessage, msg: NodeMessage): Promise<void> {
    const recorded = durable?.add(prepared.data);
    const go = (p: Publisher) =>
      new Promise<void>((resolve, reject) => {
        const settle = (err?: DatasphereError, info?: SettleInfo) => {
          if (err) return reject(err);
          if (info?.possibleDuplicate) (msg as NodeMessage & { possibleDuplicate?: boolean }).possibleDuplicate = true;
          resolve();
        };
        if (durable && recorded !== undefined) publishRecorded(durable, recorded, p, prepared.data, node, limits, delivery, settle);
        else p.publish(prepared.data, node, limits, settle, delivery);
      });
    if (publisher) return go(publisher);
    return leasePromise.then((l) => (closing ? Promise.reject(new DatasphereError("CLOSED", "the node was closed")) : go(l.resource)));
  }

  /** Throws INVALID_STAC (reject mode: core schema fails, or no schema can check it); logs warnings otherwise. */
  async function checkSchema(prepared: PreparedMessage): Promise<void> {
    if (!validator) return;
    const result = await validator.validate(prepared.doc);
    const verdict = schemaVerdict(result, schemaMode, prepared.label);
    if (verdict.reject) throw new DatasphereError("INVALID_STAC", verdict.reject, { details: { schema: result } });
    for (const detail of verdict.warnings) node.warn(t("errors.schemaWarning", { detail }));
    for (const detail of verdict.extensionWarnings) node.warn(t("errors.extensionWarning", { detail }));
    if (verdict.note) node.log(verdict.note);
  }

  async function input(msg: NodeMessage): Promise<void> {
    try {
      const prepared = preparePublishMessage(msg.payload, fieldsOf(msg, fields));
      if (!validator) return await publish(prepared, msg).then(() => void sent++);
      // Schema checks may load schema files: keep the input order through one chain.
      const handed = chain.then(() => checkSchema(prepared)).then(() => ({ acked: publish(prepared, msg) }));
      chain = handed.then(() => undefined, () => undefined);
      await (await handed).acked;
      sent++;
    } catch (error) {
      throw userError(kit, error);
    }
  }

  return {
    input,
    connectionStatus: (st: PublisherStatus) => {
      connection = st;
      showStatus();
    },
    actions: {
      connect: async () => (await leasePromise).resource.connect(),
      disconnect: async () => (await leasePromise).resource.disconnect(),
    },
    close: async (removed: boolean) => {
      closing = true;
      clearInterval(statusTimer);
      publisher?.dropOwner(node);
      try {
        await (lease ?? (await leasePromise)).release();
      } finally {
        if (removed) durable?.destroy();
        else durable?.close();
      }
    },
  };
}

export = function register(RED: NodeAPI): void {
  defineNode<PublishDef>(RED, TYPE, { hasActions: true, start });
};
