import { DatasphereError } from "./errors";

/** Redirects followed per request, as browsers' fetch and the WHATWG EventSource do at most 20; we keep 5. */
export const MAX_REDIRECTS = 5;

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Thrown (or returned) by one request's head handler: follow to this URL, already checked by redirectTarget. */
export class Redirect {
  constructor(readonly location: string) {}
}

export function isRedirectStatus(statusCode: number): boolean {
  return REDIRECT_STATUSES.has(statusCode);
}

export interface RedirectRule {
  /** For error texts: "subscription to …", "dataset page", … */
  what: string;
  /** Redirects already followed for this request. */
  hops: number;
  maxRedirects?: number;
  /**
   * Origins a redirect may lead to (the ones that get the token); undefined: any http(s) origin,
   * for requests that carry no credentials there (asset downloads decide them per hop).
   */
  allowed?(url: string): boolean;
  /** A POST is only re-sent by 307/308; 301/302/303 would turn it into a GET without its body. */
  method?: "GET" | "POST";
}

/**
 * Where a redirect answer leads, or the error that ends the request: no usable Location, too many
 * hops, a POST that would lose its body, or a target outside the allowed origins. Data Sphere reads
 * follow redirects within the configured origins only, with the token; they never go elsewhere.
 */
export function redirectTarget(from: string, statusCode: number, location: string | string[] | undefined, rule: RedirectRule): string {
  const max = rule.maxRedirects ?? MAX_REDIRECTS;
  const raw = Array.isArray(location) ? location[0] : location;
  let target: URL | undefined;
  try {
    target = raw ? new URL(raw, from) : undefined;
  } catch {
    target = undefined;
  }
  if (!target || (target.protocol !== "http:" && target.protocol !== "https:")) {
    throw new DatasphereError("PROTOCOL", `${rule.what}: redirect (HTTP ${statusCode}) without a usable http(s) Location`, { status: statusCode });
  }
  if (rule.hops >= max) {
    throw new DatasphereError("PROTOCOL", `${rule.what}: more than ${max} redirects (the last to ${target.origin})`, { status: statusCode });
  }
  if (rule.method === "POST" && statusCode !== 307 && statusCode !== 308) {
    throw new DatasphereError(
      "UNSUPPORTED",
      `${rule.what}: the server redirected a POST with HTTP ${statusCode}, which would resend it as a GET without its body; use the URL it points to (${target.origin}${target.pathname}) or the GET method`,
      { status: statusCode },
    );
  }
  if (rule.allowed && !rule.allowed(target.href)) {
    throw new DatasphereError(
      "UNSUPPORTED",
      `${rule.what}: the server redirected (HTTP ${statusCode}) to ${target.origin}, which is not the configured origin; credentials never go there, so the redirect is refused. If ${target.origin} is the right server, set it as the URL in the config node`,
      { status: statusCode },
    );
  }
  return target.href;
}
