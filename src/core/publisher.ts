import { EventEmitter } from "node:events";
import type { ClientRequest, IncomingMessage } from "node:http";
import { WebSocket } from "ws";
import type { RequestAuth } from "./auth";
import { Backoff, type BackoffOptions } from "./backoff";
import { systemClock, type Clock, type TimerHandle } from "./clock";
import { seconds } from "./duration";
import type { AuthMode } from "./endpoints";
import { DatasphereError, errorForStatus } from "./errors";
import { EntryState, Outbox, OutboxEntry, type Delivery, type OutboxLimits, type SettleInfo } from "./publisher/outbox";
import { ProofTracker } from "./publisher/proof";
import type { StateReport } from "./state-report";

export type { Delivery, SettleInfo } from "./publisher/outbox";
export { DEFAULT_OUTBOX_LIMITS, type OutboxLimits, type OverflowPolicy } from "./publisher/outbox";
export { preparePublishMessage, type PreparedMessage, type PublishFields } from "./publisher/message";

export type PublisherState = "idle" | "connecting" | "connected" | "backing-off" | "token-rejected" | "closed";

export interface PublisherStatus extends StateReport<PublisherState> {
  /** Messages waiting in the outbox (not yet handed to a socket). */
  outbox: number;
  /** When backing off: when the next attempt is due (epoch ms; `retryInMs` is the delay). */
  retryAt?: number;
}

export interface PublisherOptions {
  url: string;
  authMode: AuthMode;
  /** Header mode: `headersFor(url)` on the upgrade; message mode: `authMessageFor(url)` as the first frame. */
  auth: RequestAuth;
  /** Removes secrets from texts built from server data. */
  redact?: (text: string) => string;
  /** From the start of an attempt until the socket is ready (upgrade, and auth grace in message mode). */
  handshakeTimeoutMs?: number;
  /** Silence (no frame of any kind) longer than this means the socket is dead ("dead after"). */
  heartbeatTimeoutMs?: number;
  /**
   * When nothing was heard from the server for this long, a ping goes out: its pong proves a quiet but
   * healthy server alive (and keeps NAT and proxies from dropping the idle socket). 0: no pings.
   */
  heartbeatIntervalMs?: number;
  /** Message auth: the server gets this long to close the socket on a bad token before messages flow. */
  authGraceMs?: number;
  /** Sending pauses while the socket's bufferedAmount is at or above this many bytes. */
  maxBufferedBytes?: number;
  backoff?: BackoffOptions;
  /** Slower backoff after the token was rejected (no hot loop). */
  authBackoff?: BackoffOptions;
  /** A connection that stayed ready this long resets the backoff when it ends. */
  stableMs?: number;
  /** How often waiting messages are checked for their age limit. */
  sweepMs?: number;
  /** At-least-once: a server frame (other than a pong) this long after a write proves the write arrived. */
  confirmGraceMs?: number;
  /** At-least-once: writing pauses while this many written messages wait for proof. */
  maxUnconfirmed?: number;
  /** Aborting it closes the publisher (as close() does). */
  signal?: AbortSignal;
  /** Every deadline, watchdog, backoff and expiry runs on it (tests pass a FakeClock). */
  clock?: Clock;
}

export const PUBLISHER_DEFAULTS = {
  handshakeTimeoutMs: 10_000,
  heartbeatTimeoutMs: 60_000,
  heartbeatIntervalMs: 0,
  authGraceMs: 1_000,
  maxBufferedBytes: 1 << 20,
  backoff: { initialMs: 1_000, maxMs: 60_000, jitter: 0.5 } as BackoffOptions,
  authBackoff: { initialMs: 30_000, maxMs: 300_000, jitter: 0.2 } as BackoffOptions,
  stableMs: 5_000,
  sweepMs: 500,
  confirmGraceMs: 1_000,
  maxUnconfirmed: 1_000,
};

