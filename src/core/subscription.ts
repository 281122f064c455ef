import { setImmediate as nextTurn } from "node:timers";
import { request, type Dispatcher } from "undici";
import { sleep } from "./abort";
import { Backoff, parseRetryAfter } from "./backoff";
import { DatasphereError, errorForStatus, isDatasphereError, isRetryable, toDatasphereError } from "./errors";
import { preview } from "./redact";
import { SseParser, type SseEvent } from "./sse";
import { itemKey, RecentSet } from "./subscription/dedup";

export type SubscriptionState = "idle" | "connecting" | "connected" | "backing-off" | "failed" | "closed";

export interface SubscriptionStateChange {
  state: SubscriptionState;
  /** Why the last attempt ended (backing-off, failed). */
  error?: DatasphereError;
  /** Delay before the next attempt (backing-off, failed). */
  retryInMs?: number;
  /** Number of consecutive failed attempts (backing-off, failed). */
  attempt?: number;
}

export interface SubscriptionItem {
  /** The parsed Item (a JSON object). */
  item: Record<string, unknown>;
  /** The event's data as received (JSON text). */
  data: string;
  /** The event's own SSE id, when it had one. */
  eventId?: string;
}

export interface MalformedEvent {
  eventId?: string;
  /** The first 200 characters of the data, passed through `redact`. */
  preview: string;
  reason: "not JSON" | "not a JSON object";
}

export interface SubscriptionOptions {
  url: string;
  /** Request headers (auth) for each attempt. */
  headers?: () => Record<string, string>;
  /** Sent as `Last-Event-ID` on the first connection. */
  lastEventId?: string;
  /** Deadline for TCP connect + response headers (default 30 s). */
  connectTimeoutMs?: number;
  /** Silence (not a byte, comments included) after which the stream is replaced (default 90 s). */
  idleTimeoutMs?: number;
  /** First retry delay when the server sends no `retry:` (default 1 s). */
  initialRetryMs?: number;
  /** Backoff cap (default 60 s). */
  maxRetryMs?: number;
  /** First retry delay after 401/403/404/400 (default 60 s, doubling up to max(maxRetryMs, 15 min)). */
  slowRetryMs?: number;
  /** A connection that delivered an event or stayed up this long resets the backoff (default 30 s). */
  healthyAfterMs?: number;
  /** How many recent event ids / Item keys are remembered for de-duplication (default 10,000). */
  dedupSize?: number;
  /** Longest Retry-After honoured (default 1 h). */
  maxRetryAfterMs?: number;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
  /** Removes secrets from text that came from the server. */
  redact?: (text: string) => string;
  /** Label for error messages, e.g. `subscription "sentinel-2-l2a-live"`. */
  what?: string;
  random?: () => number;
  onItem(item: SubscriptionItem): void;
  onMalformed?(event: MalformedEvent): void;
  onState?(change: SubscriptionStateChange): void;
}

export interface SubscriptionStats {
  items: number;
  duplicates: number;
  malformed: number;
  connections: number;
}

/**
 * A reconnecting SSE reader over undici: connect deadline, idle watchdog, jittered exponential
 * backoff (reset after a healthy connection; honours `retry:` and `Retry-After`), `Last-Event-ID`
 * resume and bounded de-duplication. Yields to the event loop after every chunk, so consumers that
 * queue work (Node-RED) keep up.
 */
export class Subscription {
  readonly stats: SubscriptionStats = { items: 0, duplicates: 0, malformed: 0, connections: 0 };
  private current: SubscriptionStateChange = { state: "idle" };
  private readonly controller = new AbortController();
  private loop?: Promise<void>;
  private readonly seenIds: RecentSet;
  private readonly seenKeys: RecentSet;
  private readonly what: string;
  private readonly redact: (text: string) => string;
  private lastId: string;
  private serverRetryMs?: number;
  private backoff: Backoff;
  private readonly slowBackoff: Backoff;
  private eventsThisConnection = 0;

  constructor(private readonly options: SubscriptionOptions) {
    this.seenIds = new RecentSet(options.dedupSize ?? 10_000);
    this.seenKeys = new RecentSet(options.dedupSize ?? 10_000);
    this.what = options.what ?? "subscription";
    this.redact = options.redact ?? ((t) => t);
    this.lastId = options.lastEventId ?? "";
    this.backoff = this.newBackoff(options.initialRetryMs ?? 1000);
    const maxRetryMs = options.maxRetryMs ?? 60_000;
    this.slowBackoff = new Backoff({ initialMs: options.slowRetryMs ?? 60_000, maxMs: Math.max(maxRetryMs, 15 * 60_000), random: options.random });
    if (options.signal) {
      if (options.signal.aborted) this.controller.abort();
      else options.signal.addEventListener("abort", () => this.controller.abort(), { once: true, signal: this.controller.signal });
    }
  }

