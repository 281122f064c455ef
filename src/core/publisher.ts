import { EventEmitter } from "node:events";
import { WebSocket } from "ws";
import { Backoff, type BackoffOptions } from "./backoff";
import type { AuthMode } from "./endpoints";
import { DatasphereError } from "./errors";
import { EntryState, Outbox, OutboxEntry, type OutboxLimits } from "./publisher/outbox";

export { DEFAULT_OUTBOX_LIMITS, type OutboxLimits, type OverflowPolicy } from "./publisher/outbox";
export { preparePublishMessage, type PreparedMessage, type PublishFields } from "./publisher/message";

export type PublisherState = "idle" | "connecting" | "connected" | "backing-off" | "token-rejected" | "closed";

export interface PublisherStatus {
  state: PublisherState;
  /** Messages waiting in the outbox (not yet handed to a socket). */
  outbox: number;
  /** When backing off: the delay before the next attempt, and when it is due (epoch ms). */
  retryInMs?: number;
  retryAt?: number;
  /** Why the last connection ended or failed (no secrets). */
  reason?: string;
}

export interface PublisherAuth {
  headersFor(url: string): Record<string, string>;
  authMessage(): string;
}

export interface PublisherOptions {
  url: string;
  authMode: AuthMode;
  auth: PublisherAuth;
  /** Removes secrets from texts built from server data. */
  redact?: (text: string) => string;
  /** From the start of an attempt until the socket is ready (upgrade, and auth grace in message mode). */
  handshakeTimeoutMs?: number;
  /** Silence (no frame of any kind) longer than this means the socket is dead. */
  heartbeatTimeoutMs?: number;
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
  /** Aborting it closes the publisher (as close() does). */
  signal?: AbortSignal;
}

export const PUBLISHER_DEFAULTS = {
  handshakeTimeoutMs: 10_000,
  heartbeatTimeoutMs: 60_000,
  authGraceMs: 1_000,
  maxBufferedBytes: 1 << 20,
  backoff: { initialMs: 1_000, maxMs: 60_000, jitter: 0.5 } as BackoffOptions,
  authBackoff: { initialMs: 30_000, maxMs: 300_000, jitter: 0.2 } as BackoffOptions,
  stableMs: 5_000,
  sweepMs: 500,
};

export const AUTH_CLOSE_CODES = new Set([1008, 4001, 4003, 4401, 4403]);
/** Closes that say "server going away / overloaded / broken", never "bad token". */
const NOT_AUTH_CLOSE_CODES = new Set([1001, 1006, 1011, 1012, 1013, 1014]);
const AUTH_REASON = /token|auth|unauthori[sz]ed|forbidden|credential/i;
const CLOSE_TIMEOUT_MS = 2_000;

interface Connection {
  readonly ws: WebSocket;
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
  reason?: string;
  timers: Set<NodeJS.Timeout>;
}

/**
 * One publish WebSocket with a bounded outbox. Messages are handed to the socket only while it is
 * ready and its bufferedAmount is under the bound; every message is settled exactly once: without
 * an error when ws reports it flushed, with an error when it cannot be sent (outbox full, expired,
 * publisher closed). Unflushed messages of a socket that died go back to the front of the outbox.
 */
export class Publisher extends EventEmitter {
  private readonly opts: Required<Omit<PublisherOptions, "redact" | "signal">> & Pick<PublisherOptions, "redact">;
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
  private retryTimer?: NodeJS.Timeout;
  private sweepTimer?: NodeJS.Timeout;
  private closing?: Promise<void>;
  private readonly idleWaiters: Array<() => void> = [];
  private current: PublisherStatus = { state: "idle", outbox: 0 };

  /** Counters for tests and benchmarks. */
  readonly stats = { attempts: 0, opened: 0, flushed: 0, failed: 0, returned: 0, tokenRejected: 0, heartbeatTimeouts: 0, handshakeTimeouts: 0 };

