import { Auth } from "../../core/auth";
import { probeHttp, probeWebSocket, type ProbeResult } from "../../core/connection-probe";
import { DEFAULT_API_URL, DEFAULT_PUBLISH_URL, validateEndpointSettings } from "../../core/endpoints";
import { AUTH_CLOSE_CODES } from "../../core/publisher";
import { redact } from "../../core/redact";
import { isUsableConfig, type DatasphereConfigNode } from "./config-node";
import type { NodeAPI } from "./node-red";

type UrlField = "apiUrl" | "publishUrl";

/** One line of the report: one URL probed (or a reason it was not), and what was found. */
export interface UrlCheck {
  field: UrlField | "token";
  /** The URL probed; absent when nothing was probed. Never a `${VAR}` expanded from a typed field. */
  url?: string;
  /** "typed": the URL in the dialog, probed without the token; "deployed": the running config's URL, with its token. */
  target: "typed" | "deployed" | "none";
  ok: boolean;
  reachable?: boolean;
  tls?: ProbeResult["tls"];
  token: "accepted" | "rejected" | "not-sent" | "none" | "unchecked";
  status?: number;
  /** Why it was not reachable, or why TLS failed (an error code such as ECONNREFUSED). */
  error?: string;
  text: string;
}

export interface ConnectionReport {
  verdict: "ok" | "problem";
  summary: string;
  checks: UrlCheck[];
}

const PROBE_PACKAGE = "node-red-connection-test";
const PROBE_TIMEOUT_MS = 10_000;
/** After a WebSocket opens: how long to wait for a close that rejects the token. */
const HEADER_GRACE_MS = 300;
const MESSAGE_GRACE_MS = 2_000;
const STORED_PASSWORD = "__PWRD__";
const DEFAULTS: Record<UrlField, string> = { apiUrl: DEFAULT_API_URL, publishUrl: DEFAULT_PUBLISH_URL };

interface Probe {
  field: UrlField;
  url: string;
  target: "typed" | "deployed";
  /** Set for the deployed URL only: the token goes nowhere else. */
  auth?: Auth;
  note?: string;
}

export interface TestRequest {
  id?: unknown;
  apiUrl?: unknown;
  publishUrl?: unknown;
  token?: unknown;
  tokenSource?: unknown;
}

function normalise(field: UrlField, url: string): string {
  try {
    const parsed = new URL(field === "apiUrl" && !url.endsWith("/") ? `${url}/` : url);
    return parsed.href;
  } catch {
    return url;
  }
}

function deployedUrl(config: DatasphereConfigNode & { endpoints: NonNullable<DatasphereConfigNode["endpoints"]> }, field: UrlField): string {
  return field === "apiUrl" ? config.endpoints.apiBase.href : config.endpoints.publishUrl;
}

/** The problems of one typed URL, checked alone (the other field at its default). */
function urlProblems(field: UrlField, url: string): string[] {
  const settings = { ...DEFAULTS, [field]: url };
  return validateEndpointSettings(settings).filter((p) => p.startsWith(`${field}:`));
}

/**
 * Decides what to probe. A typed URL is probed without any token unless it is the deployed URL; a
 * typed value holding `${VAR}` is never expanded here (only the deployed URL, expanded at deploy, is
 * probed then); the token check always runs against the deployed URL.
 */
export function planProbes(RED: NodeAPI, body: TestRequest, deployed: DatasphereConfigNode | null): { probes: Probe[]; checks: UrlCheck[] } {
  const t = (key: string, subs?: Record<string, string | number>) => RED._(`datasphere-config.test.${key}`, subs);
  const usable = isUsableConfig(deployed) ? deployed : undefined;
  const typedToken = typeof body.token === "string" ? body.token : "";
  const literalToken = body.tokenSource !== "env" && typedToken !== "" && typedToken !== STORED_PASSWORD && !typedToken.includes("${");
  const auth = usable ? (literalToken ? new Auth(usable.endpoints, typedToken) : usable.auth) : undefined;
  const probes: Probe[] = [];
  const checks: UrlCheck[] = [];
  for (const field of ["apiUrl", "publishUrl"] as const) {
    const typed = typeof body[field] === "string" ? (body[field] as string).trim() : "";
    const label = t(`field.${field}`);
    if (typed.includes("${")) {
      if (usable) probes.push({ field, url: deployedUrl(usable, field), target: "deployed", auth, note: t("envField") });
      else checks.push({ field, target: "none", ok: false, token: "unchecked", text: `${label}: ${t("envNotDeployed")}` });
      continue;
    }
    const url = typed || DEFAULTS[field];
    const problems = urlProblems(field, url);
    if (problems.length > 0) {
      checks.push({ field, target: "none", ok: false, token: "unchecked", text: `${label}: ${problems.join("; ")}` });
      if (usable) probes.push({ field, url: deployedUrl(usable, field), target: "deployed", auth });
      continue;
    }
    if (usable && normalise(field, url) === normalise(field, deployedUrl(usable, field))) {
      probes.push({ field, url: deployedUrl(usable, field), target: "deployed", auth });
      continue;
    }
    probes.push({ field, url, target: "typed" });
    if (usable) probes.push({ field, url: deployedUrl(usable, field), target: "deployed", auth });
  }
  if (!usable) checks.push({ field: "token", target: "none", ok: false, token: "unchecked", text: t("deployFirst") });
  return { probes, checks };
}