  get state(): SubscriptionState {
    return this.current.state;
  }

  get stateChange(): SubscriptionStateChange {
    return this.current;
  }

  /** The id to resume from (`Last-Event-ID`): the last id the server set, "" when none. */
  get lastEventId(): string {
    return this.lastId;
  }

  /** Starts connecting (once). */
  start(): void {
    if (this.loop || this.controller.signal.aborted) return;
    this.loop = this.run();
  }

  /** Aborts the request, clears every timer, and resolves when the reader has stopped. */
  async close(): Promise<void> {
    this.controller.abort();
    if (this.loop) await this.loop;
    else this.setState({ state: "closed" });
  }

  private newBackoff(initialMs: number): Backoff {
    return new Backoff({ initialMs: Math.max(1, initialMs), maxMs: this.options.maxRetryMs ?? 60_000, random: this.options.random });
  }

  private setState(change: SubscriptionStateChange): void {
    this.current = change;
    try {
      this.options.onState?.(change);
    } catch {
      // a consumer's status handler must not break the reader
    }
  }

  private async run(): Promise<void> {
    const signal = this.controller.signal;
    const healthyAfterMs = this.options.healthyAfterMs ?? 30_000;
    const maxRetryAfterMs = this.options.maxRetryAfterMs ?? 3_600_000;
    while (!signal.aborted) {
      this.setState({ state: "connecting" });
      this.eventsThisConnection = 0;
      let connectedAt = 0;
      let error: DatasphereError;
      try {
        connectedAt = await this.connectOnce(signal);
        error = new DatasphereError("NETWORK", `${this.what}: stream ended by the server`);
      } catch (e) {
        if (signal.aborted) break;
        const cause = e as { connectedAt?: number };
        connectedAt = typeof cause?.connectedAt === "number" ? cause.connectedAt : 0;
        error = this.safeError(e);
      }
      if (signal.aborted) break;
      if (connectedAt > 0) this.slowBackoff.reset();
      if (connectedAt > 0 && (this.eventsThisConnection > 0 || Date.now() - connectedAt >= healthyAfterMs)) this.backoff.reset();
      const atLeast = Math.min(error.retryAfterMs ?? 0, maxRetryAfterMs);
      let change: SubscriptionStateChange;
      if (isRetryable(error)) {
        const retryInMs = this.backoff.next(atLeast);
        change = { state: "backing-off", error, retryInMs, attempt: this.backoff.attempts };
      } else {
        const retryInMs = this.slowBackoff.next(atLeast);
        change = { state: "failed", error, retryInMs, attempt: this.slowBackoff.attempts };
      }
      this.setState(change);
      try {
        await sleep(change.retryInMs ?? 0, signal);
      } catch {
        break;
      }
    }
    this.setState({ state: "closed" });
  }

  private safeError(e: unknown): DatasphereError {
    const error = toDatasphereError(e, this.what);
    const message = this.redact(error.message);
    if (message === error.message) return error;
    return new DatasphereError(error.code, message, { status: error.status, retryAfterMs: error.retryAfterMs });
  }

  /** One connection; resolves with the time it connected when the server ends the stream. */
  private async connectOnce(outer: AbortSignal): Promise<number> {
    const attempt = new AbortController();
    const abortAttempt = () => attempt.abort(outer.reason);
    outer.addEventListener("abort", abortAttempt, { once: true });
    const connectTimeoutMs = this.options.connectTimeoutMs ?? 30_000;
    const deadline = setTimeout(
      () => attempt.abort(new DatasphereError("TIMEOUT", `${this.what}: no response within ${seconds(connectTimeoutMs)} s`)),
      connectTimeoutMs,
    );
    let connectedAt = 0;
    try {
      const headers: Record<string, string> = { accept: "text/event-stream", "cache-control": "no-cache", ...this.options.headers?.() };
      if (this.lastId !== "") headers["last-event-id"] = this.lastId;
      let response: Dispatcher.ResponseData;
      try {
        response = await request(this.options.url, {
          method: "GET",
          headers,
          signal: attempt.signal,
          headersTimeout: connectTimeoutMs,
          bodyTimeout: 0,
          dispatcher: this.options.dispatcher,
        });
      } catch (e) {
        throw reasonOr(attempt.signal, e);
      }
      clearTimeout(deadline);
      if (response.statusCode !== 200) {
        const retryAfterMs = parseRetryAfter(response.headers["retry-after"]);
        await response.body.dump({ limit: 65_536 }).catch(() => undefined);
        throw errorForStatus(response.statusCode, this.what, retryAfterMs);
      }
      const type = String(response.headers["content-type"] ?? "");
      if (/^text\/html/i.test(type)) {
        response.body.destroy();
        throw new DatasphereError("PROTOCOL", `${this.what}: the server answered with a web page, not an event stream`);
      }
      connectedAt = Date.now();
      this.stats.connections += 1;
      this.setState({ state: "connected" });
      await this.read(response.body, attempt);
      return connectedAt;
    } catch (e) {
      const error = this.safeError(e);
      if (connectedAt > 0) Object.defineProperty(error, "connectedAt", { value: connectedAt, enumerable: false });
      throw error;
    } finally {
      clearTimeout(deadline);
      outer.removeEventListener("abort", abortAttempt);
      if (!attempt.signal.aborted) attempt.abort();
    }
  }

