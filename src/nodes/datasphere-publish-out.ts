import { DatasphereError, isDatasphereError } from "../core/errors";
import { Publisher, PUBLISHER_DEFAULTS, preparePublishMessage, type OutboxLimits, type PreparedMessage, type PublisherStatus, type PublishFields } from "../core/publisher";
import type { Lease } from "../core/shared-resource";
import { createSchemaValidator, type SchemaCheckMode, type SchemaValidator } from "../core/stac-schema";
import { isUsableConfig, type DatasphereConfigNode } from "./shared/config-node";
import { resolveEnv } from "./shared/env";
import type { DoneFunction, Node, NodeAPI, NodeDef, NodeMessage, NodeStatus } from "./shared/node-red";
import { once } from "./shared/once";
import { ThrottledStatus } from "./shared/status";
import { booleanFrom, numberOr } from "./shared/settings";

const TYPE = "datasphere-publish-out";
const CLOSE_DEADLINE_MS = 10_000;

interface PublishDef extends NodeDef {
  server?: string;
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

export = function register(RED: NodeAPI): void {
  const key = (k: string, subs?: Record<string, unknown>) => RED._(`${TYPE}.${k}`, subs);

  /** The core's error, with a user-facing message from the catalog; the core text stays in details. */
  function userError(error: unknown): DatasphereError {
    const err = isDatasphereError(error) ? error : new DatasphereError("PROTOCOL", String((error as Error)?.message ?? error));
    const catalogKey: Record<string, string> = {
      INVALID_STAC: "errors.invalidStac",
      BAD_REQUEST: "errors.badRequest",
      OUTBOX_FULL: "errors.outboxFull",
      EXPIRED: "errors.expired",
      CLOSED: "errors.closed",
    };
    return new DatasphereError(err.code, key(catalogKey[err.code] ?? "errors.other", { detail: err.message }), { details: { ...err.details, detail: err.message } });
  }

  function PublishOut(this: Node, def: PublishDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const config = def.server ? (RED.nodes.getNode(def.server) as DatasphereConfigNode | null) : null;
    const status = new ThrottledStatus(node);
    const fields = {
      activeParent: resolveEnv(RED, node, def.activeParent).trim(),
      provider: resolveEnv(RED, node, def.provider).trim(),
      subscribable: booleanFrom(def.subscribable) ?? true,
    };
    const limits: OutboxLimits = {
      maxMessages: Math.floor(numberOr(def.outboxSize, 1000, 1)),
      maxAgeMs: numberOr(def.outboxAge, 60, 0) * 1000,
      overflow: def.overflow === "drop-oldest" ? "drop-oldest" : "reject-newest",
    };
    const schemaMode: SchemaCheckMode = def.schemaCheck === "warn" || def.schemaCheck === "reject" ? def.schemaCheck : "off";
    const schemaDir = resolveEnv(RED, node, def.schemaDir).trim();
    let validator: SchemaValidator | undefined;
    if (schemaMode !== "off") {
      if (schemaDir) validator = createSchemaValidator({ schemaDir });
      else node.warn(key("errors.noSchemaDir"));
    }

    if (!isUsableConfig(config)) {
      const reason = config?.configError ? key("status.invalidConfig") : key("status.noConfig");
      status.set({ fill: "red", shape: "ring", text: reason });
      node.on("input", (_msg: NodeMessage, _send: unknown, done: DoneFunction) => done(new DatasphereError("INVALID_CONFIG", reason)));
      return;
    }

    config.register(node);
    let publisher: Publisher | undefined;
    let lease: Lease<Publisher> | undefined;
    let closing = false;
    let sent = 0;
    let chain: Promise<void> = Promise.resolve();

    const reconnectMs = numberOr(RED.settings.datasphereReconnectMs, PUBLISHER_DEFAULTS.backoff.initialMs, 1);
    const reconnectMaxMs = numberOr(RED.settings.datasphereReconnectMaxMs, PUBLISHER_DEFAULTS.backoff.maxMs, 1);
    const authRetryMs = numberOr(RED.settings.datasphereAuthRetryMs, PUBLISHER_DEFAULTS.authBackoff.initialMs, 1);
    const leasePromise = config.acquireShared("publisher", node, () => new Publisher({
      url: config.endpoints.publishUrl,
      authMode: config.authMode,
      auth: config.auth,
      redact: config.redact,
      handshakeTimeoutMs: numberOr(RED.settings.datasphereHandshakeTimeoutMs, PUBLISHER_DEFAULTS.handshakeTimeoutMs, 1),
      heartbeatTimeoutMs: numberOr(def.heartbeatTimeout, PUBLISHER_DEFAULTS.heartbeatTimeoutMs / 1000, 0.05) * 1000,
      backoff: { ...PUBLISHER_DEFAULTS.backoff, initialMs: reconnectMs, maxMs: Math.max(reconnectMs, reconnectMaxMs) },
      authBackoff: { ...PUBLISHER_DEFAULTS.authBackoff, initialMs: authRetryMs, maxMs: Math.max(authRetryMs, PUBLISHER_DEFAULTS.authBackoff.maxMs) },
    }));

    let shownState = "";
    function showStatus(st: PublisherStatus = publisher ? publisher.status : { state: "connecting", outbox: 0 }): void {
      let next: NodeStatus;
      const retryIn = Math.max(0, Math.ceil(((st.retryAt ?? 0) - Date.now()) / 1000));
      switch (st.state) {
        case "connected":
          next = { fill: "green", shape: "dot", text: st.outbox > 0 ? key("status.connectedOutbox", { sent, n: st.outbox }) : key("status.connected", { sent }) };
          break;
        case "connecting":
          next = { fill: "yellow", shape: "ring", text: key("status.connecting", { n: st.outbox }) };
          break;
        case "backing-off":
          next = { fill: "yellow", shape: "ring", text: key("status.reconnecting", { s: retryIn, n: st.outbox }) };
          break;
        case "token-rejected":
          next = { fill: "red", shape: "ring", text: key("status.tokenRejected", { s: retryIn, n: st.outbox }) };
          break;
        case "idle":
          next = { fill: "grey", shape: "ring", text: key("status.disconnected", { n: st.outbox }) };
          break;
        default:
          return;
      }
      // A new state shows at once; the sent count and countdowns of the same state are throttled.
      if (st.state !== shownState) status.set(next);
      else status.progress(next);
      shownState = st.state;
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
      (error) => node.error(userError(error)),
    );

    function publishPrepared(prepared: PreparedMessage, done: DoneFunction): void {
      const go = (p: Publisher) =>
        p.publish(prepared.data, node, limits, (err) => {
          if (err) done(userError(err));
          else {
            sent++;
            done();
          }
        });
      if (publisher) go(publisher);
      else void leasePromise.then((l) => (closing ? done(userError(new DatasphereError("CLOSED", "the node was closed"))) : go(l.resource)), (e) => done(userError(e)));
    }

    function fieldsOf(msg: NodeMessage): PublishFields {
      const activeParent = msg.activeParent !== undefined ? msg.activeParent : fields.activeParent;
      const provider = msg.provider !== undefined ? msg.provider : fields.provider;
      let subscribable = fields.subscribable;
      if (msg.subscribable !== undefined) {
        const b = booleanFrom(msg.subscribable);
        if (b === undefined) throw new DatasphereError("BAD_REQUEST", `msg.subscribable must be true or false (got ${JSON.stringify(msg.subscribable)})`);
        subscribable = b;
      }
      if (typeof activeParent !== "string") throw new DatasphereError("BAD_REQUEST", "msg.activeParent must be a string");
      if (typeof provider !== "string") throw new DatasphereError("BAD_REQUEST", "msg.provider must be a string");
      return { activeParent, provider: provider || undefined, subscribable };
    }

    /** Throws INVALID_STAC (reject mode, core schema); logs warnings otherwise. */
    async function checkSchema(prepared: PreparedMessage): Promise<void> {
      if (!validator) return;
      const result = await validator.validate(prepared.doc);
      if (result.coreErrors.length > 0) {
        const detail = `${prepared.label}: ${result.coreErrors.join("; ")}`;
        if (schemaMode === "reject") throw new DatasphereError("INVALID_STAC", `not published: ${detail}`, { details: { schema: result } });
        node.warn(key("errors.schemaWarning", { detail }));
      }
      if (result.extensionErrors.length > 0) {
        const detail = `${prepared.label}: ${result.extensionErrors.join("; ")}`;
        node.warn(key("errors.extensionWarning", { detail }));
      }
    }

    node.on("input", (msg: NodeMessage, _send: unknown, done: DoneFunction) => {
      if (msg.action !== undefined) {
        handleAction(msg.action, done);
        return;
      }
      let prepared: PreparedMessage;
      try {
        prepared = preparePublishMessage(msg.payload, fieldsOf(msg));
      } catch (error) {
        done(userError(error));
        return;
      }
      if (!validator) {
        publishPrepared(prepared, done);
        return;
      }
      // Schema checks may load schema files: keep the input order through one chain.
      chain = chain.then(() =>
        checkSchema(prepared).then(
          () => publishPrepared(prepared, done),
          (error) => done(userError(error)),
        ),
      );
    });

    function handleAction(action: unknown, done: DoneFunction): void {
      void leasePromise.then(async (l) => {
        if (action === "connect") {
          l.resource.connect();
          done();
        } else if (action === "disconnect") {
          await l.resource.disconnect();
          done();
        } else {
          done(new DatasphereError("BAD_REQUEST", key("errors.unknownAction", { action: String(action) })));
        }
      }, (e) => done(userError(e)));
    }

    node.on("close", (_removed: boolean, done: () => void) => {
      closing = true;
      clearInterval(statusTimer);
      status.stop();
      config.deregister(node);
      if (publisher) {
        publisher.off("state", onState);
        publisher.dropOwner(node);
      }
      const finish = once(done);
      const deadline = setTimeout(finish, CLOSE_DEADLINE_MS);
      void leasePromise
        .then((l) => (lease ?? l).release())
        .catch(() => undefined)
        .then(() => {
          clearTimeout(deadline);
          finish();
        });
    });
  }

  RED.nodes.registerType(TYPE, PublishOut);
};
