import { request } from "undici";
import { Auth } from "../../core/auth";
import { DEFAULT_API_URL, DEFAULT_PUBLISH_URL, Endpoints, validateEndpointSettings } from "../../core/endpoints";
import { redact } from "../../core/redact";
import type { DatasphereConfigNode } from "./config-node";
import { resolveEnv } from "./env";
import type { Node, NodeAPI } from "./node-red";

export type ConnectionVerdict = "reachable" | "token-rejected" | "unreachable" | "invalid";

const PROBE_PACKAGE = "node-red-connection-test";
const PROBE_TIMEOUT_MS = 10_000;
const STORED_PASSWORD = "__PWRD__";

/**
 * Asks the API with the token for a package that does not exist: 401/403 means the token is
 * rejected; any other HTTP answer means the service is reachable and took the token.
 */
export async function probeConnection(endpoints: Endpoints, auth: Auth): Promise<{ verdict: ConnectionVerdict; detail: string }> {
  const url = endpoints.item(PROBE_PACKAGE);
  try {
    const response = await request(url, {
      method: "GET",
      headers: auth.headersFor(url),
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      headersTimeout: PROBE_TIMEOUT_MS,
    });
    await response.body.dump();
    if (response.statusCode === 401 || response.statusCode === 403) {
      return { verdict: "token-rejected", detail: `HTTP ${response.statusCode}` };
    }
    return { verdict: "reachable", detail: `HTTP ${response.statusCode}` };
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    return { verdict: "unreachable", detail: redact(err.code || err.message || String(error), auth.secrets()) };
  }
}

/**
 * POST /datasphere-config/test: the editor's "Test connection" button. A secret the server holds (the
 * stored token, for which the editor sends a placeholder, or a typed `${ENV_VAR}` token) is only ever
 * probed against the deployed node's own API URL, so the route cannot send it to another host. Only a
 * literal token typed in the dialog goes to the URL typed beside it.
 */
export function registerTestConnectionRoute(RED: NodeAPI): void {
  RED.httpAdmin.post("/datasphere-config/test", RED.auth.needsPermission("datasphere-config.write"), (req, res) => {
    const body = req.body ?? {};
    const id = typeof body.id === "string" ? body.id : "";
    const typedToken = typeof body.token === "string" ? body.token : "";
    const useStored = typedToken === "" || typedToken === STORED_PASSWORD;
    const fromEnvironment = typedToken.includes("${");
    const deployed = id ? (RED.nodes.getNode(id) as DatasphereConfigNode | null) : null;
    const resolve = (v: unknown) => resolveEnv(RED, deployed as Node | null, String(v ?? ""));

    if (useStored || fromEnvironment) {
      if (!deployed || !deployed.endpoints || !deployed.auth) {
        res.status(400).json({ verdict: "invalid", detail: RED._("datasphere-config.test.deployFirst") });
        return;
      }
      const auth = useStored ? deployed.auth : new Auth(deployed.endpoints, resolve(typedToken));
      void probeConnection(deployed.endpoints, auth).then((result) => res.json(result));
      return;
    }
    const apiUrl = resolve(body.apiUrl) || DEFAULT_API_URL;
    const publishUrl = resolve(body.publishUrl) || DEFAULT_PUBLISH_URL;
    const problems = validateEndpointSettings({ apiUrl, publishUrl });
    if (problems.length > 0) {
      res.status(400).json({ verdict: "invalid", detail: problems.join("; ") });
      return;
    }
    const endpoints = new Endpoints({ apiUrl, publishUrl });
    void probeConnection(endpoints, new Auth(endpoints, resolve(typedToken))).then((result) => res.json(result));
  });
}
