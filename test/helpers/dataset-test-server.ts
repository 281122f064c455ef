import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A small Data Sphere dataset/item server for the faults the sandbox does not offer. Items are
 * generated: `count` Items, every `tieEvery` consecutive ones share a datetime; `from`/`to` are
 * inclusive. Faults are set per test on `faults` and counted in `requests`.
 */
export interface DatasetServerOptions {
  token?: string;
  count?: number;
  tieEvery?: number;
  pageSize?: number;
  packageName?: string;
}

export interface DatasetFaults {
  /** Stream: cut the connection (socket destroyed) after this many Items, on the first N stream requests. */
  cutStreamAfter?: number;
  cutStreamTimes?: number;
  /** Stream: SSE `data:` framing instead of NDJSON. */
  sseFraming?: boolean;
  /** Stream: write these bad lines after the Item with this index (0-based). */
  malformedAfter?: { index: number; lines: string[] };
  /** Stream: blank lines and an SSE comment between Items. */
  noise?: boolean;
  /** Stream: bytes per write (to split lines and characters across chunks). */
  chunkBytes?: number;
  /** Pages: answer 429 with this Retry-After (seconds) the first time page `page` is asked. */
  rateLimitPage?: { page: number; retryAfterSeconds: number };
  /** Pages: answer 500 the first `times` times page `page` is asked. */
  failPage?: { page: number; times: number };
  /** Pages: page `page` links back to itself as next (a repeated href). */
  repeatNextAt?: number;
  /** Pages: page `page` is empty but still has a next link. */
  emptyPageAt?: number;
  /** Pages: page `page` has a next link on this other origin. */
  foreignNextAt?: { page: number; origin: string };
  /** Pages: the connection is cut mid-body the first `times` times page `page` is asked. */
  cutPage?: { page: number; times: number };
}

export interface RecordedRequest {
  url: string;
  authorization?: string;
  at: number;
}

export interface DatasetTestServer {
  url: string;
  items: Record<string, unknown>[];
  faults: DatasetFaults;
  requests: RecordedRequest[];
  /** The Items the service returns for a query (order, from, to inclusive). */
  select(order: "new" | "old", from?: string, to?: string): Record<string, unknown>[];
  close(): Promise<void>;
}

export function makeItems(count: number, tieEvery = 1, pkg = "test-pkg"): Record<string, unknown>[] {
  const start = Date.UTC(2024, 0, 1);
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const datetime = new Date(start + Math.floor(i / tieEvery) * 60_000).toISOString();
    items.push({
      type: "Feature",
      stac_version: "1.0.0",
      id: `item-${String(i).padStart(6, "0")}-é`,
      collection: pkg,
      geometry: { type: "Point", coordinates: [i % 180, (i % 90) - 45] },
      bbox: [i % 180, (i % 90) - 45, i % 180, (i % 90) - 45],
      properties: { datetime, "eo:cloud_cover": i % 100, title: `Item ${i} ✓ 日本` },
      links: [],
      assets: { data: { href: `https://assets.example.com/${i}.tif`, type: "image/tiff; application=geotiff" } },
    });
  }
  return items;
}

