// A local asset server with the sandbox's characteristics (Content-Length, strong ETag, Accept-Ranges,
// single Range, If-Range), run as a child process so it does not share the measured event loop.
// `node build/bench/asset-server.js` prints {"url": ...} and serves /asset/<size> (any size in bytes).
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const BLOCK = 4 * 1024 * 1024;

/** 4 MiB of fixed pseudo-random bytes; a body is this block repeated, cut to size. */
export function block(): Buffer {
  const out = Buffer.alloc(BLOCK);
  let x = 0x9e3779b9;
  for (let i = 0; i < BLOCK; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  return out;
}

export function* bodyChunks(data: Buffer, start: number, endExclusive: number): Generator<Buffer> {
  for (let at = start; at < endExclusive; ) {
    const inBlock = at % BLOCK;
    const n = Math.min(BLOCK - inBlock, endExclusive - at, 1024 * 1024);
    yield data.subarray(inBlock, inBlock + n);
    at += n;
  }
}

export function sha256Multihash(data: Buffer, size: number): string {
  const hash = createHash("sha256");
  for (const chunk of bodyChunks(data, 0, size)) hash.update(chunk);
  return `1220${hash.digest("hex")}`;
}

function serve(): void {
  const data = block();
  const server = createServer((req, res) => {
    const m = /^\/asset\/(\d+)$/.exec(req.url ?? "");
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const size = Number(m[1]);
    const etag = `"bench-${size}"`;
    let start = 0;
    let end = size - 1;
    const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ""));
    const ifRange = req.headers["if-range"];
    if (range && (ifRange === undefined || ifRange === etag) && Number(range[1]) < size) {
      start = Number(range[1]);
      end = range[2] ? Math.min(size - 1, Number(range[2])) : size - 1;
    }
    const partial = start !== 0 || end !== size - 1;
    res.writeHead(partial ? 206 : 200, {
      "content-type": "image/tiff",
      "content-length": end - start + 1,
      etag,
      "accept-ranges": "bytes",
      ...(partial ? { "content-range": `bytes ${start}-${end}/${size}` } : {}),
    });
    const chunks = bodyChunks(data, start, end + 1);
    const pump = () => {
      for (;;) {
        const next = chunks.next();
        if (next.done) return void res.end();
        if (!res.write(next.value)) return void res.once("drain", pump);
      }
    };
    pump();
  });
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);
  });
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}

if (require.main === module) serve();
