import { DatasphereError } from "../core/errors";
import { redact } from "../core/redact";
import { ApiAuth, StacApiClient, type ApiAuthMode } from "../core/stac-search";
import { resolveEnv } from "./shared/env";
import type { Node, NodeAPI, NodeDef } from "./shared/node-red";
import { resolveToken } from "./shared/token-source";
import type { StacApiConfigNode } from "./shared/stac-api-config";

interface StacApiDef extends NodeDef {
  url?: string;
  authMode?: string;
  headerName?: string;
  tokenSource?: string;
  tokenEnv?: string;
}

const TYPE = "datasphere-stac-api";

export = function register(RED: NodeAPI): void {
  function DatasphereStacApi(this: Node<{ token: unknown }>, def: StacApiDef): void {
    RED.nodes.createNode(this, def);
    const node = this as StacApiConfigNode & Record<string, unknown>;
    const url = resolveEnv(RED, node, def.url).trim();
    const mode: ApiAuthMode = def.authMode === "bearer" || def.authMode === "header" ? def.authMode : "none";
    const secret: { token: string; problem?: string } = mode === "none" ? { token: "" } : resolveToken(RED, node, { tokenSource: def.tokenSource, tokenEnv: def.tokenEnv?.trim() || "STAC_API_TOKEN", credential: node.credentials?.token });
    const users = new Set<Node>();
    let client: StacApiClient | undefined;
    let configError: string | undefined;
    try {
      if (url === "") throw new DatasphereError("INVALID_CONFIG", "the API URL is empty");
      if (mode !== "none" && secret.problem) throw new DatasphereError("INVALID_CONFIG", `the auth secret is missing: ${secret.problem}`);
      client = new StacApiClient({ url, auth: new ApiAuth(url, mode, secret.token, resolveEnv(RED, node, def.headerName)) });
    } catch (error) {
      configError = redact((error as Error).message, [secret.token]);
      node.error(RED._(`${TYPE}.errors.invalid`, { problem: configError }));
    }

    Object.defineProperties(node, {
      credentials: { value: node.credentials, enumerable: false, writable: true },
      client: { value: client, enumerable: false },
      configError: { value: configError, enumerable: true },
      users: { value: users, enumerable: false },
    });
    node.register = (user: Node) => void users.add(user);
    node.deregister = (user: Node) => void users.delete(user);
    node.redact = (text: string) => redact(text, [secret.token]);
    node.on("close", (_removed: boolean, done: () => void) => {
      users.clear();
      done();
    });
  }

  RED.nodes.registerType(TYPE, DatasphereStacApi, { credentials: { token: { type: "password" } } });
};
