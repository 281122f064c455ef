import type { Dispatcher } from "undici";
import type { RequestAuth } from "./auth";
import { systemClock, type Clock, type TimerHandle } from "./clock";
import { seconds } from "./duration";
import { DatasphereError, isDatasphereError, toDatasphereError } from "./errors";
import { preview } from "./redact";
import { SseParser, type SseEvent } from "./sse";
import { openStream, type StreamHandle } from "./stream-dispatch";
import { sleepOn } from "./subscription/clock-sleep";
import { itemVersionKey, RecentSet } from "./subscription/dedup";
import { ReconnectDelay } from "./subscription/reconnect-delay";
import { Redirect, type RedirectRule } from "./redirect";
import type { StateReport } from "./state-report";
import { AttemptError, checkResponse, type Disposition } from "./subscription/response-check";

export type SubscriptionState = "idle" | "connecting" | "connected" | "backing-off" | "failed" | "stopped" | "closed";

export type SubscriptionStateChange = StateReport<SubscriptionState>;

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
  /** True on the last one reported individually: later ones are only counted (`stats.malformed`). */
  last: boolean;
}

/** Something the user should know once, that is not a failure (e.g. an id too long to resume from). */
export interface SubscriptionNotice {
  code: "ID_TOO_LONG" | "ID_REFUSED";
  message: string;
}

export interface SubscriptionOptions {
  url: string;
  /** Credentials, asked for each request's URL (redirect hops included). */
  auth?: RequestAuth;
  /** Sent as `Last-Event-ID` on the first connection. */
  lastEventId?: string;
  /** Deadline for TCP connect + response headers (default 30 s). */
  connectTimeoutMs?: number;
  /** Silence (not a byte, comments included) after which the stream is replaced (default 90 s). */
  idleTimeoutMs?: number;
  /** Reconnection time when the server sends no `retry:` (default 1 s). */
  initialRetryMs?: number;
  /** Floor of every reconnect delay, whatever `retry:` says (default 1 s). */
  minRetryMs?: number;
  /** Backoff cap (default 60 s). */
  maxRetryMs?: number;
  /** First retry delay after 401/403/404/400 or a response that is not an event stream (default 60 s, doubling up to max(maxRetryMs, 15 min)). */
  slowRetryMs?: number;
  /** A connection that delivered an event or stayed up this long resets the backoff (default 30 s). */
  healthyAfterMs?: number;
  /** How many recent event ids / Item keys are remembered for de-duplication (default 10,000). */
  dedupSize?: number;
  /** Characters all remembered ids / keys may hold together (default 4 Mi). */
  dedupMaxChars?: number;
  /** Longest id used for `Last-Event-ID` and de-duplication (default 1,024 characters). */
  maxIdLength?: number;
  /** Longest line or event data accepted (default 32 Mi characters): longer is a PROTOCOL error on that connection. */
  maxLineLength?: number;
  /** Redirects followed per connection (default 5). */
  maxRedirects?: number;
  /** Malformed events reported one by one before they are only counted (default 10). */
  maxMalformedReports?: number;
  /**
   * Items handed to `onItem` and not yet released with `release()`: beyond this, Items wait in the
   * subscription's backlog (reading goes on, so a reset loses nothing received). Unset: every Item
   * is handed out as it is parsed (a consumer that takes them synchronously).
   */
  maxUntaken?: number;
  /** Characters of Items waiting in the backlog before reading from the socket pauses (default 8 Mi). */
  maxBacklogChars?: number;
  /** Longest Retry-After honoured (default 1 h). */
  maxRetryAfterMs?: number;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
  clock?: Clock;
  /** Removes secrets from text that came from the server. */
  redact?: (text: string) => string;
  /** Label for error messages, e.g. `subscription "sentinel-2-l2a-live"`. */
  what?: string;
  random?: () => number;
  onItem(item: SubscriptionItem): void;
  onMalformed?(event: MalformedEvent): void;
  onState?(change: SubscriptionStateChange): void;
  onNotice?(notice: SubscriptionNotice): void;
}