  private read(body: Dispatcher.ResponseData["body"], attempt: AbortController): Promise<void> {
    const idleTimeoutMs = this.options.idleTimeoutMs ?? 90_000;
    const parser = new SseParser({ lastEventId: this.lastId });
    return new Promise<void>((resolve, reject) => {
      let lastByteAt = Date.now();
      let finished = false;
      let idleTimer: NodeJS.Timeout | undefined;
      let resumeHandle: NodeJS.Immediate | undefined;
      const finish = (error?: unknown) => {
        if (finished) return;
        finished = true;
        if (idleTimer) clearTimeout(idleTimer);
        if (resumeHandle) clearImmediate(resumeHandle);
        body.off("data", onData);
        body.off("end", onEnd);
        body.off("error", onError);
        body.off("close", onClose);
        attempt.signal.removeEventListener("abort", onAbort);
        if (error === undefined) resolve();
        else {
          if (!body.destroyed) body.destroy();
          reject(reasonOr(attempt.signal, error));
        }
      };
      const checkIdle = () => {
        const quiet = Date.now() - lastByteAt;
        if (quiet >= idleTimeoutMs) {
          attempt.abort(new DatasphereError("TIMEOUT", `${this.what}: no data for ${seconds(idleTimeoutMs)} s`));
        } else idleTimer = setTimeout(checkIdle, idleTimeoutMs - quiet);
      };
      const onData = (chunk: Buffer) => {
        lastByteAt = Date.now();
        let events: SseEvent[];
        try {
          events = parser.push(chunk);
        } catch (e) {
          finish(e);
          return;
        }
        if (parser.retryMs !== undefined && parser.retryMs !== this.serverRetryMs) {
          this.serverRetryMs = parser.retryMs;
          this.backoff = this.newBackoff(parser.retryMs);
        }
        for (let i = 0; i < events.length && !attempt.signal.aborted; i++) this.handle(events[i]);
        this.lastId = parser.lastEventId;
        if (finished || attempt.signal.aborted) return;
        body.pause();
        resumeHandle = nextTurn(() => {
          resumeHandle = undefined;
          if (!finished) body.resume();
        });
      };
      const onEnd = () => {
        parser.end();
        finish();
      };
      const onError = (e: unknown) => finish(e);
      const onClose = () => finish(new DatasphereError("NETWORK", `${this.what}: connection closed`));
      const onAbort = () => finish(attempt.signal.reason);
      body.on("data", onData);
      body.once("end", onEnd);
      body.once("error", onError);
      body.once("close", onClose);
      attempt.signal.addEventListener("abort", onAbort, { once: true });
      idleTimer = setTimeout(checkIdle, idleTimeoutMs);
    });
  }

  private handle(event: SseEvent): void {
    this.eventsThisConnection += 1;
    const id = event.id;
    if (id !== undefined && !this.seenIds.addIfNew(id)) {
      this.stats.duplicates += 1;
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(event.data);
    } catch {
      this.malformed(event, "not JSON");
      return;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      this.malformed(event, "not a JSON object");
      return;
    }
    const item = value as Record<string, unknown>;
    if (id === undefined) {
      const key = itemKey(item, event.data);
      if (key !== undefined && !this.seenKeys.addIfNew(key)) {
        this.stats.duplicates += 1;
        return;
      }
    }
    this.stats.items += 1;
    try {
      this.options.onItem({ item, data: event.data, eventId: id });
    } catch {
      // the consumer's own errors are its business; the stream goes on
    }
  }

  private malformed(event: SseEvent, reason: MalformedEvent["reason"]): void {
    // Named events other than "message" that are not Items (pings, notices) are not errors.
    if (event.type !== "message") return;
    this.stats.malformed += 1;
    try {
      this.options.onMalformed?.({ eventId: event.id, preview: this.redact(preview(event.data, 200)), reason });
    } catch {
      // as above
    }
  }
}

function reasonOr(signal: AbortSignal, error: unknown): unknown {
  const reason = signal.reason as unknown;
  if (signal.aborted && isDatasphereError(reason)) return reason;
  return error;
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? String(ms / 1000) : (ms / 1000).toFixed(1);
}
