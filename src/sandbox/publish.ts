import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket, type RawData } from "ws";
import type { Faults } from "./faults";
import { AUTH_MESSAGES, checkAuthorization } from "./http-util";

/**
 * The publish WebSocket: header or first-message auth, a heartbeat, validation and storage of
 * every message. The server never answers a message.
 */
export interface PublishedRecord {
  activeParent: string;
  provider: string;
  subscribable: boolean;
  data: Record<string, unknown>;
  authMode: "header" | "message";
  connection: number;
  receivedAt: number;
}

export interface RejectedMessage {
  reason: string;
  /** The start of the frame, for diagnostics. */
  excerpt: string;
  connection: number;
  receivedAt: number;
}

export interface PublishOptions {
  token: string;
  organisation: string;
  heartbeatMs: number;
  heartbeat: "ping" | "text";
  authTimeoutMs: number;
  faults: Faults;
  log: (line: string) => void;
  onAccepted: (record: PublishedRecord) => void;
  onRejected: (rejected: RejectedMessage) => void;
}

/** Close codes (RFC 6455 1008 = policy violation) and reasons sent to the client. */
export const PUBLISH_CLOSE = {
  code: 1008,
  authRequired: 'authentication required: first message must be {"Authorization": "Token <token>"}',
  authInvalid: "API token is invalid",
  authTimeout: "authentication timed out",
} as const;

export const PUBLISH_PATH = "/publish/v1/";

