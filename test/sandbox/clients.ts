import { request, type Dispatcher } from "undici";
import WebSocket from "ws";

/** Plain test clients for the sandbox: a minimal SSE reader over undici, and ws helpers. */
export interface SseEvent {
  id?: string;
  data: string;
}

export class SseReader {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  retry?: number;
  statusCode = 0;
  headers: Record<string, string | string[] | undefined> = {};
  ended = false;
  error?: Error;
  bytes = 0;
  readonly #abort = new AbortController();
  #buffer = "";
  #current: { id?: string; data: string[] } = { data: [] };

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const reader = new SseReader();
    const response = await request(url, { headers, signal: reader.#abort.signal });
    reader.statusCode = response.statusCode;
    reader.headers = response.headers;
    void reader.#pump(response.body);
    return reader;
  }

  async #pump(body: Dispatcher.ResponseData["body"]): Promise<void> {
    try {
      for await (const chunk of body) {
        this.bytes += (chunk as Buffer).length;
        this.#feed((chunk as Buffer).toString("utf8"));
      }
      this.ended = true;
    } catch (error) {
      this.error = error as Error;
      this.ended = true;
    }
  }

  #feed(text: string): void {
    this.#buffer += text;
    let at: number;
    while ((at = this.#buffer.indexOf("\n")) >= 0) {
      const line = this.#buffer.slice(0, at).replace(/\r$/, "");
      this.#buffer = this.#buffer.slice(at + 1);
      if (line === "") {
        if (this.#current.data.length > 0) this.events.push({ id: this.#current.id, data: this.#current.data.join("\n") });
        this.#current = { data: [] };
      } else if (line.startsWith(":")) this.comments.push(line.slice(1).trim());
      else {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") this.#current.id = value;
        else if (field === "data") this.#current.data.push(value);
        else if (field === "retry") this.retry = Number(value);
      }
    }
  }

  close(): void {
    this.#abort.abort();
  }
}

export async function waitUntil(predicate: () => boolean, message: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${message}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function openWs(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode, headers: res.headers })));
  });
}

export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}

export async function getText(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const response = await request(url, { headers });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text };
}

export async function getBytes(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const response = await request(url, { headers });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, headers: response.headers, body };
}