  constructor(options: PublisherOptions) {
    super();
    this.opts = { ...PUBLISHER_DEFAULTS, ...options } as Publisher["opts"];
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
   * Queues one serialised message. `settle` is called exactly once: `settle()` when flushed to the
   * socket, `settle(err)` when it cannot be sent.
   */
  publish(data: Buffer, owner: object, limits: OutboxLimits, settle: (err?: DatasphereError) => void): void {
    const entry = new OutboxEntry(data, owner, limits.maxAgeMs > 0 ? Date.now() + limits.maxAgeMs : Number.POSITIVE_INFINITY, (err) => {
      if (err) this.stats.failed++;
      settle(err);
    });
    if (this.closed) {
      entry.settle(closedError());
      return;
    }
    const conn = this.conn;
    if (conn && conn.ready && this.outbox.size === 0 && this.hasRoom(conn, data.length)) {
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
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
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
    const ws = new WebSocket(url, {
      headers,
      handshakeTimeout: this.opts.handshakeTimeoutMs,
      perMessageDeflate: false,
      followRedirects: false,
      maxPayload: 1 << 20,
    });
    const conn: Connection = { ws, ready: false, dead: false, authSent: false, lastHeard: Date.now(), pending: 0, returned: [], timers: new Set() };
    this.conn = conn;
    this.setState({ state: "connecting", outbox: 0, reason: this.current.reason });
    this.timer(conn, this.opts.handshakeTimeoutMs, () => {
      if (conn.ready || conn.dead) return;
      this.stats.handshakeTimeouts++;
      conn.reason = `no handshake within ${seconds(this.opts.handshakeTimeoutMs)}`;
      ws.terminate();
    });
    const heard = () => {
      conn.lastHeard = Date.now();
    };
    ws.on("message", heard);
    ws.on("ping", heard);
    ws.on("pong", heard);
    ws.on("open", () => this.onOpen(conn));
    ws.on("error", (err: Error) => {
      const status = /Unexpected server response: (\d+)/.exec(err.message);
      if (status) conn.httpStatus = Number(status[1]);
      conn.reason ??= this.clean(status ? `HTTP ${status[1]} on upgrade` : err.message);
    });
    ws.on("close", (code: number, reason: Buffer) => this.onClose(conn, code, reason.toString("utf8")));
  }

  private onOpen(conn: Connection): void {
    this.stats.opened++;
    conn.lastHeard = Date.now();
    this.watch(conn, this.opts.heartbeatTimeoutMs);
    if (this.opts.authMode === "message") {
      conn.ws.send(this.opts.auth.authMessage());
      conn.authSent = true;
      this.timer(conn, this.opts.authGraceMs, () => this.markReady(conn));
    } else {
      this.markReady(conn);
    }
  }

  private markReady(conn: Connection): void {
    if (conn.dead || conn.ready || conn.ws.readyState !== WebSocket.OPEN) return;
    conn.ready = true;
    conn.readyAt = Date.now();
    this.authBackoff.reset();
    this.setState({ state: "connected", outbox: 0 });
    this.pump();
  }

  /** Any inbound frame is a heartbeat; silence past the limit terminates the socket. */
  private watch(conn: Connection, delay: number): void {
    this.timer(conn, delay, () => {
      if (conn.dead) return;
      const silent = Date.now() - conn.lastHeard;
      if (silent >= this.opts.heartbeatTimeoutMs) {
        this.stats.heartbeatTimeouts++;
        conn.reason = `no heartbeat for ${seconds(silent)}`;
        conn.ws.terminate();
      } else {
        this.watch(conn, this.opts.heartbeatTimeoutMs - silent);
      }
    });
  }

  private onClose(conn: Connection, code: number, reasonText: string): void {
    conn.dead = true;
    for (const t of conn.timers) clearTimeout(t);
    conn.timers.clear();
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
    if (conn.readyAt !== undefined && Date.now() - conn.readyAt >= this.opts.stableMs) this.backoff.reset();
    if (tokenRejected) {
      this.stats.tokenRejected++;
      const delay = this.authBackoff.next();
      this.setState({ state: "token-rejected", outbox: 0, retryInMs: delay, retryAt: Date.now() + delay, reason: conn.reason });
      this.retryTimer = setTimeout(() => this.openSocket(), delay);
    } else {
      const delay = this.backoff.next();
      this.setState({ state: "backing-off", outbox: 0, retryInMs: delay, retryAt: Date.now() + delay, reason: conn.reason });
      this.retryTimer = setTimeout(() => this.openSocket(), delay);
    }
  }

  /** Closes the current socket gracefully (data already handed to it is flushed first); waits for it. */
  private async closeSocket(reason: string): Promise<void> {
    const conn = this.conn;
    if (!conn || conn.dead) return this.waitIdle();
    if (conn.ws.readyState === WebSocket.CONNECTING) conn.ws.terminate();
    else conn.ws.close(1000, reason);
    const force = setTimeout(() => conn.ws.terminate(), CLOSE_TIMEOUT_MS);
    try {
      await this.waitIdle();
    } finally {
      clearTimeout(force);
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

  private hasRoom(conn: Connection, bytes: number): boolean {
    const buffered = conn.ws.bufferedAmount;
    return buffered === 0 || buffered + bytes <= this.opts.maxBufferedBytes;
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      const now = Date.now();
      for (;;) {
        const conn = this.conn;
        if (!conn || !conn.ready || conn.ws.readyState !== WebSocket.OPEN) return;
        const next = this.outbox.peek();
        if (!next || !this.hasRoom(conn, next.data.length)) return;
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
    if (!err) {
      this.stats.flushed++;
      entry.settle();
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
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      this.outbox.expire(Date.now(), expiredError);
      if (this.outbox.size > 0) this.armSweep();
    }, this.opts.sweepMs);
  }

  private timer(conn: Connection, ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      conn.timers.delete(t);
      fn();
    }, ms);
    conn.timers.add(t);
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private setState(next: PublisherStatus): void {
    const prev = this.current;
    this.current = next;
    if (prev.state === next.state && prev.retryInMs === next.retryInMs && prev.reason === next.reason) return;
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

function seconds(ms: number): string {
  return ms >= 10_000 ? `${Math.round(ms / 1000)} s` : `${(ms / 1000).toFixed(1)} s`;
}
