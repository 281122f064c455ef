import { request } from "undici";
import WebSocket from "ws";
import type { RequestAuth } from "./auth";
import { clampDelay } from "./clock";
import type { AuthMode } from "./endpoints";

/** What one probe of one URL found: whether it answered, over which TLS, and with which status. */
export interface ProbeResult {
  reachable: boolean;
  /** "valid": https/wss with a certificate Node trusts; "none": plain http/ws; "failed": the TLS handshake or
   *  certificate was refused; "untested": https/wss that failed before TLS (refused, DNS, timeout). */
  tls: "valid" | "none" | "failed" | "untested";
  /** HTTP status of the answer (the upgrade's status for a refused WebSocket). */
  status?: number;
  /** WebSocket only: the handshake completed (101). */
  opened?: boolean;
  /** WebSocket only: the server closed the socket within the grace period after the auth message. */
  closeCode?: number;
  closeReason?: string;
  /** The error code or message when not reachable (or when TLS failed). */
  error?: string;
}

const TLS_ERROR = /^(CERT_|ERR_TLS_|ERR_SSL_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_|HOSTNAME_MISMATCH|EPROTO)/;

function isSecure(url: string): boolean {
  return /^(https|wss):/i.test(url);
}

function failure(url: string, error: unknown): ProbeResult {
  const err = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = err?.cause?.code ?? err?.code;
  return reclassify(url, { reachable: false, tls: "none", error: code || err?.message || String(error) });
}

/** One GET (with the auth's headers for this URL, if any); the body is discarded. Any HTTP answer means reachable (and, for https, a trusted certificate). */
export async function probeHttp(url: string, auth: RequestAuth | undefined, timeoutMs: number): Promise<ProbeResult> {
  try {
    const response = await request(url, {
      method: "GET",
      headers: auth?.headersFor(url) ?? {},
      signal: AbortSignal.timeout(clampDelay(timeoutMs)),
      headersTimeout: clampDelay(timeoutMs),
    });
    await response.body.dump();
    return { reachable: true, tls: isSecure(url) ? "valid" : "none", status: response.statusCode };
  } catch (error) {
    return failure(url, error);
  }
}

// A secure URL that could not be reached may have failed before TLS (refused, DNS, timeout): only a
// TLS-shaped error says the certificate or handshake was refused.
function reclassify(url: string, result: ProbeResult): ProbeResult {
  if (!isSecure(url)) return { ...result, tls: "none" };
  if (result.reachable) return { ...result, tls: "valid" };
  return { ...result, tls: TLS_ERROR.test(String(result.error ?? "")) ? "failed" : "untested" };
}

export interface WebSocketProbeOptions {
  /** Without it the handshake goes without credentials. */
  auth?: RequestAuth;
  /** "header": the auth's headers on the upgrade; "message": its auth message as the first frame once open. */
  authMode: AuthMode;
  /** How long to wait, after open (and the first message), for the server to close the socket. */
  graceMs: number;
  timeoutMs: number;
}

/** A WebSocket opening handshake, then a short wait to see whether the server closes it. */
export function probeWebSocket(url: string, options: WebSocketProbeOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    let opened = false;
    let status: number | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (graceTimer) clearTimeout(graceTimer);
      resolve(result);
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, "connection test done");
      else if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
    };
    const headers = options.authMode === "header" ? (options.auth?.headersFor(url) ?? {}) : {};
    const firstMessage = options.authMode === "message" ? options.auth?.authMessageFor?.(url) : undefined;
    const ws = new WebSocket(url, { headers, handshakeTimeout: clampDelay(options.timeoutMs), followRedirects: false, perMessageDeflate: false });
    const deadline = setTimeout(() => finish(reclassify(url, { reachable: false, tls: "none", error: "no answer in time" })), clampDelay(options.timeoutMs + 1000));
    ws.on("unexpected-response", (_req, res) => {
      status = res.statusCode;
      res.resume();
      finish({ reachable: true, tls: isSecure(url) ? "valid" : "none", status, opened: false });
    });
    ws.on("open", () => {
      opened = true;
      if (firstMessage !== undefined) ws.send(firstMessage);
      graceTimer = setTimeout(() => finish({ reachable: true, tls: isSecure(url) ? "valid" : "none", status: 101, opened: true }), clampDelay(options.graceMs));
    });
    ws.on("close", (code: number, reason: Buffer) => {
      if (opened) finish({ reachable: true, tls: isSecure(url) ? "valid" : "none", status: 101, opened: true, closeCode: code, closeReason: reason.toString("utf8").slice(0, 200) });
    });
    ws.on("error", (error: Error) => {
      if (!opened) finish(failure(url, error));
    });
  });
}