async function runProbe(RED: NodeAPI, probe: Probe, authMode: "header" | "message", secrets: string[]): Promise<UrlCheck> {
  const t = (key: string, subs?: Record<string, string | number>) => RED._(`datasphere-config.test.${key}`, subs);
  const withToken = probe.auth?.hasToken === true;
  let result: ProbeResult;
  let token: UrlCheck["token"] = probe.target === "typed" ? "not-sent" : withToken ? "accepted" : "none";
  if (probe.field === "apiUrl") {
    const url = new URL(`api/item/v1/${PROBE_PACKAGE}`, probe.url.endsWith("/") ? probe.url : `${probe.url}/`).href;
    result = await probeHttp(url, withToken ? probe.auth : undefined, PROBE_TIMEOUT_MS);
    if (withToken && (result.status === 401 || result.status === 403)) token = "rejected";
  } else {
    const viaMessage = withToken && authMode === "message";
    result = await probeWebSocket(probe.url, {
      auth: withToken ? probe.auth : undefined,
      authMode,
      graceMs: viaMessage ? MESSAGE_GRACE_MS : HEADER_GRACE_MS,
      timeoutMs: PROBE_TIMEOUT_MS,
    });
    if (withToken && (result.status === 401 || result.status === 403 || (result.closeCode !== undefined && AUTH_CLOSE_CODES.has(result.closeCode)))) token = "rejected";
  }
  const parts: string[] = [];
  if (!result.reachable) parts.push(t("unreachable", { error: result.error ?? "" }));
  if (result.tls === "failed") parts.push(t("tlsFailed"));
  else if (result.reachable) parts.push(result.tls === "valid" ? t("tlsValid") : t("noTls"));
  let badEndpoint = false;
  if (result.reachable) {
    if (probe.field === "publishUrl") {
      if (result.opened) parts.push(result.closeCode !== undefined ? t("handshakeClosed", { code: result.closeCode }) : t("handshake"));
      else {
        parts.push(t("upgradeStatus", { status: String(result.status) }));
        badEndpoint = result.status !== 401 && result.status !== 403;
      }
    } else {
      parts.push(t("answered", { status: String(result.status) }));
      badEndpoint = result.status !== undefined && result.status >= 500;
    }
    parts.push(t(`token.${token}`));
  }
  if (probe.note) parts.push(probe.note);
  const ok = result.reachable && result.tls !== "failed" && token !== "rejected" && !badEndpoint;
  const shown = redact(probe.url, secrets);
  const text = redact(`${t(`field.${probe.field}`)} ${shown} (${t(`target.${probe.target}`)}): ${parts.join("; ")}`, secrets);
  return { field: probe.field, url: shown, target: probe.target, ok, reachable: result.reachable, tls: result.tls, token, status: result.status, error: result.error ? redact(result.error, secrets) : undefined, text };
}

/** Runs the checks of one "Test connection" press. */
export async function testConnection(RED: NodeAPI, body: TestRequest, deployed: DatasphereConfigNode | null): Promise<ConnectionReport> {
  const { probes, checks } = planProbes(RED, body, deployed);
  const secrets = [...(deployed?.auth?.secrets() ?? []), ...(typeof body.token === "string" && body.token.length >= 4 ? [body.token] : [])];
  const authMode = deployed?.authMode === "message" ? "message" : "header";
  const probed = await Promise.all(probes.map((p) => runProbe(RED, p, authMode, secrets)));
  const all = [...probed, ...checks];
  const ok = all.every((c) => c.ok);
  return { verdict: ok ? "ok" : "problem", summary: RED._(`datasphere-config.test.${ok ? "ok" : "problem"}`), checks: all };
}

/**
 * POST /datasphere-config/test: the editor's "Test connection" button. Answers 200 with a report per
 * URL (see `testConnection`), 400 for a body that is not an object.
 */
export function registerTestConnectionRoute(RED: NodeAPI): void {
  RED.httpAdmin.post("/datasphere-config/test", RED.auth.needsPermission("datasphere-config.write"), (req, res) => {
    const body = (req.body ?? {}) as TestRequest;
    if (typeof body !== "object" || Array.isArray(body)) {
      res.status(400).json({ verdict: "problem", summary: RED._("datasphere-config.test.problem"), checks: [] });
      return;
    }
    const id = typeof body.id === "string" ? body.id : "";
    const deployed = id ? (RED.nodes.getNode(id) as DatasphereConfigNode | null) : null;
    const config = deployed && deployed.type === "datasphere-config" ? deployed : null;
    testConnection(RED, body, config).then(
      (report) => res.json(report),
      (error: unknown) => res.status(500).json({ verdict: "problem", summary: redact(String((error as Error)?.message ?? error), config?.auth?.secrets() ?? []), checks: [] }),
    );
  });
}
