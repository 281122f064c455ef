import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReplayServer {
  url: string;
  close(): Promise<void>;
}

/**
 * A loopback server that is never the bottleneck: the handler answers with `count` pre-encoded pieces,
 * written in 64 KiB batches (or one write per piece) with backpressure. `route` returns null to answer the request itself.
 */
export async function startReplayServer(
  route: (req: IncomingMessage, res: ServerResponse) => { count: number; piece(i: number): Buffer[] } | null,
  /** Bytes gathered per write (default 64 KiB); 0 writes each piece on its own, as a live server flushing each event. */
  batchBytes = 64 * 1024,
): Promise<ReplayServer> {
  const server = createServer(async (req, res) => {
    const plan = route(req, res);
    if (!plan) return;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    let batch: Buffer[] = [];
    let size = 0;
    for (let i = 0; i < plan.count; i++) {
      for (const part of plan.piece(i)) {
        batch.push(part);
        size += part.length;
      }
      if (size >= batchBytes || i === plan.count - 1) {
        const ok = res.write(Buffer.concat(batch, size));
        batch = [];
        size = 0;
        if (!ok) await new Promise((r) => res.once("drain", r));
        if (res.destroyed) return;
      }
    }
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
