import type { IncomingHttpHeaders } from "node:http";
import { getGlobalDispatcher, type Dispatcher } from "undici";

/**
 * One streaming GET over undici's `dispatch` API: the response body arrives as the Buffers the
 * socket delivered, with no Readable stream in between. Each chunk is handed to `onData` as it
 * arrives, so nothing the process received is held back when the connection fails; `pause()` /
 * `resume()` stop and restart reading from the socket (used only when the consumer is behind, not
 * per chunk: a paused and resumed undici body costs milliseconds of CPU per cycle).
 */
export interface StreamRequest {
  url: string;
  headers: Record<string, string>;
  dispatcher?: Dispatcher;
}

export interface StreamHead {
  statusCode: number;
  headers: IncomingHttpHeaders;
}

export interface StreamSink {
  /** Response headers. Throwing ends the exchange with that error, before any body byte is read. */
  onHead(head: StreamHead): void;
  /** A body chunk (the Buffer may be reused by nobody else: keep it or copy from it). */
  onData(chunk: Buffer): void;
}

export interface StreamHandle {
  /** Resolves when the body ends, rejects with the transport error or the abort reason. */
  readonly done: Promise<void>;
  pause(): void;
  resume(): void;
  /** Ends the exchange; `done` rejects with `reason`. Safe to call at any time, more than once. */
  abort(reason: Error): void;
}

export function openStream(request: StreamRequest, sink: StreamSink): StreamHandle {
  let controller: Dispatcher.DispatchController | undefined;
  let abortReason: Error | undefined;
  let paused = false;
  let settled = false;
  let settle!: (error?: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (error) => {
      if (settled) return;
      settled = true;
      if (error) reject(abortReason ?? error);
      else if (abortReason) reject(abortReason);
      else resolve();
    };
  });
  const abort = (reason: Error) => {
    if (settled || abortReason) return;
    abortReason = reason;
    if (controller) controller.abort(reason);
    // Before undici called onRequestStart: the request is aborted as soon as it does.
  };
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (abortReason) c.abort(abortReason);
      else if (paused) c.pause();
    },
    onResponseStart(c, statusCode, headers) {
      if (abortReason) return;
      try {
        sink.onHead({ statusCode, headers });
      } catch (error) {
        abort(error as Error);
        return;
      }
      if (paused) c.pause();
    },
    onResponseData(_c, chunk) {
      if (abortReason) return;
      try {
        sink.onData(chunk);
      } catch (error) {
        abort(error as Error);
      }
    },
    onResponseEnd() {
      settle();
    },
    onResponseError(_c, error) {
      settle(error);
    },
  };
  let url: URL;
  try {
    url = new URL(request.url);
    (request.dispatcher ?? getGlobalDispatcher()).dispatch(
      { origin: url.origin, path: `${url.pathname}${url.search}`, method: "GET", headers: request.headers, headersTimeout: 0, bodyTimeout: 0 },
      handler,
    );
  } catch (error) {
    settle(error as Error);
  }
  return {
    done,
    pause() {
      paused = true;
      controller?.pause();
    },
    resume() {
      if (!paused) return;
      paused = false;
      controller?.resume();
    },
    abort,
  };
}
