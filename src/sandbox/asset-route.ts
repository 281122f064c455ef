import type { IncomingMessage, ServerResponse } from "node:http";
import { contentChunks, etagOf, type AssetContent } from "./asset-bytes";
import type { ConnectionFaults } from "./faults";
import { FaultyWriter } from "./faulty-writer";

/** A single byte range; undefined = whole body; "unsatisfiable" = 416. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined; // multiple or malformed ranges: serve the whole body (allowed by RFC 9110)
  const [, a, b] = match;
  if (a === "" && b === "") return undefined;
  let start: number;
  let end: number;
  if (a === "") {
    const suffix = Number(b);
    if (suffix === 0) return "unsatisfiable";
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== "" && Number(b) < start) return undefined;
  }
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

/** Serves an asset body: Content-Length, ETag, Accept-Ranges, single Range (206), If-Range, HEAD. */
export async function serveAsset(req: IncomingMessage, res: ServerResponse, content: AssetContent, type: string, faults: ConnectionFaults, onInjected: () => void): Promise<void> {
  const etag = etagOf(content);
  const size = content.size;
  let range = faults.ignoreRange ? undefined : parseRange(req.headers.range, size);
  const ifRange = req.headers["if-range"];
  if (range && typeof ifRange === "string" && ifRange !== etag) range = undefined;
  if (faults.ignoreRange && req.headers.range) onInjected();
  const headers: Record<string, string | number> = {
    "content-type": type,
    etag,
    // Under ignoreRange the header still claims ranges: clients must check for 206.
    "accept-ranges": "bytes",
    "cache-control": "private, max-age=3600",
  };
  if (range === "unsatisfiable") {
    res.writeHead(416, { ...headers, "content-range": `bytes */${size}`, "content-length": 0 });
    res.end();
    return;
  }
  if (req.headers["if-none-match"] === etag && !range) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const start = range ? range.start : 0;
  const endExclusive = range ? range.end + 1 : size;
  headers["content-length"] = endExclusive - start;
  if (range) headers["content-range"] = `bytes ${start}-${range.end}/${size}`;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  const writer = new FaultyWriter(res, faults, onInjected);
  if (!writer.checkImmediate()) return;
  // A wrong checksum: flip one byte in the middle of the body (same size, different digest).
  const corruptAt = faults.wrongChecksum ? Math.floor(size / 2) : -1;
  if (corruptAt >= start && corruptAt < endExclusive) onInjected();
  let offset = start;
  for (const chunk of contentChunks(content, start, endExclusive)) {
    let out = chunk;
    if (corruptAt >= offset && corruptAt < offset + chunk.length) {
      out = Buffer.from(chunk);
      out[corruptAt - offset] ^= 0xff;
    }
    offset += chunk.length;
    const result = writer.write(out, false);
    if (result === "gone") return;
    if (result === "full") await writer.ready();
    if (res.destroyed) return;
  }
  await writer.end();
}