export interface SubscriptionStats {
  items: number;
  duplicates: number;
  malformed: number;
  connections: number;
  /** Body bytes received, comments included. */
  bytes: number;
}

interface Attempt {
  connectedAt: number;
  error: DatasphereError;
  disposition: Disposition;
}

/**
 * A reconnecting SSE reader over undici's dispatch API: connect deadline, idle watchdog, jittered
 * exponential backoff that never goes below the server's `retry:` (reset after a healthy
 * connection), `Last-Event-ID` resume, redirects, bounded de-duplication. Events are delivered as
 * the bytes arrive; every complete event received is delivered before a failure ends a connection.
 */
export class Subscription {
  readonly stats: SubscriptionStats = { items: 0, duplicates: 0, malformed: 0, connections: 0, bytes: 0 };
  private current: SubscriptionStateChange = { state: "idle" };
  private readonly controller = new AbortController();
  private loop?: Promise<void>;
  private readonly seenIds: RecentSet;
  private readonly seenKeys: RecentSet;
  private readonly what: string;
  private readonly redact: (text: string) => string;
  private readonly clock: Clock;
  private readonly maxIdLength: number;
  private readonly maxUntaken?: number;
  private untakenCount = 0;
  private readonly backlog: SubscriptionItem[] = [];
  private backlogHead = 0;
  private backlogChars = 0;
  private draining = false;
  private lastId: string;
  private serverRetryMs?: number;
  private backoff: ReconnectDelay;
  private readonly slowBackoff: ReconnectDelay;
  private eventsThisConnection = 0;
  private warnedLongId = false;
  private resumeReading?: () => void;

