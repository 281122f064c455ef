import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocket, WebSocketServer } from "ws";

/**
 * A small publish endpoint for tests, on loopback: checks the token (header or first-message auth),
 * records every message, sends heartbeats, and can be stopped gracefully (the client's data is read
 * to the end), killed abruptly, or restarted on the same port. `behaviour` makes it misbehave.
 */
export interface WsTestServerOptions {
  token: string;
  authMode: "header" | "message";
  /** 0 = never send a heartbeat. */
  heartbeatMs?: number;
  /** normal; "no-handshake": accept TCP and never answer the upgrade; "silent": upgrade, then never send a frame. */
  behaviour?: "normal" | "no-handshake" | "silent";
  port?: number;
  path?: string;
}

export interface ReceivedMessage {
  text: string;
  json: any;
}

export class WsTestServer {
  readonly messages: ReceivedMessage[] = [];
  upgrades = 0;
  connections = 0;
  authRejections = 0;
  port = 0;
  private http?: Server;
  private wss?: WebSocketServer;
  private readonly sockets = new Set<Socket>();
  private readonly clients = new Set<WebSocket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Called for each message (after it is recorded). */
  onMessage?: (message: ReceivedMessage) => void;

  constructor(private readonly options: WsTestServerOptions) {}

  get url(): string {
    return `ws://127.0.0.1:${this.port}${this.options.path ?? "/publish/v1/"}`;
  }

  get openClients(): number {
    return this.clients.size;
  }

  async start(): Promise<this> {
    const http = createServer((_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    http.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    http.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      this.upgrades++;
      if (this.options.behaviour === "no-handshake") return;
      if (this.options.authMode === "header" && req.headers.authorization !== `Token ${this.options.token}`) {
        this.authRejections++;
        socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
    });
    this.http = http;
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(this.options.port ?? this.port, "127.0.0.1", () => {
        http.off("error", reject);
        resolve();
      });
    });
    this.port = (http.address() as AddressInfo).port;
    return this;
  }

  private accept(ws: WebSocket): void {
    this.connections++;
    this.clients.add(ws);
    let authed = this.options.authMode === "header";
    let beat: NodeJS.Timeout | undefined;
    if (this.options.behaviour !== "silent" && this.options.heartbeatMs) {
      beat = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('{"heartbeat":true}'), this.options.heartbeatMs);
      this.timers.add(beat);
    }
    ws.on("message", (data, isBinary) => {
      const text = data.toString();
      if (!authed) {
        let ok = false;
        try {
          ok = JSON.parse(text).Authorization === `Token ${this.options.token}` && !isBinary;
        } catch {
          ok = false;
        }
        if (!ok) {
          this.authRejections++;
          ws.close(1008, "invalid token");
          return;
        }
        authed = true;
        return;
      }
      const message = { text, json: JSON.parse(text) };
      this.messages.push(message);
      this.onMessage?.(message);
    });
    ws.on("close", () => {
      this.clients.delete(ws);
      if (beat) {
        clearInterval(beat);
        this.timers.delete(beat);
      }
    });
  }

  /**
   * Stops listening and closes every client with a close frame, then waits for each client's close
   * frame: TCP keeps order, so every byte the client flushed before it is read and recorded.
   */
  async stop(): Promise<void> {
    const closing = [...this.clients].map((ws) => new Promise<void>((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      ws.once("close", () => resolve());
      ws.close(1001, "going away");
    }));
    const listenerClosed = this.closeListener();
    await Promise.all(closing);
    this.destroySockets();
    await listenerClosed;
  }

  /** Abrupt: destroys every socket at once; bytes not yet read are lost. */
  async kill(): Promise<void> {
    for (const ws of this.clients) ws.terminate();
    const listenerClosed = this.closeListener();
    this.destroySockets();
    await listenerClosed;
  }

  async restart(): Promise<void> {
    await this.start();
  }

  private destroySockets(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
  }

  private closeListener(): Promise<void> {
    const http = this.http;
    this.http = undefined;
    this.wss?.close();
    this.wss = undefined;
    if (!http) return Promise.resolve();
    return new Promise((resolve) => http.close(() => resolve()));
  }
}

export async function startWsTestServer(options: WsTestServerOptions): Promise<WsTestServer> {
  return new WsTestServer(options).start();
}
