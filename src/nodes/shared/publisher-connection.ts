import type { Auth } from "../../core/auth";
import type { AuthMode, Endpoints } from "../../core/endpoints";
import { Publisher, PUBLISHER_DEFAULTS } from "../../core/publisher";
import type { NodeAPI } from "./node-red";
import { numberOr } from "./settings";

/**
 * The heartbeat deadline of the publish socket, in ms. The config node owns it; a flow saved before
 * it moved there has it on its publish nodes, so that value (from the node that opens the socket)
 * stays in force until the config node has one of its own.
 */
export function heartbeatTimeoutMs(configured: unknown, legacyFromPublishNode: unknown): number {
  const seconds = numberOr(configured, NaN, 0.05);
  if (Number.isFinite(seconds)) return seconds * 1000;
  return numberOr(legacyFromPublishNode, PUBLISHER_DEFAULTS.heartbeatTimeoutMs / 1000, 0.05) * 1000;
}

/** The config node's publish connection, with its socket-level settings (runtime settings for tests and tuning). */
export function createPublisher(RED: NodeAPI, connection: { endpoints: Endpoints; auth: Auth; authMode: AuthMode; redact(text: string): string }, heartbeatMs: number): Publisher {
  const reconnectMs = numberOr(RED.settings.datasphereReconnectMs, PUBLISHER_DEFAULTS.backoff.initialMs, 1);
  const reconnectMaxMs = numberOr(RED.settings.datasphereReconnectMaxMs, PUBLISHER_DEFAULTS.backoff.maxMs, 1);
  const authRetryMs = numberOr(RED.settings.datasphereAuthRetryMs, PUBLISHER_DEFAULTS.authBackoff.initialMs, 1);
  return new Publisher({
    url: connection.endpoints.publishUrl,
    authMode: connection.authMode,
    auth: connection.auth,
    redact: connection.redact,
    handshakeTimeoutMs: numberOr(RED.settings.datasphereHandshakeTimeoutMs, PUBLISHER_DEFAULTS.handshakeTimeoutMs, 1),
    heartbeatTimeoutMs: heartbeatMs,
    backoff: { ...PUBLISHER_DEFAULTS.backoff, initialMs: reconnectMs, maxMs: Math.max(reconnectMs, reconnectMaxMs) },
    authBackoff: { ...PUBLISHER_DEFAULTS.authBackoff, initialMs: authRetryMs, maxMs: Math.max(authRetryMs, PUBLISHER_DEFAULTS.authBackoff.maxMs) },
  });
}
