import { request, type Dispatcher } from "undici";
import { sleep } from "../abort";
import { Backoff, parseRetryAfter } from "../backoff";
import type { Clock } from "../clock";
import { DatasphereError, errorForStatus, isRetryable, toDatasphereError } from "../errors";

/** What every dataset reader needs: where the token may go, how long to wait, when to give up. */
export interface ReaderOptions {
  /** `config.auth`: the Authorization header for Data Sphere origins only. */
  auth: { headersFor(url: string): Record<string, string> };
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
  dispatcher?: Dispatcher;
  /** Retry waits run on this clock (tests pass a FakeClock). Default: the system clock. */
  clock?: Clock;
  /** Called before each retry wait (for status and logs). */
  onRetry?(info: { attempt: number; delayMs: number; error: DatasphereError; url: string }): void;
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

/** GET with auth and idle timeouts; a non-2xx answer becomes a DatasphereError (body discarded). */
export async function get(url: string, options: ReaderOptions, what: string, accept: string): Promise<ResponseData> {
  requireApiOrigin(url, options, what);
  const idle = options.idleTimeoutMs ?? 60_000;
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
  if (response.statusCode >= 300 && response.statusCode < 400) {
    throw new DatasphereError("UNSUPPORTED", `${what}: redirect (HTTP ${response.statusCode}) not followed: the token stays on the API origin`, { status: response.statusCode });
  }
  throw errorForStatus(response.statusCode, what, retryAfterMs);
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
      options.onRetry?.({ attempt: n + 1, delayMs, error, url });
      await sleep(delayMs, options.signal, options.clock);
    }
  }
}

/** Reads a whole JSON body (an item or one page: small documents) and parses it. */
export async function readJsonBody(response: ResponseData, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await response.body.text();
  } catch (error) {
    throw toDatasphereError(error, `${what} interrupted`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new DatasphereError("PROTOCOL", `${what}: not JSON`);
  }
}