export const AUTH_CLOSE_CODES = new Set([1008, 4001, 4003, 4401, 4403]);
/** Closes that say "server going away / overloaded / broken", never "bad token". */
const NOT_AUTH_CLOSE_CODES = new Set([1001, 1006, 1011, 1012, 1013, 1014]);
const AUTH_REASON = /token|auth|unauthori[sz]ed|forbidden|credential/i;
const CLOSE_TIMEOUT_MS = 2_000;

interface Connection {
  readonly ws: WebSocket;
  /** What the server has been proven to have read; at-least-once entries wait there for proof. */
  readonly proof: ProofTracker;
  /** close() was asked of this socket (a clean close then proves every write). */
  closeRequested: boolean;
  probeScheduled: boolean;
  ready: boolean;
  dead: boolean;
  authSent: boolean;
  readyAt?: number;
  lastHeard: number;
  /** Send callbacks not yet called. */
  pending: number;
  /** Entries the socket handed back unflushed; they go back to the outbox once the socket is gone. */
  returned: OutboxEntry[];
  httpStatus?: number;
  /** The handshake or heartbeat deadline ended it. */
  timedOut?: boolean;
  reason?: string;
  timers: Set<TimerHandle>;
}

/**
 * One publish WebSocket with a bounded outbox. Messages are handed to the socket only while it is
 * ready and its bufferedAmount is under the bound; every message is settled exactly once, with an
 * error when it cannot be sent (outbox full, expired, publisher closed), else:
 * - at-most-once: when ws reports it flushed to the kernel. Written messages the connection never
 *   proved before it failed are counted in `stats.possiblyLost`.
 * - at-least-once: when the server is proven to have read past it (the pong of a ping sent after it,
 *   another server frame `confirmGraceMs` after it, or a clean close). Unproven messages of a failed
 *   connection are sent again first on the next one, in order, and reported as possible duplicates.
 * Unflushed messages of a socket that died go back to the front of the outbox.
 */
export class Publisher extends EventEmitter {
  private readonly opts: Required<Omit<PublisherOptions, "redact" | "signal" | "clock">> & Pick<PublisherOptions, "redact">;
  private readonly outbox = new Outbox();
  private readonly backoff: Backoff;
  private readonly authBackoff: Backoff;
  private conn?: Connection;
  private started = false;
  private manualDisconnect = false;
  private closed = false;
  private pumping = false;
  /** Send callbacks outstanding over all sockets. */
  private pendingTotal = 0;
  private retryTimer?: TimerHandle;
  private sweepTimer?: TimerHandle;
  private readonly clock: Clock;
  private closing?: Promise<void>;
  private readonly idleWaiters: Array<() => void> = [];
  private current: PublisherStatus = { state: "idle", outbox: 0 };

  /** Counters for tests and benchmarks. */
  readonly stats = {
    attempts: 0,
    opened: 0,
    flushed: 0,
    failed: 0,
    returned: 0,
    tokenRejected: 0,
    heartbeatTimeouts: 0,
    /** Pings sent because the server was quiet for the heartbeat interval. */
    heartbeatPings: 0,
    handshakeTimeouts: 0,
    /** At-least-once messages proven read by the server. */
    confirmed: 0,
    /** At-least-once messages written again after their connection failed unproven (possible duplicates). */
    resent: 0,
    /** At-most-once messages written (done) on a connection that failed before proving it had read them. */
    possiblyLost: 0,
  };

