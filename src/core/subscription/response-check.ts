import type { IncomingHttpHeaders } from "node:http";
import { parseRetryAfter } from "../backoff";
import { DatasphereError, errorForStatus, isRetryable } from "../errors";
import { isRedirectStatus, Redirect, redirectTarget, type RedirectRule } from "../redirect";

/** What to do after a connection ends: reconnect with backoff, retry slowly, or stop for good. */
export type Disposition = "retry" | "slow" | "stop";

export class AttemptError {
  constructor(
    readonly error: DatasphereError,
    readonly disposition: Disposition,
  ) {}
}

function first(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value) ?? "";
}

/**
 * WHATWG "Server-sent events", processing the response: 200 with `text/event-stream` is a stream;
 * redirects within the configured origin are followed (elsewhere: refused, see core/redirect); 204 means "stop reconnecting"; anything else fails the connection. Where
 * the node's documented policy retries (429, 5xx: backoff; 401/403/404/400: slow retry), it does.
 * Returns nothing for a stream, throws an AttemptError or a Redirect otherwise.
 */
export function checkResponse(statusCode: number, headers: IncomingHttpHeaders, url: string, what: string, redirect: Pick<RedirectRule, "hops" | "maxRedirects" | "allowed">): void {
  if (statusCode === 200) {
    const type = first(headers["content-type"]);
    const essence = type.split(";")[0].trim().toLowerCase();
    if (essence === "text/event-stream") return;
    const shown = essence === "" ? "no Content-Type" : `Content-Type ${JSON.stringify(essence.slice(0, 60))}`;
    throw new AttemptError(
      new DatasphereError("PROTOCOL", `${what}: the server answered with ${shown}, not text/event-stream: check the server URL (retrying slowly)`, { status: 200 }),
      "slow",
    );
  }
  if (isRedirectStatus(statusCode)) {
    let target: string;
    try {
      target = redirectTarget(url, statusCode, headers.location, { what, ...redirect });
    } catch (error) {
      throw new AttemptError(error as DatasphereError, "slow");
    }
    throw new Redirect(target);
  }
  if (statusCode === 204) {
    throw new AttemptError(
      new DatasphereError("CLOSED", `${what}: the server answered HTTP 204 No Content, which asks clients to stop: not reconnecting (send msg.action "connect" to try again)`, {
        status: 204,
      }),
      "stop",
    );
  }
  const error = errorForStatus(statusCode, what, parseRetryAfter(headers["retry-after"]));
  if (statusCode < 400) throw new AttemptError(error, "slow");
  throw new AttemptError(error, isRetryable(error) ? "retry" : "slow");
}
