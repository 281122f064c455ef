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
  /** undici's own timeouts (default 0: none; the caller keeps its own clock). */
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
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

/**
 * Uses undici's classic handler callbacks (onConnect/onHeaders/onData/...): every undici in the
 * process understands them, including the one inside Node that may own the global dispatcher.
 */
export function openStream(request: StreamRequest, sink: StreamSink): StreamHandle {
  let abortRequest: ((reason: Error) => void) | undefined;
  let resumeReading: (() => void) | undefined;
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
    // Before undici called onConnect: the request is aborted as soon as it does.
    abortRequest?.(reason);
  };
  const handler = {
    onConnect(abortFn: (reason?: Error) => void) {
      abortRequest = abortFn;
      if (abortReason) abortFn(abortReason);
    },
    onHeaders(statusCode: number, rawHeaders: Buffer[] | string[], resume: () => void): boolean {
      resumeReading = resume;
      if (abortReason) return false;
      try {
        sink.onHead({ statusCode, headers: headersOf(rawHeaders) });
      } catch (error) {
        abort(error as Error);
        return false;
      }
      return !paused;
    },
    onData(chunk: Buffer): boolean {
      if (abortReason) return false;
      try {
        sink.onData(chunk);
      } catch (error) {
        abort(error as Error);
        return false;
      }
      return !paused;
    },
    onComplete() {
      settle();
    },
    onError(error: Error) {
      settle(error);
    },
    onUpgrade() {
      settle(new Error("unexpected protocol upgrade"));
    },
  };
  try {
    const url = new URL(request.url);
    (request.dispatcher ?? getGlobalDispatcher()).dispatch(
      { origin: url.origin, path: `${url.pathname}${url.search}`, method: "GET", headers: request.headers, headersTimeout: request.headersTimeoutMs ?? 0, bodyTimeout: request.bodyTimeoutMs ?? 0 },
      handler as unknown as Dispatcher.DispatchHandler,
    );
  } catch (error) {
    settle(error as Error);
  }
  return {
    done,
    pause() {
      paused = true;
    },
    resume() {
      if (!paused) return;
      paused = false;
      resumeReading?.();
    },
    abort,
  };
}

/** Raw header pairs to a lower-case map (repeated names: the values in an array). */
function headersOf(raw: Buffer[] | string[]): IncomingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toString().toLowerCase();
    const value = raw[i + 1].toString("latin1");
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
  return headers as IncomingHttpHeaders;
}
