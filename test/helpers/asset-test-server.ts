import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** Deterministic, incompressible-looking bytes (xorshift32), so a wrong byte anywhere shows in the hash. */
export function patternBytes(size: number, seed = 1): Buffer {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i += 1) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, size);
}

export function sha256Multihash(data: Buffer): string {
  return `1220${createHash("sha256").update(data).digest("hex")}`;
}

export interface ServedAsset {
  data: Buffer;
  etag?: string;
  /** Answer 200 with the whole body even when asked for a Range. */
  ignoreRange?: boolean;
  /** Absolute byte offsets where the connection is cut (each once, in order). */
  cuts?: number[];
  /** Stop sending (keep the socket open) after this byte, once. */
  stallAt?: number;
  /** Answer this status the first `count` times (e.g. 503 with Retry-After). */
  failFirst?: { status: number; count: number; retryAfter?: string };
  /** Answer with a redirect to this URL. */
  redirectTo?: string;
  contentType?: string;
  /** Answer this request yourself (a misbehaving server): `n` counts the requests for this path, from 1. */
  handler?: (req: IncomingMessage, res: ServerResponse, n: number) => void;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export interface AssetTestServer {
  url: string;
  server: Server;
  requests: RecordedRequest[];
  assets: Map<string, ServedAsset>;
  set(path: string, asset: ServedAsset): string;
  close(): Promise<void>;
}

/** A small HTTP server for asset tests: Range, ETag/If-Range, cuts at exact offsets, stalls, redirects, header recording. */
export async function startAssetServer(): Promise<AssetTestServer> {
  const requests: RecordedRequest[] = [];
  const assets = new Map<string, ServedAsset>();
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    requests.push({ method: req.method ?? "GET", path, headers: { ...req.headers } });
    const asset = assets.get(path);
    if (asset?.handler) {
      asset.handler(req, res, requests.filter((r) => r.path === path).length);
      return;
    }
    if (!asset) {
      res.statusCode = 404;
      res.end("not found");
      return;
    }
    if (asset.redirectTo) {
      res.writeHead(302, { location: asset.redirectTo });
      res.end();
      return;
    }
    if (asset.failFirst && asset.failFirst.count > 0) {
      asset.failFirst.count -= 1;
      res.writeHead(asset.failFirst.status, asset.failFirst.retryAfter ? { "retry-after": asset.failFirst.retryAfter } : {});
      res.end("try later");
      return;
    }
    serve(res, asset, req.headers);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    server,
    requests,
    assets,
    set(path, asset) {
      assets.set(path, asset);
      return `${url}${path}`;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function serve(res: ServerResponse, asset: ServedAsset, headers: IncomingHttpHeaders): void {
  const size = asset.data.length;
  const etag = asset.etag ?? `"${createHash("md5").update(asset.data).digest("hex")}"`;
  let start = 0;
  let end = size - 1;
  let status = 200;
  const range = /^bytes=(\d+)-(\d*)$/.exec(String(headers.range ?? ""));
  const ifRange = headers["if-range"];
  if (range && !asset.ignoreRange && (ifRange === undefined || ifRange === etag)) {
    start = Number(range[1]);
    end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    if (start >= size) {
      res.writeHead(416, { "content-range": `bytes */${size}` });
      res.end();
      return;
    }
    status = 206;
  }
  const head: Record<string, string | number> = {
    "content-type": asset.contentType ?? "application/octet-stream",
    "content-length": end - start + 1,
    etag,
  };
  if (!asset.ignoreRange) head["accept-ranges"] = "bytes";
  if (status === 206) head["content-range"] = `bytes ${start}-${end}/${size}`;
  res.writeHead(status, head);
  const cutIndex = (asset.cuts ?? []).findIndex((c) => c > start && c <= end);
  if (cutIndex >= 0) {
    const cut = asset.cuts!.splice(cutIndex, 1)[0];
    res.write(asset.data.subarray(start, cut), () => res.socket?.destroy());
    return;
  }
  if (asset.stallAt !== undefined && asset.stallAt > start && asset.stallAt <= end) {
    const stall = asset.stallAt;
    asset.stallAt = undefined;
    res.write(asset.data.subarray(start, stall));
    return;
  }
  res.end(asset.data.subarray(start, end + 1));
}