  constructor(options: PublisherOptions) {
    super();
    this.opts = { ...PUBLISHER_DEFAULTS, ...options } as Publisher["opts"];
    this.clock = options.clock ?? systemClock;
    this.backoff = new Backoff(this.opts.backoff);
    this.authBackoff = new Backoff(this.opts.authBackoff);
    const signal = options.signal;
    if (signal) {
      const onAbort = () => void this.close();
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener("abort", onAbort, { once: true });
        this.once("closed", () => signal.removeEventListener("abort", onAbort));
      }
    }
  }

  get status(): PublisherStatus {
    return { ...this.current, outbox: this.outbox.size };
  }

  /** Why the last socket ended (no secrets); kept after a reconnect. */
  get lastReason(): string | undefined {
    return this.lastCloseReason;
  }

  private lastCloseReason?: string;

  get outboxSize(): number {
    return this.outbox.size;
  }

  /** Starts connecting (once); later calls do nothing. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    if (!this.manualDisconnect) this.openSocket();
  }

  /**
   * Queues one serialised message. `settle` is called exactly once: `settle(undefined, info)` when
   * delivered as `delivery` means it, `settle(err)` when it cannot be sent.
   */
  publish(data: Buffer, owner: object, limits: OutboxLimits, settle: (err?: DatasphereError, info?: SettleInfo) => void, delivery: Delivery = "at-most-once"): void {
    const expiresAt = limits.maxAgeMs > 0 ? this.clock.now() + limits.maxAgeMs : Number.POSITIVE_INFINITY;
    const entry = new OutboxEntry(data, owner, expiresAt, delivery, (err, info) => {
      if (err) this.stats.failed++;
      settle(err, info);
    });
    if (this.closed) {
      entry.settle(closedError());
      return;
    }
    const conn = this.conn;
    if (conn && conn.ready && this.outbox.size === 0 && this.canWrite(conn, data.length)) {
      this.send(conn, entry);
      return;
    }
    this.outbox.add(entry, limits);
    this.armSweep();
    this.pump();
  }

  /** Fails the waiting messages of one owner (a node that is leaving). */
  dropOwner(owner: object): number {
    return this.outbox.failAll(new DatasphereError("CLOSED", "the publish node was closed before this message could be sent"), owner);
  }

  /** `msg.action = "connect"`: connect now, forgetting any backoff (also after a rejected token). */
  connect(): void {
    if (this.closed) return;
    this.manualDisconnect = false;
    this.started = true;
    this.backoff.reset();
    this.authBackoff.reset();
    if (this.conn && !this.conn.dead) return;
    this.openSocket();
  }

  /** `msg.action = "disconnect"`: close the socket and stay idle; waiting messages stay (and age out). */
  async disconnect(): Promise<void> {
    if (this.closed) return;
    this.manualDisconnect = true;
    this.clearRetry();
    await this.closeSocket("disconnect requested");
    if (!this.closed && this.manualDisconnect) this.setState({ state: "idle", outbox: 0 });
  }

  /** Closes for good: waiting messages fail with CLOSED, the socket closes, the promise waits for it. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.clearRetry();
    this.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    this.outbox.failAll(closedError());
    this.closing = this.closeSocket("publisher closed").then(() => {
      this.setState({ state: "closed", outbox: 0 });
      this.emit("closed");
    });
    return this.closing;
  }

  // ---- connection lifecycle ----

  private openSocket(): void {
    this.clearRetry();
    if (this.closed || this.manualDisconnect) return;
    const { url, authMode, auth } = this.opts;
    const headers = authMode === "header" ? auth.headersFor(url) : {};
    this.stats.attempts++;
    // The handshake deadline is our own timer (on the clock), not ws's handshakeTimeout.
    const ws = new WebSocket(url, {
      headers,
      perMessageDeflate: false,
      followRedirects: false,
      maxPayload: 1 << 20,
    });
    const conn: Connection = {
      ws,
      proof: new ProofTracker(this.opts.confirmGraceMs),
      closeRequested: false,
      probeScheduled: false,
      ready: false,
      dead: false,
      authSent: false,
      lastHeard: this.clock.now(),
      pending: 0,
      returned: [],
      timers: new Set(),
    };
    this.conn = conn;
    this.setState({ state: "connecting", outbox: 0, error: this.current.error, attempt: this.current.attempt });
    this.timer(conn, this.opts.handshakeTimeoutMs, () => {
      if (conn.ready || conn.dead) return;
      this.stats.handshakeTimeouts++;
      conn.timedOut = true;
      conn.reason = `no handshake within ${seconds(this.opts.handshakeTimeoutMs)} s`;
      ws.terminate();
    });
    const heard = () => {
      conn.lastHeard = this.clock.now();
      this.confirm(conn, conn.proof.heard(conn.lastHeard));
    };
    ws.on("message", heard);
    ws.on("ping", heard);
    ws.on("pong", () => {
      conn.lastHeard = this.clock.now();
      this.confirm(conn, conn.proof.pong());
      this.probe(conn);
      this.pump();
    });
    ws.on("open", () => this.onOpen(conn));
    ws.on("unexpected-response", (_req: ClientRequest, res: IncomingMessage) => {
      conn.httpStatus = res.statusCode;
      conn.reason ??= `HTTP ${res.statusCode} on upgrade`;
      ws.terminate(); // with this listener, ending the handshake is ours to do
    });
    ws.on("error", (err: Error) => {
      conn.reason ??= this.clean(err.message);
    });
    ws.on("close", (code: number, reason: Buffer) => this.onClose(conn, code, reason.toString("utf8")));
  }

  private onOpen(conn: Connection): void {
    this.stats.opened++;
    conn.lastHeard = this.clock.now();
    this.watch(conn, this.opts.heartbeatTimeoutMs);
    if (this.opts.authMode === "message") {
      const message = this.opts.auth.authMessageFor?.(this.opts.url);
      if (message !== undefined) {
        conn.ws.send(message);
        conn.authSent = true;
      }
      this.timer(conn, this.opts.authGraceMs, () => this.markReady(conn));
    } else {
      this.markReady(conn);
    }
  }

  private markReady(conn: Connection): void {
    if (conn.dead || conn.ready || conn.ws.readyState !== WebSocket.OPEN) return;
    conn.ready = true;
    conn.readyAt = this.clock.now();
    this.authBackoff.reset();
    if (this.opts.heartbeatIntervalMs > 0) this.keepAlive(conn, this.opts.heartbeatIntervalMs);
    this.setState({ state: "connected", outbox: 0 });
    this.pump();
  }

  /** A ping when the server was quiet for the heartbeat interval (and none is out); its pong counts as heard. */
  private keepAlive(conn: Connection, delay: number): void {
    this.timer(conn, delay, () => {
      if (conn.dead) return;
      const interval = this.opts.heartbeatIntervalMs;
      const quiet = this.clock.now() - conn.lastHeard;
      if (quiet < interval) return this.keepAlive(conn, interval - quiet);
      if (conn.proof.pingSentAt === undefined && conn.ws.readyState === WebSocket.OPEN) {
        this.stats.heartbeatPings++;
        conn.proof.pingSent(this.clock.now());
        conn.ws.ping();
      }
      this.keepAlive(conn, interval);
    });
  }

  /**
   * Any inbound frame is a heartbeat; silence past the limit terminates the socket, and so does a
   * ping left unanswered that long (a server that talks but no longer reads).
   */
  private watch(conn: Connection, delay: number): void {
    this.timer(conn, delay, () => {
      if (conn.dead) return;
      const now = this.clock.now();
      const pingAge = conn.proof.pingSentAt === undefined ? 0 : now - conn.proof.pingSentAt;
      const silent = Math.max(now - conn.lastHeard, pingAge);
      if (silent >= this.opts.heartbeatTimeoutMs) {
        this.stats.heartbeatTimeouts++;
        conn.timedOut = true;
        conn.reason = `no heartbeat for ${seconds(silent)} s`;
        conn.ws.terminate();
      } else {
        this.watch(conn, this.opts.heartbeatTimeoutMs - silent);
      }
    });
  }

  private onClose(conn: Connection, code: number, reasonText: string): void {
    conn.dead = true;
    for (const t of conn.timers) this.clock.clearTimeout(t);
    conn.timers.clear();
    // A close frame both ways after our own close: the server read everything written before it.
    if (code !== 1006 && conn.closeRequested) this.confirm(conn, conn.proof.all());
    else this.unproven(conn);
    if (this.conn === conn) this.conn = undefined;
    const reason = reasonText ? this.clean(reasonText) : undefined;
    const tokenRejected =
      conn.httpStatus === 401 ||
      conn.httpStatus === 403 ||
      AUTH_CLOSE_CODES.has(code) ||
      (reason !== undefined && AUTH_REASON.test(reason)) ||
      (conn.authSent && !conn.ready && !NOT_AUTH_CLOSE_CODES.has(code));
    if (!conn.reason) conn.reason = reason ? `closed by server (${code}: ${reason})` : `closed (${code})`;
    this.lastCloseReason = conn.reason;
    if (conn.pending === 0) this.returnUnflushed(conn);
    this.notifyIdle();
    if (this.closed || this.manualDisconnect) return;
    const now = this.clock.now();
    if (conn.readyAt !== undefined && now - conn.readyAt >= this.opts.stableMs) this.backoff.reset();
    if (tokenRejected) {
      this.stats.tokenRejected++;
      const delay = this.authBackoff.next();
      const error = new DatasphereError("AUTH", conn.reason, { status: conn.httpStatus });
      this.setState({ state: "token-rejected", outbox: 0, retryInMs: delay, retryAt: now + delay, error, attempt: this.authBackoff.attempts });
      this.retryTimer = this.clock.setTimeout(() => this.openSocket(), delay);
    } else {
      const delay = this.backoff.next();
      const code = conn.httpStatus !== undefined ? errorForStatus(conn.httpStatus, "").code : conn.timedOut ? "TIMEOUT" : "NETWORK";
      const error = new DatasphereError(code, conn.reason, { status: conn.httpStatus });
      this.setState({ state: "backing-off", outbox: 0, retryInMs: delay, retryAt: now + delay, error, attempt: this.backoff.attempts });
      this.retryTimer = this.clock.setTimeout(() => this.openSocket(), delay);
    }
  }

  /** Closes the current socket gracefully (data already handed to it is flushed first); waits for it. */
  private async closeSocket(reason: string): Promise<void> {
    const conn = this.conn;
    if (!conn || conn.dead) return this.waitIdle();
    conn.closeRequested = true;
    if (conn.ws.readyState === WebSocket.CONNECTING) conn.ws.terminate();
    else conn.ws.close(1000, reason);
    const force = this.clock.setTimeout(() => conn.ws.terminate(), CLOSE_TIMEOUT_MS);
    try {
      await this.waitIdle();
    } finally {
      this.clock.clearTimeout(force);
    }
  }

  /** Resolves when no socket is open and no send callback is outstanding. */
  private waitIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    const conn = this.conn;
    return (!conn || conn.dead) && this.pendingTotal === 0;
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  // ---- sending ----

  private canWrite(conn: Connection, bytes: number): boolean {
    if (conn.proof.waiting >= this.opts.maxUnconfirmed) return false;
    const buffered = conn.ws.bufferedAmount;
    return buffered === 0 || buffered + bytes <= this.opts.maxBufferedBytes;
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      const now = this.clock.now();
      for (;;) {
        const conn = this.conn;
        if (!conn || !conn.ready || conn.ws.readyState !== WebSocket.OPEN) return;
        const next = this.outbox.peek();
        if (!next || !this.canWrite(conn, next.data.length)) return;
        const entry = this.outbox.take() as OutboxEntry;
        if (now >= entry.expiresAt) {
          entry.settle(expiredError());
          continue;
        }
        this.send(conn, entry);
      }
    } finally {
      this.pumping = false;
    }
  }

  private send(conn: Connection, entry: OutboxEntry): void {
    entry.state = EntryState.Inflight;
    conn.pending++;
    this.pendingTotal++;
    conn.ws.send(entry.data, { binary: false }, (err?: Error) => this.onSent(conn, entry, err));
  }

  private onSent(conn: Connection, entry: OutboxEntry, err?: Error): void {
    conn.pending--;
    this.pendingTotal--;
    if (!err && conn.dead) {
      // Flushed after the socket died: nothing can prove it arrived.
      this.stats.flushed++;
      if (entry.delivery === "at-least-once") {
        entry.resends++;
        this.stats.resent++;
        conn.returned.push(entry);
      } else {
        this.stats.possiblyLost++;
        entry.settle(undefined, { possibleDuplicate: entry.resends > 0 });
      }
    } else if (!err) {
      this.stats.flushed++;
      if (entry.delivery === "at-least-once") conn.proof.written(entry, this.clock.now());
      else {
        conn.proof.written(undefined, this.clock.now());
        entry.settle(undefined, { possibleDuplicate: entry.resends > 0 });
      }
      if (!conn.dead) this.probeSoon(conn);
    } else {
      conn.returned.push(entry);
    }
    if (conn.dead) {
      if (conn.pending === 0) this.returnUnflushed(conn);
      this.notifyIdle();
    } else if (!err && this.outbox.size > 0) {
      this.pump();
    }
  }

  /** One probe for all the flush callbacks of this turn of the event loop. */
  private probeSoon(conn: Connection): void {
    if (conn.probeScheduled) return;
    conn.probeScheduled = true;
    setImmediate(() => {
      conn.probeScheduled = false;
      this.probe(conn);
    });
  }

  /** Sends a ping when writes wait for proof and none is out: its pong proves them read. */
  private probe(conn: Connection): void {
    if (conn.dead || !conn.ready || conn.ws.readyState !== WebSocket.OPEN || !conn.proof.wantsPing()) return;
    conn.proof.pingSent(this.clock.now());
    conn.ws.ping();
  }

  private confirm(conn: Connection, proven: OutboxEntry[]): void {
    for (const entry of proven) {
      this.stats.confirmed++;
      entry.settle(undefined, { possibleDuplicate: entry.resends > 0 });
    }
    if (proven.length > 0 && !conn.dead) this.pump();
  }

  /** A connection failed: unproven at-least-once entries go back before the unflushed ones; the rest are counted. */
  private unproven(conn: Connection): void {
    const { entries, others } = conn.proof.fail();
    this.stats.possiblyLost += others;
    if (entries.length === 0) return;
    for (const entry of entries) entry.resends++;
    this.stats.resent += entries.length;
    conn.returned.unshift(...entries);
  }

  /** Messages a dead socket never flushed: back to the outbox front (or failed, when closing). */
  private returnUnflushed(conn: Connection): void {
    if (conn.returned.length === 0) return;
    const returned = conn.returned.splice(0);
    this.stats.returned += returned.length;
    if (this.closed) {
      for (const entry of returned) entry.settle(closedError());
      return;
    }
    this.outbox.returnToFront(returned);
    this.armSweep();
    this.pump();
  }

  // ---- timers and state ----

  private armSweep(): void {
    if (this.sweepTimer || this.closed) return;
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweepTimer = undefined;
      this.outbox.expire(this.clock.now(), expiredError);
      if (this.outbox.size > 0) this.armSweep();
    }, this.opts.sweepMs);
  }

  private timer(conn: Connection, ms: number, fn: () => void): void {
    const t = this.clock.setTimeout(() => {
      conn.timers.delete(t);
      fn();
    }, ms);
    conn.timers.add(t);
  }

  private clearRetry(): void {
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private setState(next: PublisherStatus): void {
    const prev = this.current;
    this.current = next;
    if (prev.state === next.state && prev.retryInMs === next.retryInMs && prev.error === next.error) return;
    this.emit("state", this.status);
  }

  private clean(text: string): string {
    return this.opts.redact ? this.opts.redact(text) : text;
  }
}

function closedError(): DatasphereError {
  return new DatasphereError("CLOSED", "the publisher was closed before this message could be sent");
}

function expiredError(): DatasphereError {
  return new DatasphereError("EXPIRED", "the message waited in the outbox longer than its age limit and was not published");
}
