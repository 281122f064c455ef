import { Auth } from "../core/auth";
import { DEFAULT_API_URL, DEFAULT_PUBLISH_URL, Endpoints, validateEndpointSettings, type AuthMode } from "../core/endpoints";
import { redact } from "../core/redact";
import type { PublisherStatus } from "../core/publisher";
import type { ConnectionListener, DatasphereConfigNode } from "./shared/config-node";
import { resolveEnv } from "./shared/env";
import type { Node, NodeAPI, NodeDef } from "./shared/node-red";
import { createPublisher, PublishConnection, publishSocketSettings } from "./shared/publisher-connection";
import { registerTestConnectionRoute } from "./shared/test-connection";
import { resolveToken } from "./shared/token-source";

interface ConfigDef extends NodeDef {
  apiUrl?: string;
  publishUrl?: string;
  authMode?: string;
  tokenSource?: string;
  tokenEnv?: string;
  /** Publish "dead after": seconds without a frame before the socket is replaced; empty: the legacy per-node value, else 60. */
  heartbeatTimeout?: string | number;
  /** Publish heartbeat: a ping after this many seconds without a frame from the server; 0: none; empty: 25. */
  heartbeatInterval?: string | number;
}

export = function register(RED: NodeAPI): void {
  function DatasphereConfig(this: Node<{ token: unknown }>, def: ConfigDef): void {
    RED.nodes.createNode(this, def);
    const node = this as DatasphereConfigNode & Record<string, unknown>;
    const apiUrl = resolveEnv(RED, node, def.apiUrl) || DEFAULT_API_URL;
    const publishUrl = resolveEnv(RED, node, def.publishUrl) || DEFAULT_PUBLISH_URL;
    const resolved = resolveToken(RED, node, { tokenSource: def.tokenSource, tokenEnv: def.tokenEnv, credential: node.credentials?.token });
    const token = resolved.token;
    if (resolved.source === "env" && resolved.problem) node.warn(RED._("datasphere-config.errors.tokenEnv", { problem: resolved.problem }));
    const authMode: AuthMode = def.authMode === "message" ? "message" : "header";
    const problems = validateEndpointSettings({ apiUrl, publishUrl });
    const users = new Map<Node, ConnectionListener | undefined>();
    const setting = (value: string | number | undefined) => resolveEnv(RED, node, value === undefined ? "" : String(value));
    const socket = publishSocketSettings(setting(def.heartbeatInterval), setting(def.heartbeatTimeout));
    if (socket.problems.length > 0) node.warn(RED._("datasphere-config.errors.socketSettings", { problems: socket.problems.join("; ") }));
    // Every state change of the publish socket goes to each user that listens, as the user maps it.
    const fanOut = (status: PublisherStatus) => {
      for (const listener of users.values()) {
        try {
          listener?.(status);
        } catch (error) {
          node.error(node.redact(`status of a publish node: ${(error as Error)?.message ?? error}`));
        }
      }
    };

    let endpoints: Endpoints | undefined;
    let auth: Auth | undefined;
    let publishConnection: PublishConnection | undefined;
    if (problems.length === 0) {
      endpoints = new Endpoints({ apiUrl, publishUrl });
      auth = new Auth(endpoints, token);
      const options = { url: endpoints.publishUrl, auth, authMode, redact: (text: string) => node.redact(text), socket };
      publishConnection = new PublishConnection((legacyDeadAfter) => createPublisher(RED, options, legacyDeadAfter), fanOut);
    } else {
      node.error(RED._("datasphere-config.errors.invalid", { problems: problems.join("; ") }));
    }

    Object.defineProperties(node, {
      // Same object Node-RED keeps, hidden from JSON.stringify(node) and the like.
      credentials: { value: node.credentials, enumerable: false, writable: true },
      endpoints: { value: endpoints, enumerable: false },
      auth: { value: auth, enumerable: false },
      authMode: { value: authMode, enumerable: true },
      tokenSource: { value: resolved.source, enumerable: true },
      tokenEnv: { value: resolved.envName, enumerable: true },
      configError: { value: problems.length ? problems.join("; ") : undefined, enumerable: true },
      users: { value: users, enumerable: false },
      publishConnection: { value: publishConnection, enumerable: false },
    });

    node.register = (user: Node, listener?: ConnectionListener) => {
      users.set(user, listener);
      const open = publishConnection?.publisher;
      if (listener && open) listener(open.status);
    };
    node.deregister = (user: Node) => {
      users.delete(user);
    };
    node.redact = (text: string) => redact(text, auth ? auth.secrets() : token ? [token] : []);

    node.on("close", (_removed: boolean, done: () => void) => {
      users.clear();
      done();
    });
  }

  RED.nodes.registerType("datasphere-config", DatasphereConfig, {
    credentials: { token: { type: "password" } },
  });
  registerTestConnectionRoute(RED);
};
