import type { RequestAuth } from "../../core/auth";
import type { AuthMode } from "../../core/endpoints";
import { Publisher, PUBLISHER_DEFAULTS, type PublisherStatus } from "../../core/publisher";
import { SharedResource, type Lease } from "../../core/shared-resource";
import type { NodeAPI } from "./node-red";
import { numberOr } from "./settings";

/** Default of the config node's publish heartbeat: a ping after this many seconds without a frame from the server. */
export const DEFAULT_HEARTBEAT_S = 25;
/** Default of the config node's dead-after: the publish socket is replaced after this many seconds of silence. */
export const DEFAULT_DEAD_AFTER_S = PUBLISHER_DEFAULTS.heartbeatTimeoutMs / 1000;
const MIN_DEAD_AFTER_S = 0.05;

/** The config node's socket-level publish settings, in ms, with what was wrong with the configured values. */
export interface PublishSocketSettings {
  heartbeatMs: number;
  /** Undefined: not set on the config node (the publish node that opens the socket may have a legacy value). */
  deadAfterMs?: number;
  problems: string[];
}

/**
 * Reads the two settings (already `${VAR}`-expanded). Empty means the default; anything else that is
 * not a number in range is a problem named by the caller, and the default applies.
 */
export function publishSocketSettings(heartbeat: string, deadAfter: string): PublishSocketSettings {
  const problems: string[] = [];
  const read = (name: string, text: string, min: number, fallback: number | undefined): number | undefined => {
    if (text.trim() === "") return fallback;
    const value = numberOr(text, NaN, min);
    if (Number.isFinite(value)) return value * 1000;
    problems.push(`${name} "${text.slice(0, 40)}" is not a number of seconds (at least ${min})`);
    return fallback;
  };
  const heartbeatMs = read("heartbeat", heartbeat, 0, DEFAULT_HEARTBEAT_S * 1000) as number;
  const deadAfterMs = read("dead after", deadAfter, MIN_DEAD_AFTER_S, undefined);
  if (heartbeatMs > 0 && heartbeatMs >= (deadAfterMs ?? DEFAULT_DEAD_AFTER_S * 1000)) problems.push("the heartbeat should be shorter than dead after, or its pings come too late to keep a quiet socket alive");
  return { heartbeatMs, deadAfterMs, problems };
}

/**
 * Dead-after in ms: the config node's value; for flows saved before it moved there, the value of the
 * publish node that opens the socket; else the default.
 */
export function deadAfterMs(configured: number | undefined, legacyFromPublishNode: unknown): number {
  if (configured !== undefined) return configured;
  return numberOr(legacyFromPublishNode, DEFAULT_DEAD_AFTER_S, MIN_DEAD_AFTER_S) * 1000;
}

export interface PublishConnectionOptions {
  url: string;
  auth: RequestAuth;
  authMode: AuthMode;
  redact(text: string): string;
  socket: PublishSocketSettings;
}

/** A publisher on the config node's settings (runtime settings for tests and tuning). */
export function createPublisher(RED: NodeAPI, options: PublishConnectionOptions, legacyDeadAfter: unknown): Publisher {
  const reconnectMs = numberOr(RED.settings.datasphereReconnectMs, PUBLISHER_DEFAULTS.backoff.initialMs, 1);
  const reconnectMaxMs = numberOr(RED.settings.datasphereReconnectMaxMs, PUBLISHER_DEFAULTS.backoff.maxMs, 1);
  const authRetryMs = numberOr(RED.settings.datasphereAuthRetryMs, PUBLISHER_DEFAULTS.authBackoff.initialMs, 1);
  return new Publisher({
    url: options.url,
    authMode: options.authMode,
    auth: options.auth,
    redact: options.redact,
    handshakeTimeoutMs: numberOr(RED.settings.datasphereHandshakeTimeoutMs, PUBLISHER_DEFAULTS.handshakeTimeoutMs, 1),
    heartbeatTimeoutMs: deadAfterMs(options.socket.deadAfterMs, legacyDeadAfter),
    heartbeatIntervalMs: options.socket.heartbeatMs,
    backoff: { ...PUBLISHER_DEFAULTS.backoff, initialMs: reconnectMs, maxMs: Math.max(reconnectMs, reconnectMaxMs) },
    authBackoff: { ...PUBLISHER_DEFAULTS.authBackoff, initialMs: authRetryMs, maxMs: Math.max(authRetryMs, PUBLISHER_DEFAULTS.authBackoff.maxMs) },
  });
}

/**
 * The config node's publish connection: one Publisher shared by its publish nodes (created with the
 * first lease, closed after the last is released). The config node listens to its state, once, and
 * hands every change to `onStatus`; a publisher being torn down reports nothing more.
 */
export class PublishConnection {
  readonly #shared: SharedResource<Publisher>;
  #current?: Publisher;
  #legacyDeadAfter: unknown;

  constructor(
    private readonly open: (legacyDeadAfter: unknown) => Publisher,
    private readonly onStatus: (status: PublisherStatus) => void,
  ) {
    this.#shared = new SharedResource(() => this.#create());
  }

  /** The open publisher: undefined before the first lease and once the last one is released. */
  get publisher(): Publisher | undefined {
    return this.#current;
  }

  /** Leases held (publish nodes attached to the socket). */
  get userCount(): number {
    return this.#shared.userCount;
  }

  /** `legacyDeadAfter`: a publish node's own dead-after, from flows saved before the config node had one. */
  async acquire(user: object, legacyDeadAfter?: unknown): Promise<Lease<Publisher>> {
    if (legacyDeadAfter !== undefined && legacyDeadAfter !== "") this.#legacyDeadAfter ??= legacyDeadAfter;
    const lease = await this.#shared.acquire(user);
    return {
      resource: lease.resource,
      release: () => {
        const released = lease.release();
        if (this.#shared.userCount === 0 && this.#current === lease.resource) this.#current = undefined;
        return released;
      },
    };
  }

  #create(): Publisher {
    const publisher = this.open(this.#legacyDeadAfter);
    const onState = (status: PublisherStatus) => {
      if (publisher === this.#current) this.onStatus(status);
    };
    publisher.on("state", onState);
    publisher.once("closed", () => publisher.off("state", onState));
    this.#current = publisher;
    return publisher;
  }
}
