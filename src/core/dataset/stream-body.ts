import { parseRetryAfter } from "../backoff";
import { DatasphereError, errorForStatus, toDatasphereError } from "../errors";
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
 * Resolves when a 2xx answer's headers arrive; a non-2xx answer is a DatasphereError.
 */
export function openStreamBody(url: string, options: ReaderOptions, what: string, accept: string): Promise<StreamBody> {
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
          if (statusCode >= 300 && statusCode < 400) {
            throw new DatasphereError("UNSUPPORTED", `${what}: redirect (HTTP ${statusCode}) not followed: the token stays on the API origin`, { status: statusCode });
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
        if (!opened) reject(toDatasphereError(error, what));
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
