import { DatasphereError, toDatasphereError } from "../../core/errors";
import { preview } from "../../core/redact";
import { isUsableConfig, type ConnectionListener, type DatasphereConfigNode, type UsableConfig } from "./config-node";
import { resolveEnv } from "./env";
import type { Node, NodeAPI, NodeDef, NodeMessage, SendFunction } from "./node-red";
import { once } from "./once";
import { NumericSettings } from "./settings";
import { ThrottledStatus } from "./status";

/** How long a node may take to close before Node-RED is told it is done anyway. */
export const CLOSE_DEADLINE_MS = 10_000;

export interface NodeDefWithServer extends NodeDef {
  server?: string;
}

/** What the skeleton hands a node declaration: everything a node needs from Node-RED, in one place. */
export interface NodeKit<Def extends NodeDef = NodeDef> {
  readonly RED: NodeAPI;
  readonly node: Node & { wires?: string[][] };
  readonly def: Def;
  readonly type: string;
  /** The node's own catalog: `t("status.idle")` is `<type>.status.idle`. */
  t(key: string, substitutions?: Record<string, unknown>): string;
  /** `${VAR}` expansion, for configured properties only (never for message content). */
  env(value: string | undefined): string;
  /** Numeric properties; a value that cannot be used is replaced by the default, with a warning naming the field. */
  readonly numbers: NumericSettings;
  /** A configured typed property (`str`/`datetime` with `${VAR}`, others through Node-RED). */
  evaluate(value: string | undefined, type: string | undefined, msg: NodeMessage): Promise<unknown>;
  readonly status: ThrottledStatus;
  /** Removes the token from a text built from outside data. */
  redact(text: string): string;
  /** The one failure shape: a typed DatasphereError with its code and a redacted message. */
  failure(error: unknown, what?: string): DatasphereError;
  /** Reports a failure that belongs to no input message (Catch gets the typed error). */
  report(error: unknown, what?: string): void;
}

export interface ConfiguredKit<Def extends NodeDef = NodeDef, Config = UsableConfig> extends NodeKit<Def> {
  readonly config: Config;
}

/** What the skeleton needs of any config node (datasphere-config, datasphere-stac-api). */
export interface ConfigNodeLike {
  readonly configError?: string;
  /** The skeleton registers each node once it has started, with its `connectionStatus` (if any). */
  register(user: Node, listener?: ConnectionListener): void;
  deregister(user: Node): void;
  redact(text: string): string;
}

/** What a running node answers: its input, its `msg.action`s and its teardown. */
export interface NodeBehaviour {
  /** Resolves when the message is handled (done()); throws to fail it (done(err)). */
  input?(msg: NodeMessage, send: SendFunction): Promise<void> | void;
  /** The `msg.action` table; any other action is a BAD_REQUEST error. */
  actions?: Record<string, (msg: NodeMessage, send: SendFunction) => Promise<void> | void>;
  /** Actions run one after another (each waits for the previous one to finish). */
  serialActions?: boolean;
  /**
   * The state of the config node's connection, pushed by the config node on every change and once at
   * registration when the connection is already open; the node maps it to its own status.
   */
  connectionStatus?: ConnectionListener;
  close?(removed: boolean): Promise<void> | void;
}

export interface NodeDeclaration<Def extends NodeDefWithServer, Config extends ConfigNodeLike = UsableConfig> {
  /** Without a usable config node the node shows it in red and fails every message (default true). */
  needsConfig?: boolean;
  /** Whether msg.action is read at all (nodes without actions take every message as input). */
  hasActions?: boolean;
  /** Which config nodes are usable (default: a valid datasphere-config). */
  isUsable?(config: ConfigNodeLike | null): config is Config;
  start(kit: ConfiguredKit<Def, Config>): NodeBehaviour;
}