export async function startDatasetTestServer(options: DatasetServerOptions = {}): Promise<DatasetTestServer> {
  const token = options.token ?? "test-token-123456";
  const pkg = options.packageName ?? "test-pkg";
  const items = makeItems(options.count ?? 120, options.tieEvery ?? 1, pkg);
  const pageSize = options.pageSize ?? 50;
  const faults: DatasetFaults = {};
  const requests: RecordedRequest[] = [];
  const pageHits = new Map<number, number>();
  let streamHits = 0;

  const select = (order: "new" | "old", from?: string, to?: string) => {
    const lo = from ? Date.parse(from) : -Infinity;
    const hi = to ? Date.parse(to) : Infinity;
    const chosen = items.filter((item) => {
      const t = Date.parse((item.properties as { datetime: string }).datetime);
      return t >= lo && t <= hi;
    });
    return order === "new" ? chosen.reverse() : chosen;
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({ url: req.url ?? "", authorization: req.headers.authorization, at: Date.now() });
    if (req.headers.authorization !== `Token ${token}`) {
      res.statusCode = req.headers.authorization ? 403 : 401;
      return res.end();
    }
    const url = new URL(req.url ?? "/", "http://x");
    const order = url.searchParams.get("order") === "old" ? "old" : "new";
    const from = url.searchParams.get("from") ?? undefined;
    const to = url.searchParams.get("to") ?? undefined;
    if (url.pathname === `/api/item/v1/${pkg}`) {
      res.setHeader("content-type", "application/geo+json");
      return res.end(JSON.stringify(items[0]));
    }
    if (url.pathname.startsWith("/api/item/v1/")) {
      res.statusCode = 404;
      return res.end();
    }
    if (url.pathname === `/api/dataset/v1/${pkg}/stream/`) {
      streamHits++;
      return void writeStream(res, select(order, from, to), faults, streamHits);
    }
    if (url.pathname === `/api/dataset/v1/${pkg}/paginate/`) {
      const page = Number(url.searchParams.get("page") ?? "1");
      const hits = (pageHits.get(page) ?? 0) + 1;
      pageHits.set(page, hits);
      if (faults.rateLimitPage?.page === page && hits === 1) {
        res.statusCode = 429;
        res.setHeader("retry-after", String(faults.rateLimitPage.retryAfterSeconds));
        return res.end();
      }
      if (faults.failPage?.page === page && hits <= faults.failPage.times) {
        res.statusCode = 500;
        return res.end("boom");
      }
      const all = select(order, from, to);
      let features = all.slice((page - 1) * pageSize, page * pageSize);
      const base = new URL(req.url ?? "/", `http://${req.headers.host}`);
      const nextUrl = new URL(base);
      nextUrl.searchParams.set("page", String(page + 1));
      let next: string | undefined = page * pageSize < all.length ? nextUrl.toString() : undefined;
      if (faults.emptyPageAt === page) {
        features = [];
        next = nextUrl.toString();
      }
      if (faults.repeatNextAt === page) next = base.toString();
      if (faults.foreignNextAt?.page === page) next = `${faults.foreignNextAt.origin}${nextUrl.pathname}${nextUrl.search}`;
      const links = [{ rel: "self", href: base.toString() }, ...(next ? [{ rel: "next", href: next }] : [])];
      const body = JSON.stringify({ type: "FeatureCollection", features, links });
      res.setHeader("content-type", "application/json");
      if (faults.cutPage?.page === page && hits <= faults.cutPage.times) {
        res.setHeader("content-length", String(Buffer.byteLength(body)));
        res.write(body.slice(0, Math.floor(body.length / 2)));
        return void setTimeout(() => res.destroy(), 20);
      }
      return res.end(body);
    }
    res.statusCode = 404;
    res.end();
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    items,
    faults,
    requests,
    select,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function writeStream(res: ServerResponse, items: Record<string, unknown>[], faults: DatasetFaults, hit: number): Promise<void> {
  res.setHeader("content-type", "text/event-stream; charset=utf-8");
  const cutAt = faults.cutStreamAfter !== undefined && hit <= (faults.cutStreamTimes ?? 1) ? faults.cutStreamAfter : undefined;
  let text = "";
  for (let i = 0; i < items.length; i++) {
    if (cutAt !== undefined && i === cutAt) break;
    const json = JSON.stringify(items[i]);
    text += faults.sseFraming ? `data: ${json}\n\n` : `${json}\n`;
    if (faults.noise && i % 3 === 0) text += "\n: keep-alive comment\n\r\n";
    if (faults.malformedAfter?.index === i) text += faults.malformedAfter.lines.map((l) => `${l}\n`).join("");
  }
  const bytes = Buffer.from(text, "utf8");
  const step = faults.chunkBytes ?? 16 * 1024;
  for (let offset = 0; offset < bytes.length; offset += step) {
    if (!res.write(bytes.subarray(offset, offset + step))) await new Promise((r) => res.once("drain", r));
    if (faults.chunkBytes) await new Promise((r) => setImmediate(r));
  }
  if (cutAt !== undefined) {
    // Half a line, then the socket dies: a cut mid-way, not a normal end.
    res.write(JSON.stringify(items[cutAt] ?? {}).slice(0, 30));
    setTimeout(() => res.destroy(), 20);
    return;
  }
  res.end();
}
