import { DatasphereError, isDatasphereError } from "../core/errors";
import { preparePublishMessage, type Publisher, type OutboxLimits, type PreparedMessage, type PublisherStatus, type PublishFields } from "../core/publisher";
import type { Lease } from "../core/shared-resource";
import { createSchemaValidator, type SchemaCheckMode, type SchemaValidator } from "../core/stac-schema";
import { defineNode, type ConfiguredKit, type NodeDefWithServer, type NodeKit } from "./shared/define-node";
import type { NodeAPI, NodeMessage, NodeStatus } from "./shared/node-red";
import { booleanFrom, numberOr } from "./shared/settings";

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
  overflow?: string;
  heartbeatTimeout?: number | string;
}

/** The core's error, with a user-facing message from the catalog; the core text stays in details. */
function userError(kit: NodeKit, error: unknown): DatasphereError {
  const err = isDatasphereError(error) ? error : new DatasphereError("PROTOCOL", String((error as Error)?.message ?? error));
  return new DatasphereError(err.code, kit.t(CATALOG_KEYS[err.code] ?? "errors.other", { detail: err.message }), { details: { ...err.details, detail: err.message } });
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
  const { node, def, config, status, t } = kit;
  const fields: PublishFields = {
    activeParent: kit.env(def.activeParent).trim(),
    provider: kit.env(def.provider).trim(),
    subscribable: booleanFrom(def.subscribable) ?? true,
  };
  const limits: OutboxLimits = {
    maxMessages: Math.floor(numberOr(def.outboxSize, 1000, 1)),
    maxAgeMs: numberOr(def.outboxAge, 60, 0) * 1000,
    overflow: def.overflow === "drop-oldest" ? "drop-oldest" : "reject-newest",
  };
  const schemaMode: SchemaCheckMode = def.schemaCheck === "warn" || def.schemaCheck === "reject" ? def.schemaCheck : "off";
  const schemaDir = kit.env(def.schemaDir).trim();
  let validator: SchemaValidator | undefined;
  if (schemaMode !== "off") {
    if (schemaDir) validator = createSchemaValidator({ schemaDir });
    else node.warn(t("errors.noSchemaDir"));
  }

  let publisher: Publisher | undefined;
  let lease: Lease<Publisher> | undefined;
  let closing = false;
  let sent = 0;
  let chain: Promise<void> = Promise.resolve();

  // The socket and its settings belong to the config node; this node's heartbeatTimeout only counts
  // for flows saved before the config node had one.
  const leasePromise = config.publisher(node, def.heartbeatTimeout);

  function showStatus(st: PublisherStatus = publisher ? publisher.status : { state: "connecting", outbox: 0 }): void {
    let next: NodeStatus;
    const s = Math.max(0, Math.ceil(((st.retryAt ?? 0) - Date.now()) / 1000));
    const n = st.outbox;
    switch (st.state) {
      case "connected":
        next = { fill: "green", shape: "dot", text: n > 0 ? t("status.connectedOutbox", { sent, n }) : t("status.connected", { sent }) };
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
    status.set(next);
  }
  const onState = (st: PublisherStatus) => showStatus(st);
  // Read-only view of the shared publisher, for diagnostics and tests.
  Object.defineProperty(node, "publisher", { get: () => publisher, enumerable: false });
  const statusTimer = setInterval(() => showStatus(), 1000);
  showStatus();

  void leasePromise.then(
    (l) => {
      lease = l;
      if (closing) return;
      publisher = l.resource;
      publisher.on("state", onState);
      publisher.start();
      showStatus();
    },
    (error) => kit.report(userError(kit, error)),
  );

  /** Hands the message to the publisher at once when it is there; resolves on the service's ack. */
  function publish(prepared: PreparedMessage): Promise<void> {
    const go = (p: Publisher) => new Promise<void>((resolve, reject) => p.publish(prepared.data, node, limits, (err) => (err ? reject(err) : resolve())));
    if (publisher) return go(publisher);
    return leasePromise.then((l) => (closing ? Promise.reject(new DatasphereError("CLOSED", "the node was closed")) : go(l.resource)));
  }

  /** Throws INVALID_STAC (reject mode, core schema); logs warnings otherwise. */
  async function checkSchema(prepared: PreparedMessage): Promise<void> {
    if (!validator) return;
    const result = await validator.validate(prepared.doc);
    if (result.coreErrors.length > 0) {
      const detail = `${prepared.label}: ${result.coreErrors.join("; ")}`;
      if (schemaMode === "reject") throw new DatasphereError("INVALID_STAC", `not published: ${detail}`, { details: { schema: result } });
      node.warn(t("errors.schemaWarning", { detail }));
    }
    if (result.extensionErrors.length > 0) node.warn(t("errors.extensionWarning", { detail: `${prepared.label}: ${result.extensionErrors.join("; ")}` }));
  }

  async function input(msg: NodeMessage): Promise<void> {
    try {
      const prepared = preparePublishMessage(msg.payload, fieldsOf(msg, fields));
      if (!validator) return await publish(prepared).then(() => void sent++);
      // Schema checks may load schema files: keep the input order through one chain.
      const handed = chain.then(() => checkSchema(prepared)).then(() => ({ acked: publish(prepared) }));
      chain = handed.then(() => undefined, () => undefined);
      await (await handed).acked;
      sent++;
    } catch (error) {
      throw userError(kit, error);
    }
  }

  return {
    input,
    actions: {
      connect: async () => (await leasePromise).resource.connect(),
      disconnect: async () => (await leasePromise).resource.disconnect(),
    },
    close: async () => {
      closing = true;
      clearInterval(statusTimer);
      if (publisher) {
        publisher.off("state", onState);
        publisher.dropOwner(node);
      }
      await (lease ?? (await leasePromise)).release();
    },
  };
}

export = function register(RED: NodeAPI): void {
  defineNode<PublishDef>(RED, TYPE, { hasActions: true, start });
};
