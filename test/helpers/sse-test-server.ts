import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A small SSE server that tests control: cuts, replays, stalls, silence, error statuses. */
export interface SseTestServerOptions {
  /** JSON texts served as events, in order. */
  items: string[];
  /** Give each event an `id:` (1-based index). Default true. */
  ids?: boolean;
  /** Resume after the `Last-Event-ID` the client sends. Default true; false replays from the start. */
  honourLastEventId?: boolean;
  /** Sends `retry: <ms>` at the start of each connection. */
  retryMs?: number;
  /** Byte offsets of the event body where a connection is cut (each used once, in order). */
  cuts?: number[];
  /** The first `stallConnections` connections go silent (socket open) after this many events. */
  stallAfter?: number;
  stallConnections?: number;
  /** The first N requests never get response headers. */
  neverAnswer?: number;
  /** Statuses answered to the first requests, in order, before serving normally. */
  statuses?: Array<{ status: number; retryAfter?: string; body?: string }>;
  /** When set, requests without `Authorization: Token <token>` get 401 (403 for a wrong token). */
  token?: string;
  /** A comment line every N ms on open streams (heartbeat). */
  commentEveryMs?: number;
  /** End the response after the last event (default: keep it open). */
  endAtLast?: boolean;
  /** Line end used in the framing (default "\n"). */
  eol?: string;
}

export interface SseRequestRecord {
  at: number;
  lastEventId?: string;
  authorization?: string;
  accept?: string;
  url: string;
}

export interface SseTestServer {
  url: string;
  /** Requests seen, in order. */
  requests: SseRequestRecord[];
  /** Response streams currently open (server side). */
  readonly open: number;
  /** Most streams open at the same time. */
  readonly maxOpen: number;
  /** The whole event body (what a client that never drops would receive after the prefix). */
  body: Buffer;
  /** Byte offset where each event starts in `body` (and the total length at the end). */
  offsets: number[];
  close(): Promise<void>;
}

export function sseEventText(index: number, item: string, ids: boolean, eol = "\n"): string {
  return `${ids ? `id: ${index + 1}${eol}` : ""}data: ${item}${eol}${eol}`;
}

export async function startSseTestServer(options: SseTestServerOptions): Promise<SseTestServer> {
  const ids = options.ids ?? true;
  const honour = options.honourLastEventId ?? true;
  const eol = options.eol ?? "\n";
  const parts = options.items.map((item, i) => Buffer.from(sseEventText(i, item, ids, eol)));
  const offsets: number[] = [];
  let total = 0;
  for (const part of parts) {
    offsets.push(total);
    total += part.length;
  }
  offsets.push(total);
  const body = Buffer.concat(parts);
  const cuts = [...(options.cuts ?? [])].sort((a, b) => a - b);
  const requests: SseRequestRecord[] = [];
  const statuses = [...(options.statuses ?? [])];
  let neverAnswer = options.neverAnswer ?? 0;
  let stalls = options.stallAfter !== undefined ? options.stallConnections ?? Infinity : 0;
  let open = 0;
  let maxOpen = 0;

  const serve = (req: IncomingMessage, res: ServerResponse) => {
    const record: SseRequestRecord = {
      at: Date.now(),
      url: req.url ?? "",
      lastEventId: header(req, "last-event-id"),
      authorization: header(req, "authorization"),
      accept: header(req, "accept"),
    };
    requests.push(record);
    if (neverAnswer > 0) {
      neverAnswer -= 1;
      return;
    }
    if (options.token !== undefined && record.authorization !== `Token ${options.token}`) {
      res.writeHead(record.authorization ? 403 : 401, { "content-type": "text/plain" });
      res.end("API token is missing or invalid");
      return;
    }
    const planned = statuses.shift();
    if (planned) {
      res.writeHead(planned.status, planned.retryAfter ? { "retry-after": planned.retryAfter } : {});
      res.end(planned.body ?? "");
      return;
    }
    open += 1;
    maxOpen = Math.max(maxOpen, open);
    res.once("close", () => {
      open -= 1;
      if (heartbeat) clearInterval(heartbeat);
    });
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    if (options.retryMs !== undefined) res.write(`retry: ${options.retryMs}${eol}${eol}`);
    const heartbeat = options.commentEveryMs ? setInterval(() => res.write(`:hb${eol}`), options.commentEveryMs) : undefined;

    let startIndex = 0;
    if (honour && ids && record.lastEventId) {
      const n = Number(record.lastEventId);
      if (Number.isInteger(n) && n >= 0) startIndex = Math.min(n, parts.length);
    }
    const start = offsets[startIndex];
    if (stalls > 0) {
      stalls -= 1;
      res.write(body.subarray(start, offsets[Math.min(startIndex + (options.stallAfter ?? 0), parts.length)]));
      return;
    }
    while (cuts.length > 0 && cuts[0] <= start) cuts.shift();
    const cut = cuts.shift();
    if (cut !== undefined && cut < total) {
      res.write(body.subarray(start, cut), () => res.socket?.destroy());
      return;
    }
    res.write(body.subarray(start));
    if (options.endAtLast) res.end();
  };

  const server: Server = createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    body,
    offsets,
    get open() {
      return open;
    },
    get maxOpen() {
      return maxOpen;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** STAC-like Item JSON texts of about `size` bytes each: ids item-<i>, collection `test`. */
export function makeItems(count: number, size = 600, collection = "test"): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const base = {
      type: "Feature",
      stac_version: "1.0.0",
      id: `item-${i}`,
      collection,
      geometry: null,
      properties: { datetime: "2024-04-19T09:55:49Z", seq: i, pad: "" },
      links: [],
      assets: {},
    };
    const len = JSON.stringify(base).length;
    base.properties.pad = "x".repeat(Math.max(0, size - len));
    out.push(JSON.stringify(base));
  }
  return out;
}

