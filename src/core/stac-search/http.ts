import { request } from "undici";
import { parseRetryAfter } from "../backoff";
import { requireApiOrigin, withRetries, type ReaderOptions } from "../dataset/http";
import { DatasphereError, errorForStatus, toDatasphereError } from "../errors";
import { isRedirectStatus, redirectTarget } from "../redirect";

/** One request of a search: the first, or one a `rel=next` link describes. */
export interface StacRequest {
  method: "GET" | "POST";
  href: string;
  body?: Record<string, unknown>;
  headers?: Record<string, string>;
}

export interface StacHttpOptions extends ReaderOptions {
  /** A response body larger than this fails with SIZE (a page, the landing page). Default 32 MiB. */
  maxDocumentBytes?: number;
}

const ACCEPT = "application/geo+json, application/json";

/** Sends one request (auth for the API origin only) and parses the JSON answer; retried as the dataset readers are. */
export function fetchJson(req: StacRequest, options: StacHttpOptions, what: string): Promise<unknown> {
  return withRetries(req.href, options, () => fetchOnce(req, options, what));
}

/** One request; redirects within the API origin are followed with the credentials (POST only by 307/308). */
async function fetchOnce(req: StacRequest, options: StacHttpOptions, what: string): Promise<unknown> {
  const idle = options.idleTimeoutMs ?? 60_000;
  const body = req.method === "POST" ? JSON.stringify(req.body ?? {}) : undefined;
  let href = req.href;
  for (let hops = 0; ; hops++) {
    requireApiOrigin(href, options, what);
    const headers: Record<string, string> = { ...req.headers, accept: ACCEPT, ...options.auth.headersFor(href) };
    if (body !== undefined) headers["content-type"] = "application/json";
    let response;
    try {
      response = await request(href, { method: req.method, headers, body, signal: options.signal, headersTimeout: idle, bodyTimeout: idle, dispatcher: options.dispatcher });
    } catch (error) {
      throw toDatasphereError(error, what);
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return readJsonLimited(response.body, options.maxDocumentBytes ?? 32 * 1024 * 1024, what);
    if (isRedirectStatus(response.statusCode)) {
      await response.body.dump().catch(() => undefined);
      href = redirectTarget(href, response.statusCode, response.headers.location, { what, hops, method: req.method, allowed: (u) => options.isApiOrigin(u) });
      continue;
    }
    const retryAfterMs = parseRetryAfter(response.headers["retry-after"] as string | string[] | undefined);
    const detail = await errorDetail(response.body);
    const error = errorForStatus(response.statusCode, what, retryAfterMs);
    if (error.code === "BAD_REQUEST" && detail) throw new DatasphereError("BAD_REQUEST", `${error.message}: ${detail}`, { status: error.status });
    throw error;
  }
}

/** The server's reason for a 400 (its `description`, `detail` or `message`), shortened. */
async function errorDetail(body: AsyncIterable<unknown> & { dump(): Promise<void> }): Promise<string> {
  try {
    const text = (await readText(body, 4096, "error")).slice(0, 4096);
    const doc = JSON.parse(text) as Record<string, unknown>;
    const reason = doc.description ?? doc.detail ?? doc.message;
    return typeof reason === "string" ? reason.slice(0, 200) : "";
  } catch {
    return "";
  }
}

async function readText(body: AsyncIterable<unknown> & { destroy?(): void }, maxBytes: number, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        body.destroy?.();
        throw new DatasphereError("SIZE", `${what}: the answer is larger than ${maxBytes} bytes (limit)`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    throw toDatasphereError(error, `${what} interrupted`);
  }
  return Buffer.concat(chunks, size).toString("utf8");
}

/** Reads a JSON body of at most maxBytes: a larger one is a SIZE error, never unbounded memory. */
export async function readJsonLimited(body: AsyncIterable<unknown> & { destroy?(): void }, maxBytes: number, what: string): Promise<unknown> {
  const text = await readText(body, maxBytes, what);
  try {
    return JSON.parse(text);
  } catch {
    throw new DatasphereError("PROTOCOL", `${what}: not JSON (cut or not a STAC answer)`);
  }
}