  constructor(private readonly options: SubscriptionOptions) {
    const maxChars = options.dedupMaxChars ?? 4 * 1024 * 1024;
    this.seenIds = new RecentSet(options.dedupSize ?? 10_000, maxChars);
    this.seenKeys = new RecentSet(options.dedupSize ?? 10_000, maxChars);
    this.what = options.what ?? "subscription";
    this.redact = options.redact ?? ((t) => t);
    this.clock = options.clock ?? systemClock;
    this.maxIdLength = options.maxIdLength ?? 1024;
    if (options.maxUntaken !== undefined) this.maxUntaken = Math.max(1, options.maxUntaken);
    this.lastId = "";
    this.takeId(options.lastEventId ?? "");
    this.backoff = this.newBackoff(options.initialRetryMs ?? 1000);
    this.slowBackoff = new ReconnectDelay({
      initialMs: options.slowRetryMs ?? 60_000,
      maxMs: Math.max(options.maxRetryMs ?? 60_000, 15 * 60_000),
      floorMs: this.floorMs,
      random: options.random,
    });
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

  /** The id to resume from (`Last-Event-ID`): the last usable id the server set, "" when none. */
  get lastEventId(): string {
    return this.lastId;
  }

  /** Items handed out and not yet released (with `maxUntaken`). */
  get untaken(): number {
    return this.untakenCount;
  }

  /** Items received and waiting for the consumer (with `maxUntaken`). */
  get waiting(): number {
    return this.backlog.length - this.backlogHead;
  }

  /** Starts connecting (once). */
  start(): void {
    if (this.loop || this.controller.signal.aborted) return;
    this.loop = this.run();
  }

  /** With `maxUntaken`: the consumer has taken `n` Items; waiting Items are handed out, reading resumes. */
  release(n = 1): void {
    if (this.maxUntaken === undefined) return;
    this.untakenCount = Math.max(0, this.untakenCount - n);
    this.drain();
  }

  /** Aborts the request, clears every timer, and resolves when the reader has stopped. */
  async close(): Promise<void> {
    this.controller.abort();
    this.backlog.length = 0;
    this.backlogHead = 0;
    this.backlogChars = 0;
    if (this.loop) await this.loop;
    else this.setState({ state: "closed" });
  }

  private get floorMs(): number {
    return Math.max(1, this.options.minRetryMs ?? 1000);
  }

  private newBackoff(initialMs: number): ReconnectDelay {
    return new ReconnectDelay({ initialMs, maxMs: this.options.maxRetryMs ?? 60_000, floorMs: this.floorMs, random: this.options.random });
  }

  private setState(change: SubscriptionStateChange): void {
    this.current = change;
    try {
      this.options.onState?.(change);
    } catch {
      // a consumer's status handler must not break the reader
    }
  }

  private notice(notice: SubscriptionNotice): void {
    try {
      this.options.onNotice?.(notice);
    } catch {
      // as above
    }
  }

  /** Keeps an id for resume, copied (never a slice of a big chunk); an id over the length limit is not used. */
  private takeId(id: string): void {
    if (id === this.lastId) return;
    if (id.length > this.maxIdLength) {
      if (!this.warnedLongId) {
        this.warnedLongId = true;
        this.notice({
          code: "ID_TOO_LONG",
          message: `${this.what}: the server sent an event id of ${id.length} characters (limit ${this.maxIdLength}); such ids are not used to resume or de-duplicate`,
        });
      }
      return;
    }
    this.lastId = copyString(id);
  }

  private async run(): Promise<void> {
    const signal = this.controller.signal;
    const healthyAfterMs = this.options.healthyAfterMs ?? 30_000;
    const maxRetryAfterMs = this.options.maxRetryAfterMs ?? 3_600_000;
    while (!signal.aborted) {
      this.setState({ state: "connecting" });
      this.eventsThisConnection = 0;
      const attempt = await this.connectOnce(signal);
      if (signal.aborted) break;
      const { connectedAt, error, disposition } = attempt;
      if (disposition === "stop") {
        this.setState({ state: "stopped", error });
        return;
      }
      if (connectedAt > 0) this.slowBackoff.reset();
      if (connectedAt > 0 && (this.eventsThisConnection > 0 || this.clock.now() - connectedAt >= healthyAfterMs)) this.backoff.reset();
      const atLeast = Math.min(error.retryAfterMs ?? 0, maxRetryAfterMs);
      let change: SubscriptionStateChange;
      if (disposition === "retry") {
        const retryInMs = this.backoff.next(atLeast);
        change = { state: "backing-off", error, retryInMs, attempt: this.backoff.attempts };
      } else {
        const retryInMs = this.slowBackoff.next(atLeast);
        change = { state: "failed", error, retryInMs, attempt: this.slowBackoff.attempts };
      }
      this.setState(change);
      try {
        await sleepOn(this.clock, change.retryInMs ?? 0, signal);
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

  /** One connection, redirects included (within the configured origin only); never throws. */
  private async connectOnce(signal: AbortSignal): Promise<Attempt> {
    const origin = new URL(this.options.url).origin;
    const allowed = (url: string) => new URL(url).origin === origin;
    let url = this.options.url;
    for (let hops = 0; ; hops++) {
      const outcome = await this.exchange(url, { hops, allowed, maxRedirects: this.options.maxRedirects }, signal);
      if (!(outcome instanceof Redirect)) return outcome;
      url = outcome.location;
    }
  }

  private requestHeaders(url: string): Record<string, string> {
    const headers: Record<string, string> = { accept: "text/event-stream", "cache-control": "no-cache" };
    for (const [name, value] of Object.entries(this.options.auth?.headersFor(url) ?? {})) headers[name.toLowerCase()] = value;
    // Header values travel as bytes: the id's UTF-8 bytes, each as one Latin-1 character for undici.
    if (this.lastId !== "") headers["last-event-id"] = Buffer.from(this.lastId, "utf8").toString("latin1");
    return headers;
  }

  /** One request/response: resolves with a Redirect to follow or how the connection ended. */
  private exchange(url: string, redirect: Pick<RedirectRule, "hops" | "maxRedirects" | "allowed">, signal: AbortSignal): Promise<Attempt | Redirect> {
    const clock = this.clock;
    const connectTimeoutMs = this.options.connectTimeoutMs ?? 30_000;
    const idleTimeoutMs = this.options.idleTimeoutMs ?? 90_000;
    const parser = new SseParser({ lastEventId: this.lastId, maxLength: this.options.maxLineLength });
    const sentId = this.lastId;
    let connectedAt = 0;
    let lastByteAt = 0;
    let idleTimer: TimerHandle | undefined;

    const checkIdle = () => {
      const quiet = clock.now() - lastByteAt;
      if (quiet >= idleTimeoutMs) handle.abort(new DatasphereError("TIMEOUT", `${this.what}: no data for ${seconds(idleTimeoutMs)} s`));
      else idleTimer = clock.setTimeout(checkIdle, idleTimeoutMs - quiet);
    };
    const deadline = clock.setTimeout(
      () => handle.abort(new DatasphereError("TIMEOUT", `${this.what}: no response within ${seconds(connectTimeoutMs)} s`)),
      connectTimeoutMs,
    );
    const onAbort = () => handle.abort(new DatasphereError("ABORTED", `${this.what}: closed`));

    // Declared after the timers that use it: they fire only once the request is under way.
    const handle: StreamHandle = openStream(
      { url, headers: this.requestHeaders(url), dispatcher: this.options.dispatcher },
      {
        onHead: ({ statusCode, headers }) => {
          clock.clearTimeout(deadline);
          if (statusCode === 431 && sentId !== "") {
            // The server refuses our Last-Event-ID header (too large for it): go on without it.
            this.notice({ code: "ID_REFUSED", message: `${this.what}: the server refused the Last-Event-ID header (HTTP 431); reconnecting without it` });
            this.lastId = "";
            throw new AttemptError(new DatasphereError("BAD_REQUEST", `${this.what}: Last-Event-ID refused (HTTP 431)`, { status: 431 }), "retry");
          }
          checkResponse(statusCode, headers, url, this.what, redirect);
          connectedAt = lastByteAt = clock.now();
          this.stats.connections += 1;
          this.setState({ state: "connected" });
          idleTimer = clock.setTimeout(checkIdle, idleTimeoutMs);
        },
        onData: (chunk) => {
          lastByteAt = clock.now();
          this.stats.bytes += chunk.length;
          const events = parser.push(chunk);
          if (parser.retryMs !== undefined && parser.retryMs !== this.serverRetryMs) {
            this.serverRetryMs = parser.retryMs;
            this.backoff = this.newBackoff(parser.retryMs);
          }
          for (let i = 0; i < events.length; i++) this.handle(events[i]);
          this.takeId(parser.lastEventId);
          if (parser.failure) throw parser.failure;
          if (this.backlogChars > this.maxBacklogChars && this.resumeReading === undefined) {
            // The consumer is far behind: stop reading until it has taken half of what waits.
            handle.pause();
            this.resumeReading = () => handle.resume();
          }
        },
      },
    );
    signal.addEventListener("abort", onAbort, { once: true });

    const end = (error: unknown): Attempt | Redirect => {
      clock.clearTimeout(deadline);
      clock.clearTimeout(idleTimer);
      signal.removeEventListener("abort", onAbort);
      this.resumeReading = undefined;
      if (error instanceof Redirect) return error;
      if (error instanceof AttemptError) return { connectedAt, error: this.safeError(error.error), disposition: error.disposition };
      if (error === undefined) {
        return { connectedAt, error: new DatasphereError("NETWORK", `${this.what}: stream ended by the server`), disposition: "retry" };
      }
      const failure = this.safeError(error);
      const retryable = !isDatasphereError(error) || !["AUTH", "NOT_FOUND", "BAD_REQUEST"].includes(failure.code);
      return { connectedAt, error: failure, disposition: retryable ? "retry" : "slow" };
    };
    return handle.done.then(
      () => end(undefined),
      (error: unknown) => end(error),
    );
  }

  private drain(): void {
    if (this.draining || this.maxUntaken === undefined) return;
    this.draining = true;
    try {
      while (this.backlogHead < this.backlog.length && this.untakenCount < this.maxUntaken && !this.controller.signal.aborted) {
        const entry = this.backlog[this.backlogHead];
        this.backlog[this.backlogHead++] = undefined as unknown as SubscriptionItem;
        this.backlogChars -= entry.data.length;
        this.deliver(entry);
      }
      if (this.backlogHead === this.backlog.length) {
        this.backlog.length = 0;
        this.backlogHead = 0;
      } else if (this.backlogHead > 4096 && this.backlogHead * 2 > this.backlog.length) {
        this.backlog.splice(0, this.backlogHead);
        this.backlogHead = 0;
      }
    } finally {
      this.draining = false;
    }
    if (this.resumeReading && this.backlogChars <= this.maxBacklogChars / 2) {
      const resume = this.resumeReading;
      this.resumeReading = undefined;
      resume();
    }
  }

  private get maxBacklogChars(): number {
    return this.options.maxBacklogChars ?? 8 * 1024 * 1024;
  }

  private deliver(entry: SubscriptionItem): void {
    this.stats.items += 1;
    if (this.maxUntaken !== undefined) this.untakenCount += 1;
    try {
      this.options.onItem(entry);
    } catch {
      // the consumer's own errors are its business; the stream goes on
    }
  }

  private handle(event: SseEvent): void {
    this.eventsThisConnection += 1;
    const id = event.id !== undefined && event.id.length <= this.maxIdLength ? copyString(event.id) : undefined;
    if (id !== undefined && !this.seenIds.addIfNew(id)) {
      this.stats.duplicates += 1;
      return;
    }
    let value: unknown;
    const shape = jsonShape(event.data);
    if (shape !== "maybe") {
      this.malformed(event, id, shape);
      return;
    }
    try {
      value = JSON.parse(event.data);
    } catch {
      this.malformed(event, id, "not JSON");
      return;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      this.malformed(event, id, "not a JSON object");
      return;
    }
    const item = value as Record<string, unknown>;
    if (id === undefined) {
      const key = itemVersionKey(item, event.data);
      if (key !== undefined && !this.seenKeys.addIfNew(key)) {
        this.stats.duplicates += 1;
        return;
      }
    }
    const entry: SubscriptionItem = { item, data: event.data, eventId: id };
    if (this.maxUntaken === undefined || (this.backlogHead === this.backlog.length && this.untakenCount < this.maxUntaken)) {
      this.deliver(entry);
      return;
    }
    this.backlog.push(entry);
    this.backlogChars += entry.data.length;
  }

  private malformed(event: SseEvent, id: string | undefined, reason: MalformedEvent["reason"]): void {
    // Named events other than "message" that are not Items (pings, notices) are not errors.
    if (event.type !== "message") return;
    this.stats.malformed += 1;
    const limit = this.options.maxMalformedReports ?? 10;
    if (this.stats.malformed > limit) return;
    try {
      this.options.onMalformed?.({ eventId: id, preview: this.redact(preview(event.data, 200)), reason, last: this.stats.malformed === limit });
    } catch {
      // as above
    }
  }
}

const WHITESPACE = /^[ \t\n\r]*/;
const NOT_OBJECT = /^(?:true|false|null)[ \t\n\r]*$/;

/**
 * What the first character says without parsing (a failed JSON.parse costs ~40 us: a flood of
 * malformed events must not cost that each): "maybe" when JSON.parse has to decide.
 */
function jsonShape(data: string): "maybe" | MalformedEvent["reason"] {
  let first = data.charCodeAt(0);
  let rest = data;
  if (first === 32 || first === 9 || first === 10 || first === 13) {
    rest = data.slice(WHITESPACE.exec(data)![0].length);
    first = rest.charCodeAt(0);
  }
  if (first === 123 /* { */ || first === 91 /* [ */ || first === 34 /* " */ || first === 45 /* - */ || (first >= 48 && first <= 57)) return "maybe";
  if (first === 116 /* t */ || first === 102 /* f */ || first === 110 /* n */) return NOT_OBJECT.test(rest) ? "not a JSON object" : "not JSON";
  return "not JSON";
}

/** A flat copy: a short string sliced from a large chunk would otherwise keep the whole chunk alive. */
function copyString(text: string): string {
  return text.length < 13 ? text : Buffer.from(text, "utf8").toString("utf8");
}