/** A deterministic PRNG for cut points and chunkings: the sandbox's own. */
export { rng as seeded } from "../../src/sandbox/prng";

/** What a scripted server answers to one request. */
export interface ScriptedAnswer {
  status?: number;
  headers?: Record<string, string>;
  /** Written in this many separate writes (one event per write, odd chunking...), in order. */
  writes?: Array<string | Buffer>;
  /** After the writes: "end" the response, "reset" the socket, or keep it "open" (default "end"). */
  then?: "end" | "reset" | "open";
  /** Waited for after the writes, before `then` (e.g. until the client has read every byte). */
  hold?: Promise<unknown>;
}

export interface ScriptedRequest {
  /** 0-based number of the request on this server. */
  n: number;
  url: string;
  /** The raw bytes of the Last-Event-ID header (Node reads header bytes as Latin-1), decoded as UTF-8. */
  lastEventId?: string;
  authorization?: string;
  accept?: string;
  cacheControl?: string;
}

export interface ScriptedServer {
  url: string;
  requests: ScriptedRequest[];
  close(): Promise<void>;
}

/** A server whose every answer the test writes: statuses, headers, chunking, resets. Loopback, port 0. */
export async function startScriptedServer(answer: (request: ScriptedRequest) => ScriptedAnswer | Promise<ScriptedAnswer>): Promise<ScriptedServer> {
  const requests: ScriptedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const raw = header(req, "last-event-id");
    const request: ScriptedRequest = {
      n: requests.length,
      url: req.url ?? "",
      lastEventId: raw === undefined ? undefined : Buffer.from(raw, "latin1").toString("utf8"),
      authorization: header(req, "authorization"),
      accept: header(req, "accept"),
      cacheControl: header(req, "cache-control"),
    };
    requests.push(request);
    void Promise.resolve(answer(request)).then(async (a) => {
      res.writeHead(a.status ?? 200, a.headers ?? { "content-type": "text/event-stream" });
      res.flushHeaders();
      for (const piece of a.writes ?? []) {
        if (res.destroyed) return;
        await new Promise<void>((resolve) => res.write(piece, () => resolve()));
      }
      if (a.hold) await a.hold;
      const then = a.then ?? "end";
      if (then === "end") res.end();
      else if (then === "reset") res.socket?.resetAndDestroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The scripted servers a suite starts: `start` keeps each one, `closeAll` (for afterEach) closes and forgets them. */
export function scriptedServerPool(): { start(answer: (request: ScriptedRequest) => ScriptedAnswer): Promise<ScriptedServer>; closeAll(): Promise<void> } {
  const started: ScriptedServer[] = [];
  return {
    async start(answer) {
      const s = await startScriptedServer(answer);
      started.push(s);
      return s;
    },
    async closeAll() {
      await Promise.all(started.splice(0).map((s) => s.close()));
    },
  };
}
