import { DatasphereError } from "../errors";
import type { StacRequest } from "./http";

/** Headers a next link may not set: ours to decide (auth, framing). */
const NOT_FROM_LINKS = new Set(["authorization", "host", "content-length", "content-type", "transfer-encoding", "connection", "cookie", "accept", "proxy-authorization"]);
const MAX_LINK_HEADERS = 20;
const MAX_HEADER_CHARS = 8192;

interface Link {
  rel?: unknown;
  href?: unknown;
  method?: unknown;
  body?: unknown;
  merge?: unknown;
  headers?: unknown;
}

/**
 * The request a page's `rel=next` link describes, as the STAC API spec allows it: a GET link (its
 * href), or a POST link whose `body` replaces the current body, or with `merge: true` is merged into
 * it; `headers` are sent with that request. Undefined when there is no next link.
 */
export function nextRequest(doc: { links?: unknown }, current: StacRequest, reservedHeader = ""): StacRequest | undefined {
  if (!Array.isArray(doc.links)) return undefined;
  const link = (doc.links as Link[]).find((l) => l && l.rel === "next" && typeof l.href === "string" && l.href !== "");
  if (!link) return undefined;
  let href: string;
  try {
    href = new URL(link.href as string, current.href).toString();
  } catch {
    throw new DatasphereError("PROTOCOL", "search page: next link is not a URL");
  }
  const method = typeof link.method === "string" ? link.method.toUpperCase() : "GET";
  if (method !== "GET" && method !== "POST") throw new DatasphereError("PROTOCOL", `search page: next link method ${method.slice(0, 10)} is neither GET nor POST`);
  const next: StacRequest = { method, href };
  if (method === "POST") {
    const body = link.body !== undefined && link.body !== null && typeof link.body === "object" && !Array.isArray(link.body) ? (link.body as Record<string, unknown>) : undefined;
    if (link.body !== undefined && body === undefined) throw new DatasphereError("PROTOCOL", "search page: next link body is not a JSON object");
    next.body = link.merge === true ? { ...(current.method === "POST" ? current.body : {}), ...body } : body ?? (current.method === "POST" ? current.body : {});
  }
  const headers = linkHeaders(link.headers, reservedHeader);
  if (headers) next.headers = headers;
  return next;
}

function linkHeaders(value: unknown, reserved: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) throw new DatasphereError("PROTOCOL", "search page: next link headers is not an object");
  const out: Record<string, string> = {};
  let count = 0;
  for (const [name, raw] of Object.entries(value as Record<string, unknown>)) {
    const key = name.toLowerCase();
    if (NOT_FROM_LINKS.has(key) || key === reserved) continue;
    const text = Array.isArray(raw) ? raw.join(", ") : raw;
    if (typeof text !== "string" && typeof text !== "number") continue;
    const header = String(text);
    if (header.length > MAX_HEADER_CHARS || /[\r\n]/.test(header) || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(key)) throw new DatasphereError("PROTOCOL", `search page: next link header ${key.slice(0, 40)} is not usable`);
    if (++count > MAX_LINK_HEADERS) throw new DatasphereError("PROTOCOL", `search page: next link has more than ${MAX_LINK_HEADERS} headers`);
    out[key] = header;
  }
  return count > 0 ? out : undefined;
}

/** Two requests are the same page when method, URL, body and headers are equal. */
export function requestKey(req: StacRequest): string {
  return `${req.method} ${req.href} ${req.body ? JSON.stringify(req.body) : ""} ${req.headers ? JSON.stringify(req.headers) : ""}`;
}