function rejectUpgrade(socket: Duplex, status: number, reason: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ detail: reason });
  const lines = [`HTTP/1.1 ${status} ${reason.length < 60 ? reason : "Rejected"}`, "Connection: close", "Content-Type: application/json", `Content-Length: ${Buffer.byteLength(body)}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  socket.end(`${lines.join("\r\n")}\r\n\r\n${body}`);
}

export function validatePublishMessage(value: unknown, organisation: string): Omit<PublishedRecord, "authMode" | "connection" | "receivedAt"> | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "message is not a JSON object";
  const m = value as Record<string, unknown>;
  if (typeof m.active_parent !== "string" || m.active_parent.trim() === "") return "active_parent is required (a non-empty string)";
  if (typeof m.data !== "object" || m.data === null || Array.isArray(m.data)) return "data is required (a STAC object)";
  const data = m.data as Record<string, unknown>;
  if (data.type !== "Feature" && data.type !== "Collection" && data.type !== "Catalog") return 'data.type must be "Feature", "Collection" or "Catalog"';
  if (typeof data.id !== "string" || data.id === "") return "data.id is required";
  if (m.provider !== undefined && typeof m.provider !== "string") return "provider must be a string";
  if (m.subscribable !== undefined && typeof m.subscribable !== "boolean") return "subscribable must be a boolean";
  return {
    activeParent: m.active_parent,
    provider: typeof m.provider === "string" ? m.provider : organisation,
    subscribable: m.subscribable === undefined ? true : m.subscribable,
    data,
  };
}

export class PublishEndpoint {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 });
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #stalled = new Set<Duplex>();
  #connections = 0;
  connectionsOpened = 0;

  constructor(private readonly options: PublishOptions) {}

  get clients(): Set<WebSocket> {
    return this.#wss.clients;
  }

  /** Handles an HTTP upgrade; false when the path is not the publish endpoint. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/publish/v1") return rejectUpgrade(socket, 403, "Forbidden: the publish URL ends with a slash (/publish/v1/)");
    if (path !== PUBLISH_PATH) return rejectUpgrade(socket, 404, "Not Found");
    const faults = this.options.faults;
    const header = req.headers.authorization;
    if (header !== undefined) {
      const verdict = checkAuthorization(header, this.options.token);
      if (verdict !== "ok") return rejectUpgrade(socket, verdict === "missing" ? 401 : 403, verdict === "missing" ? AUTH_MESSAGES.missing : AUTH_MESSAGES.invalid);
    }
    const failure = faults.takeFailure("publish");
    if (failure) {
      const headers: Record<string, string> = failure.retryAfter === undefined ? {} : { "Retry-After": String(failure.retryAfter) };
      return rejectUpgrade(socket, failure.status, "Injected failure", headers);
    }
    const connectionFaults = faults.forConnection("publish");
    if (connectionFaults.stall) {
      // Accept the TCP connection, never complete the handshake.
      faults.injected++;
      this.#stalled.add(socket);
      socket.on("close", () => this.#stalled.delete(socket));
      socket.on("error", () => undefined);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#accept(ws, header !== undefined ? "header" : "message", connectionFaults.silent, connectionFaults.dropAfterEvents);
    });
  }

  #accept(ws: WebSocket, mode: "header" | "message", silent: boolean, dropAfter: number | undefined): void {
    const connection = ++this.#connections;
    this.connectionsOpened++;
    let authenticated = mode === "header";
    let received = 0;
    let heartbeat: NodeJS.Timeout | undefined;
    const startHeartbeat = () => {
      if (silent || this.options.heartbeatMs <= 0) return;
      heartbeat = setInterval(() => {
        if (this.options.heartbeat === "ping") ws.ping("heartbeat");
        else ws.send(JSON.stringify({ heartbeat: new Date().toISOString() }));
      }, this.options.heartbeatMs);
      this.#timers.add(heartbeat);
    };
    let authTimer: NodeJS.Timeout | undefined;
    if (authenticated) startHeartbeat();
    else {
      authTimer = setTimeout(() => ws.close(PUBLISH_CLOSE.code, PUBLISH_CLOSE.authTimeout), this.options.authTimeoutMs);
      this.#timers.add(authTimer);
    }
    ws.on("error", () => undefined);
    ws.on("close", () => {
      if (heartbeat) {
        clearInterval(heartbeat);
        this.#timers.delete(heartbeat);
      }
      if (authTimer) {
        clearTimeout(authTimer);
        this.#timers.delete(authTimer);
      }
    });
    ws.on("message", (raw: RawData, isBinary: boolean) => {
      const text = isBinary ? "" : raw.toString();
      if (!authenticated) {
        if (authTimer) {
          clearTimeout(authTimer);
          this.#timers.delete(authTimer);
        }
        const value = parseJson(text);
        const auth = value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>).Authorization : undefined;
        if (typeof auth !== "string") {
          this.options.log(`publish #${connection}: first message is not an authorization message; closing`);
          ws.close(PUBLISH_CLOSE.code, PUBLISH_CLOSE.authRequired);
          return;
        }
        if (checkAuthorization(auth, this.options.token) !== "ok") {
          this.options.log(`publish #${connection}: invalid token in authorization message; closing`);
          ws.close(PUBLISH_CLOSE.code, PUBLISH_CLOSE.authInvalid);
          return;
        }
        authenticated = true;
        startHeartbeat();
        return;
      }
      received++;
      const value = parseJson(text);
      const checked = value === undefined ? (isBinary ? "binary frame" : "not JSON") : validatePublishMessage(value, this.options.organisation);
      if (typeof checked === "string") {
        // A repeated authorization message after header auth is harmless.
        if (!(value && typeof value === "object" && "Authorization" in (value as object) && Object.keys(value as object).length === 1)) {
          this.options.log(`publish #${connection}: malformed message: ${checked}`);
          this.options.onRejected({ reason: checked, excerpt: text.slice(0, 200), connection, receivedAt: Date.now() });
        }
      } else {
        this.options.onAccepted({ ...checked, authMode: mode, connection, receivedAt: Date.now() });
      }
      if (dropAfter !== undefined && received >= dropAfter) {
        this.options.faults.injected++;
        ws.terminate();
      }
    });
  }

  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const ws of this.#wss.clients) ws.terminate();
    for (const socket of this.#stalled) socket.destroy();
    this.#wss.close();
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