/** Registers a node type whose runtime behaviour is a declaration on the shared skeleton. */
export function defineNode<Def extends NodeDefWithServer, Config extends ConfigNodeLike = UsableConfig>(RED: NodeAPI, type: string, declaration: NodeDeclaration<Def, Config>): void {
  const isUsable = declaration.isUsable ?? ((c: ConfigNodeLike | null): c is Config => isUsableConfig(c as DatasphereConfigNode | null));
  function DatasphereNode(this: Node, def: Def): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const config = def.server ? (RED.nodes.getNode(def.server) as unknown as ConfigNodeLike | null) : null;
    const kit = makeKit(RED, type, node, def, config);
    const usable = isUsable(config);
    let behaviour: NodeBehaviour;
    if (usable) {
      behaviour = declaration.start({ ...kit, config });
      config.register(node, behaviour.connectionStatus);
    } else {
      const reason = kit.t(config?.configError ? "status.invalidConfig" : "status.noConfig");
      kit.status.set({ fill: "red", shape: "ring", text: reason });
      behaviour = { input: () => Promise.reject(new DatasphereError("INVALID_CONFIG", kit.t("errors.noConfig"))) };
    }
    const actions = declaration.hasActions ? new ActionTable(kit, behaviour) : undefined;

    node.on("input", (received, send, done) => {
      const msg = received as NodeMessage;
      const finish = once(done);
      const fail = (error: unknown) => finish(kit.failure(error));
      if (!usable) return void Promise.resolve(behaviour.input!(msg, send)).catch(fail);
      let work: Promise<void>;
      try {
        if (actions && hasAction(msg)) work = actions.run(msg, send);
        else if (behaviour.input) work = Promise.resolve(behaviour.input(msg, send));
        else work = Promise.reject(unknownAction(kit, msg.action));
      } catch (error) {
        work = Promise.reject(error);
      }
      work.then(() => finish(), fail);
    });

    node.on("close", (removed: boolean, done: () => void) => {
      // A closing node takes no more status from its config node.
      if (usable) config.deregister(node);
      const finish = once(() => {
        kit.status.stop();
        done();
      });
      const deadline = setTimeout(finish, CLOSE_DEADLINE_MS);
      deadline.unref?.();
      let closing: Promise<void>;
      try {
        closing = Promise.resolve(behaviour.close?.(removed));
      } catch (error) {
        closing = Promise.reject(error);
      }
      void closing
        .catch((error) => kit.report(error, "close"))
        .then(() => {
          clearTimeout(deadline);
          finish();
        });
    });
  }

  RED.nodes.registerType(type, DatasphereNode);
}

function makeKit<Def extends NodeDef>(RED: NodeAPI, type: string, node: Node, def: Def, config: ConfigNodeLike | null): NodeKit<Def> {
  const redact = (text: string) => (config ? config.redact(text) : text);
  const env = (value: string | undefined) => resolveEnv(RED, node, value);
  const failure = (error: unknown, what: string = type): DatasphereError => {
    const typed = toDatasphereError(error, what);
    const message = redact(typed.message);
    if (message === typed.message) return typed;
    return new DatasphereError(typed.code, message, { status: typed.status, retryAfterMs: typed.retryAfterMs, details: typed.details, cause: typed });
  };
  const t = (key: string, substitutions?: Record<string, unknown>) => RED._(`${type}.${key}`, substitutions as Record<string, string | number> | undefined);
  const numbers = new NumericSettings(def, env, (property, value, expected, fallback) =>
    node.warn(t("warnings.setting", { label: t(`label.${property}`), value, expected, fallback })),
  );
  return {
    RED,
    node,
    def,
    type,
    t,
    env,
    numbers,
    evaluate: (value, valueType, msg) => {
      if (value === undefined || value === "") return Promise.resolve(undefined);
      if (!valueType || valueType === "str" || valueType === "datetime") return Promise.resolve(env(value));
      return new Promise((resolve, reject) => {
        RED.util.evaluateNodeProperty(value, valueType, node, msg, (err, result) => (err ? reject(err) : resolve(result)));
      });
    },
    status: new ThrottledStatus(node),
    redact,
    failure,
    report: (error, what) => node.error(failure(error, what)),
  };
}

function hasAction(msg: NodeMessage): boolean {
  return msg.action !== undefined && msg.action !== null && msg.action !== "";
}

function unknownAction(kit: NodeKit, action: unknown): DatasphereError {
  const shown = typeof action === "string" ? preview(action, 40) : typeof action;
  return new DatasphereError("BAD_REQUEST", kit.t("errors.unknownAction", { action: shown }));
}

/** One `msg.action` dispatcher: a table lookup, optionally one action at a time. */
class ActionTable {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly kit: NodeKit, private readonly behaviour: NodeBehaviour) {}

  run(msg: NodeMessage, send: SendFunction): Promise<void> {
    const action = msg.action;
    const handler = typeof action === "string" && Object.hasOwn(this.behaviour.actions ?? {}, action) ? this.behaviour.actions![action] : undefined;
    if (!handler) return Promise.reject(unknownAction(this.kit, action));
    if (!this.behaviour.serialActions) return Promise.resolve(handler(msg, send));
    const run = this.queue.then(() => handler(msg, send));
    this.queue = run.catch(() => undefined);
    return run;
  }
}
