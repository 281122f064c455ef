import { request, type Dispatcher } from "undici";
import { sleep } from "../abort";
import type { RequestAuth } from "../auth";
import { Backoff, parseRetryAfter } from "../backoff";
import type { Clock } from "../clock";
import { DatasphereError, errorForStatus, isRetryable, toDatasphereError } from "../errors";
import { isRedirectStatus, redirectTarget } from "../redirect";
import type { StateReport } from "../state-report";

/** What every dataset reader needs: where the token may go, how long to wait, when to give up. */
export interface ReaderOptions {
  /** `config.auth`: the Authorization header for Data Sphere origins only. */
  auth: RequestAuth;
  /** `config.endpoints.isApiOrigin`: every URL requested must pass it, or nothing is sent. */
  isApiOrigin(url: string): boolean;
  signal?: AbortSignal;
  /** Longest silence while waiting for headers or body bytes (not a whole-transfer deadline). Default 60 s. */
  idleTimeoutMs?: number;
  /** Retries of a failed request (429, 5xx, network, timeout) before the pull fails. Default 4. */
  retries?: number;
  /** First backoff delay and cap; Retry-After wins when it is longer. Defaults 500 ms / 30 s. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A Retry-After longer than this fails the pull instead of waiting. Default 5 minutes. */
  maxRetryAfterMs?: number;
  /**
   * A page or item body larger than this many bytes fails the pull with TOO_LARGE (not retried);
   * counted while the body streams, so no more than this is ever held. Default 64 MiB, at most 512 MiB
   * (the longest string JSON.parse can take).
   */
  maxBodyBytes?: number;
  dispatcher?: Dispatcher;
  /** Retry waits run on this clock (tests pass a FakeClock). Default: the system clock. */
  clock?: Clock;
  /** Called before each retry wait (for status and logs). */
  onRetry?(report: StateReport<"retrying"> & { retryInMs: number; error: DatasphereError; url: string }): void;
}

export type ResponseData = Dispatcher.ResponseData;

/** Refuses a URL that is not on the API origin before any byte is sent. */
export function requireApiOrigin(url: string, options: ReaderOptions, what: string): void {
  if (!options.isApiOrigin(url)) {
    let origin = "an unparseable URL";
    try {
      origin = new URL(url).origin;
    } catch {
      /* keep the generic text */
    }
    throw new DatasphereError("BAD_REQUEST", `${what}: refused ${origin}: it is not the configured API origin, so no request was sent there`);
  }
}

/**
 * GET with auth and idle timeouts; a non-2xx answer becomes a DatasphereError (body discarded).
 * Redirects within the API origin are followed with the token (at most 5); one elsewhere is refused.
 */
export async function get(url: string, options: ReaderOptions, what: string, accept: string): Promise<ResponseData> {
  requireApiOrigin(url, options, what);
  const idle = options.idleTimeoutMs ?? 60_000;
  for (let hops = 0; ; hops++) {
    let response: ResponseData;
    try {
      response = await request(url, {
        method: "GET",
        headers: { accept, ...options.auth.headersFor(url) },
        signal: options.signal,
        headersTimeout: idle,
        bodyTimeout: idle,
        dispatcher: options.dispatcher,
      });
    } catch (error) {
      throw toDatasphereError(error, what);
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    const retryAfterMs = parseRetryAfter(response.headers["retry-after"] as string | string[] | undefined);
    await response.body.dump().catch(() => undefined);
    if (!isRedirectStatus(response.statusCode)) throw errorForStatus(response.statusCode, what, retryAfterMs);
    url = redirectTarget(url, response.statusCode, response.headers.location, { what, hops, allowed: (u) => options.isApiOrigin(u) });
  }
}

/**
 * Runs `attempt` until it succeeds, retrying retryable failures with jittered exponential backoff
 * (honouring Retry-After). AUTH, NOT_FOUND, BAD_REQUEST and ABORTED fail at once.
 */
export async function withRetries<T>(url: string, options: ReaderOptions, attempt: () => Promise<T>): Promise<T> {
  const retries = options.retries ?? 4;
  const backoff = new Backoff({ initialMs: options.backoffInitialMs ?? 500, maxMs: options.backoffMaxMs ?? 30_000 });
  const maxRetryAfter = options.maxRetryAfterMs ?? 300_000;
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (caught) {
      const error = toDatasphereError(caught, "request");
      if (options.signal?.aborted) throw new DatasphereError("ABORTED", "pull aborted", { cause: error });
      if (!isRetryable(error) || n >= retries) throw error;
      if (error.retryAfterMs !== undefined && error.retryAfterMs > maxRetryAfter) throw error;
      const delayMs = backoff.next(error.retryAfterMs ?? 0);
      options.onRetry?.({ state: "retrying", attempt: n + 1, retryInMs: delayMs, error, url });
      await sleep(delayMs, options.signal, options.clock);
    }
  }
}

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
/** V8 cannot make a string longer than about 2^29 characters, so no body limit may go past this. */
export const MAX_BODY_BYTES = 512 * 1024 * 1024;

/** The body limit in force: the option when it is a positive number, clamped to MAX_BODY_BYTES. */
export function bodyLimit(options: Pick<ReaderOptions, "maxBodyBytes">): number {
  const wanted = options.maxBodyBytes;
  if (wanted === undefined || !Number.isFinite(wanted) || wanted <= 0) return DEFAULT_MAX_BODY_BYTES;
  return Math.min(MAX_BODY_BYTES, Math.floor(wanted));
}

function tooLarge(what: string, limit: number, declared?: number): DatasphereError {
  const size = declared !== undefined ? `${formatBytes(declared)} (Content-Length)` : `more than ${formatBytes(limit)}`;
  return new DatasphereError(
    "TOO_LARGE",
    `${what}: the body is ${size}, over the limit of ${formatBytes(limit)} (option maxBodyBytes, "Max body size" on the node); it was not read further and will not be retried`,
    { details: { limit, declared } },
  );
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(n % (1024 * 1024) === 0 ? 0 : 1)} MiB` : `${n} bytes`;
}

/**
 * Reads a whole JSON body (an item or one page) and parses it. Bytes are counted as they arrive; past
 * `limit` the transfer is aborted and TOO_LARGE thrown, so no more than `limit` bytes are ever held.
 */
export async function readJsonBody(response: ResponseData, what: string, limit: number = DEFAULT_MAX_BODY_BYTES): Promise<unknown> {
  const declared = Number(response.headers["content-length"]);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    if (Number.isFinite(declared) && declared > limit) throw tooLarge(what, limit, declared);
    for await (const chunk of response.body) {
      const bytes = chunk as Buffer;
      total += bytes.length;
      if (total > limit) throw tooLarge(what, limit);
      chunks.push(bytes);
    }
  } catch (error) {
    throw toDatasphereError(error, `${what} interrupted`);
  } finally {
    if (!response.body.destroyed) {
      response.body.on("error", () => undefined); // the abort we cause is not news
      response.body.destroy();
    }
  }
  let text: string;
  try {
    text = Buffer.concat(chunks, total).toString("utf8");
  } catch {
    throw tooLarge(what, limit);
  }
  chunks.length = 0;
  try {
    return JSON.parse(text);
  } catch {
    throw new DatasphereError("PROTOCOL", `${what}: not JSON`);
  }
}
