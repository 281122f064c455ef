import { request, type Dispatcher } from "undici";
import type { RequestAuth } from "../auth";
import { DatasphereError } from "../errors";
import { isRedirectStatus, MAX_REDIRECTS } from "../redirect";
import { displayHref } from "./naming";


export interface GetOptions {
  /** Credentials for one URL: decided again for every hop, so a redirect to another origin goes without them. */
  auth: RequestAuth;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Longest wait for the response head and between two body chunks (not a whole-transfer deadline). */
  idleTimeoutMs: number;
  maxRedirects?: number;
  dispatcher?: Dispatcher;
}

export interface GetResult {
  response: Dispatcher.ResponseData;
  /** The URL that answered, after redirects. */
  url: string;
  redirects: number;
}

/**
 * A GET that follows redirects itself (at most 5), re-deciding the Authorization header for each hop.
 * Unlike the Data Sphere reads (core/redirect), any http(s) origin may be followed: assets live on
 * other hosts (object stores, signed URLs), and credentials go only where `headersFor` allows.
 */
export async function getFollowingRedirects(href: string, options: GetOptions): Promise<GetResult> {
  const maxRedirects = options.maxRedirects ?? MAX_REDIRECTS;
  let current = href;
  for (let redirects = 0; ; redirects += 1) {
    const response = await request(current, {
      method: "GET",
      headers: { ...options.headers, ...options.auth.headersFor(current) },
      signal: options.signal,
      headersTimeout: options.idleTimeoutMs,
      bodyTimeout: options.idleTimeoutMs,
      dispatcher: options.dispatcher,
    });
    const location = response.headers.location;
    if (!isRedirectStatus(response.statusCode) || typeof location !== "string") return { response, url: current, redirects };
    await response.body.dump().catch(() => undefined);
    if (redirects >= maxRedirects) throw new DatasphereError("PROTOCOL", `more than ${maxRedirects} redirects (last to ${displayHref(location)})`);
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new DatasphereError("PROTOCOL", "redirect to an invalid URL");
    }
    if (next.protocol !== "http:" && next.protocol !== "https:") {
      throw new DatasphereError("UNSUPPORTED", `redirect to a ${next.protocol}// URL is refused`);
    }
    current = next.toString();
  }
}

export function headerValue(headers: Dispatcher.ResponseData["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
