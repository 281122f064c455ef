import { Auth } from "../core/auth";
import { DEFAULT_API_URL, DEFAULT_PUBLISH_URL, Endpoints, validateEndpointSettings, type AuthMode } from "../core/endpoints";
import { redact } from "../core/redact";
import type { Publisher } from "../core/publisher";
import { SharedResource, type Closable, type Lease } from "../core/shared-resource";
import type { DatasphereConfigNode } from "./shared/config-node";
import { resolveEnv } from "./shared/env";
import type { Node, NodeAPI, NodeDef } from "./shared/node-red";
import { createPublisher, heartbeatTimeoutMs } from "./shared/publisher-connection";
import { registerTestConnectionRoute } from "./shared/test-connection";

interface ConfigDef extends NodeDef {
  apiUrl?: string;
  publishUrl?: string;
  authMode?: string;
  /** Seconds without a heartbeat before the publish socket is replaced; empty: the legacy per-node value. */
  heartbeatTimeout?: string | number;
}

export = function register(RED: NodeAPI): void {
  function DatasphereConfig(this: Node<{ token: unknown }>, def: ConfigDef): void {
    RED.nodes.createNode(this, def);
    const node = this as DatasphereConfigNode & Record<string, unknown>;
    const apiUrl = resolveEnv(RED, node, def.apiUrl) || DEFAULT_API_URL;
    const publishUrl = resolveEnv(RED, node, def.publishUrl) || DEFAULT_PUBLISH_URL;
    const token = resolveEnv(RED, node, node.credentials?.token);
    const authMode: AuthMode = def.authMode === "message" ? "message" : "header";
    const problems = validateEndpointSettings({ apiUrl, publishUrl });
    const shared = new Map<string, SharedResource<Closable>>();
    const users = new Set<Node>();

    let endpoints: Endpoints | undefined;
    let auth: Auth | undefined;
    if (problems.length === 0) {
      endpoints = new Endpoints({ apiUrl, publishUrl });
      auth = new Auth(endpoints, token);
    } else {
      node.error(RED._("datasphere-config.errors.invalid", { problems: problems.join("; ") }));
    }

    Object.defineProperties(node, {
      // Same object Node-RED keeps, hidden from JSON.stringify(node) and the like.
      credentials: { value: node.credentials, enumerable: false, writable: true },
      endpoints: { value: endpoints, enumerable: false },
      auth: { value: auth, enumerable: false },
      authMode: { value: authMode, enumerable: true },
      configError: { value: problems.length ? problems.join("; ") : undefined, enumerable: true },
      users: { value: users, enumerable: false },
    });

    node.register = (user: Node) => {
      users.add(user);
    };
    node.deregister = (user: Node) => {
      users.delete(user);
    };
    node.acquireShared = <T extends Closable>(key: string, user: object, create: () => T): Promise<Lease<T>> => {
      let resource = shared.get(key) as SharedResource<T> | undefined;
      if (!resource) {
        resource = new SharedResource<T>(create);
        shared.set(key, resource as unknown as SharedResource<Closable>);
      }
      return resource.acquire(user);
    };
    node.publisher = (user: object, legacyHeartbeatTimeout?: unknown): Promise<Lease<Publisher>> =>
      node.acquireShared("publisher", user, () =>
        createPublisher(RED, { endpoints: endpoints!, auth: auth!, authMode, redact: node.redact }, heartbeatTimeoutMs(resolveEnv(RED, node, String(def.heartbeatTimeout ?? "")), legacyHeartbeatTimeout)),
      );
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
