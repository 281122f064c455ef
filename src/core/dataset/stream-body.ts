import { parseRetryAfter } from "../backoff";
import { DatasphereError, errorForStatus, toDatasphereError } from "../errors";
import { isRedirectStatus, Redirect, redirectTarget } from "../redirect";
import { openStream, type StreamHandle } from "../stream-dispatch";
import { requireApiOrigin, type ReaderOptions } from "./http";

/** A response body read as the socket delivers it: `next()` gives each chunk, null at the end. */
export interface StreamBody {
  next(): Promise<Buffer | null>;
  close(): void;
}

const HIGH_WATER_BYTES = 1024 * 1024;

/**
 * GET through undici's dispatch API (no Readable body: pausing and resuming one per chunk costs
 * milliseconds of CPU). Chunks wait in a queue; reading from the socket pauses only when more than
 * 1 MiB waits. A failure is reported after every chunk received before it has been taken.
 * Resolves when a 2xx answer's headers arrive; a non-2xx answer is a DatasphereError. Redirects within
 * the API origin are followed with the token (at most 5); one elsewhere is refused.
 */
export async function openStreamBody(url: string, options: ReaderOptions, what: string, accept: string): Promise<StreamBody> {
  for (let hops = 0; ; hops++) {
    try {
      return await openOnce(url, options, what, accept, hops);
    } catch (error) {
      if (!(error instanceof Redirect)) throw error;
      url = error.location;
    }
  }
}

/** One request; a redirect within the API origin rejects with the Redirect to follow. */
function openOnce(url: string, options: ReaderOptions, what: string, accept: string, hops: number): Promise<StreamBody> {
  requireApiOrigin(url, options, what);
  const idle = options.idleTimeoutMs ?? 60_000;
  const queue: Buffer[] = [];
  let head = 0;
  let queued = 0;
  let paused = false;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  let handle!: StreamHandle;
  const signal = options.signal;
  const onAbort = () => handle.abort(new DatasphereError("ABORTED", `${what}: aborted`));

  return new Promise<StreamBody>((resolve, reject) => {
    let opened = false;
    handle = openStream(
      { url, headers: { accept, ...options.auth.headersFor(url) }, dispatcher: options.dispatcher, headersTimeoutMs: idle, bodyTimeoutMs: idle },
      {
        onHead: ({ statusCode, headers }) => {
          if (isRedirectStatus(statusCode)) {
            throw new Redirect(redirectTarget(url, statusCode, headers.location, { what, hops, allowed: (u) => options.isApiOrigin(u) }));
          }
          if (statusCode < 200 || statusCode >= 300) throw errorForStatus(statusCode, what, parseRetryAfter(headers["retry-after"]));
          opened = true;
          resolve(body);
        },
        onData: (chunk) => {
          queue.push(chunk);
          queued += chunk.length;
          if (queued > HIGH_WATER_BYTES && !paused) {
            paused = true;
            handle.pause();
          }
          wake?.();
        },
      },
    );
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    handle.done.then(
      () => {
        ended = true;
        signal?.removeEventListener("abort", onAbort);
        wake?.();
      },
      (error: unknown) => {
        ended = true;
        failure = error;
        signal?.removeEventListener("abort", onAbort);
        if (!opened) reject(error instanceof Redirect ? error : toDatasphereError(error, what));
        wake?.();
      },
    );

    const body: StreamBody = {
      async next() {
        for (;;) {
          if (head < queue.length) {
            const chunk = queue[head];
            queue[head++] = undefined as unknown as Buffer;
            queued -= chunk.length;
            if (head === queue.length) {
              queue.length = 0;
              head = 0;
            }
            if (paused && queued <= HIGH_WATER_BYTES / 2) {
              paused = false;
              handle.resume();
            }
            return chunk;
          }
          if (ended) {
            if (failure !== undefined) throw failure;
            return null;
          }
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      },
      close() {
        handle.abort(new DatasphereError("ABORTED", `${what}: closed`));
      },
    };
  });
}
