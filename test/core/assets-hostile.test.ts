import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { fetchItemAssets, TransferPool, type FetchOptions } from "../../src/core/assets";
import { Auth } from "../../src/core/auth";
import { Endpoints } from "../../src/core/endpoints";
import { FakeClock } from "../helpers/fake-clock";
import { listFiles } from "../helpers/files";
import { patternBytes, sha256Multihash, startAssetServer, type AssetTestServer } from "../helpers/asset-test-server";
import { waitFor } from "../helpers/wait";

const FAST: Partial<FetchOptions> = { backoff: { initialMs: 5, maxMs: 50 }, retries: 2, idleTimeoutMs: 10_000, fsync: false };

function item(id: string, assets: Record<string, Record<string, unknown>>): Record<string, unknown> {
  return { type: "Feature", stac_version: "1.0.0", id, collection: "col", geometry: null, properties: { datetime: "2024-01-01T00:00:00Z" }, links: [], assets };
}

/** Every file below `dir` with its bytes, to prove nothing outside the download folder changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of listFiles(dir)) out[f] = readFileSync(join(dir, f)).toString("base64");
  return out;
}

describe("core/assets hostile servers and folders", function () {
  this.timeout(30_000);
  let server: AssetTestServer;
  let tmp: string;
  let root: string;
  let outside: string;

  beforeEach(async () => {
    server = await startAssetServer();
    tmp = mkdtempSync(join(tmpdir(), "asset-hostile-"));
    root = join(tmp, "root");
    outside = join(tmp, "outside");
    mkdirSync(root);
    mkdirSync(outside);
    writeFileSync(join(outside, "victim.bin"), "precious");
  });
  afterEach(async () => {
    await server.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  function fetch(assets: Record<string, Record<string, unknown>>, options: Partial<FetchOptions> = {}, id = "it-1") {
    return fetchItemAssets(item(id, assets), { root, pool: new TransferPool(4, 2), auth: { headersFor: () => ({}) }, ...FAST, ...options });
  }

  describe("planted symbolic links: 0 writes outside the folder", () => {
    const data = patternBytes(50_000, 3);
    const before = () => snapshot(outside);

    it("a symlinked collection folder is refused (UNSAFE_PATH), nothing lands in its target", async () => {
      const was = before();
      symlinkSync(outside, join(root, "col"));
      const out = await fetch({ a: { href: server.set("/a.tif", { data }), type: "image/tiff", roles: ["data"] } });
      assert.deepEqual(out.files, []);
      assert.equal(out.errors[0].code, "UNSAFE_PATH");
      assert.match(out.errors[0].message, /col is a symbolic link; asset-fetch follows no link below the download folder/);
      assert.deepEqual(snapshot(outside), was);
      assert.equal(server.requests.length, 0, "refused before any byte moved");
    });

    it("a symlinked .part is never written through", async () => {
      const was = before();
      mkdirSync(join(root, "col", "it-1"), { recursive: true });
      symlinkSync(join(outside, "victim.bin"), join(root, "col", "it-1", "a.tif.part"));
      for (const checksum of [undefined, sha256Multihash(data)]) {
        const out = await fetch({ a: { href: server.set("/a.tif", { data }), type: "image/tiff", roles: ["data"], ...(checksum ? { "file:checksum": checksum } : {}) } });
        assert.deepEqual(out.files, []);
        assert.equal(out.errors[0].code, "UNSAFE_PATH", out.errors[0].message);
        assert.match(out.errors[0].message, /a\.tif\.part is a symbolic link; remove it/);
      }
      assert.deepEqual(snapshot(outside), was);
    });

    it("a symlink at the final name is neither read (skip-if-valid) nor replaced (overwrite)", async () => {
      const was = before();
      mkdirSync(join(root, "col", "it-1"), { recursive: true });
      symlinkSync(join(outside, "victim.bin"), join(root, "col", "it-1", "a.tif"));
      for (const existing of ["skip-if-valid", "overwrite"] as const) {
        const out = await fetch({ a: { href: server.set("/a.tif", { data }), type: "image/tiff", roles: ["data"] } }, { existing });
        assert.equal(out.errors[0]?.code, "UNSAFE_PATH", existing);
      }
      assert.deepEqual(snapshot(outside), was);
    });

    it("a folder swapped for a symlink during the download is caught before the rename", async () => {
      const was = before();
      const href = server.set("/slow.tif", {
        data,
        handler: (_req, res) => {
          res.writeHead(200, { "content-length": data.length });
          res.write(data.subarray(0, 1000));
          // While the bytes flow, the Item's folder becomes a link to the outside.
          setTimeout(() => {
            rmSync(join(root, "col", "it-1"), { recursive: true, force: true });
            symlinkSync(outside, join(root, "col", "it-1"));
            res.end(data.subarray(1000));
          }, 100);
        },
      });
      const out = await fetch({ a: { href, type: "image/tiff", roles: ["data"] } });
      assert.deepEqual(out.files, []);
      assert.equal(out.errors[0].code, "UNSAFE_PATH", out.errors[0].message);
      assert.deepEqual(snapshot(outside), was);
    });

    it("the download folder itself may be a link (the user chose it): files land in its real target", async () => {
      const real = join(tmp, "real");
      mkdirSync(real);
      symlinkSync(real, join(tmp, "linked"));
      const out = await fetchItemAssets(item("it-1", { a: { href: server.set("/a.tif", { data }), type: "image/tiff", roles: ["data"] } }), {
        root: join(tmp, "linked"), pool: new TransferPool(1, 1), auth: { headersFor: () => ({}) }, ...FAST,
      });
      assert.deepEqual(out.errors, []);
      assert.ok(readFileSync(join(real, "col", "it-1", "a.tif")).equals(data));
    });
  });

  describe("caps", () => {
    it("an asset without file:size stops at the size cap with a SIZE error naming the option; nothing is kept", async () => {
      const big = patternBytes(3_000_000, 9);
      const chunked = server.set("/chunked.bin", {
        data: big,
        handler: (_req, res) => {
          res.writeHead(200, { "content-type": "application/octet-stream" });
          res.end(big);
        },
      });
      const out = await fetch({ a: { href: chunked, roles: ["data"] } }, { maxBytesWithoutSize: 1_000_000 });
      assert.deepEqual(out.files, []);
      assert.equal(out.errors[0].code, "SIZE");
      assert.match(out.errors[0].message, /no file:size and the server sent more than the 1000000 bytes allowed for such assets; raise "Size cap \(MiB\)"/);
      assert.deepEqual(listFiles(root).filter((f) => f.endsWith(".bin") || f.endsWith(".part")), []);
      // An announced Content-Length over the cap is refused before the body.
      const announced = server.set("/announced.bin", { data: big });
      const early = await fetch({ b: { href: announced, roles: ["data"] } }, { maxBytesWithoutSize: 1_000_000 });
      assert.equal(early.errors[0].code, "SIZE");
      assert.match(early.errors[0].message, /the server announces 3000000 bytes/);
      // file:size, when given, is the limit instead: the same 3 MB pass.
      const sized = await fetch({ c: { href: announced, roles: ["data"], "file:size": big.length } }, { maxBytesWithoutSize: 1_000_000 });
      assert.deepEqual(sized.errors, []);
    });

    for (const [name, retryAfter] of [
      ["a day (86400 s)", "86400"],
      ["beyond Node's timer range (99999999999 s)", "99999999999"],
      ["an HTTP date a year ahead", new Date(Date.now() + 365 * 86_400_000).toUTCString()],
    ] as const) {
      it(`Retry-After of ${name} waits at most 1 h, on the clock the test controls`, async () => {
        const clock = new FakeClock();
        const data = patternBytes(1000);
        const href = server.set("/busy.bin", { data, failFirst: { status: 503, count: 1, retryAfter } });
        const done = fetch({ a: { href, roles: ["data"], "file:size": data.length } }, { clock });
        await waitFor(() => clock.pendingDelays().length === 1, "a retry is scheduled");
        assert.deepEqual(clock.pendingDelays(), [3_600_000]);
        await clock.advance(3_599_000);
        assert.equal(server.requests.length, 1, "no retry storm before the hour");
        await clock.advance(1000);
        const out = await done;
        assert.deepEqual(out.errors, []);
        assert.equal(server.requests.length, 2);
      });
    }
  });

  describe("no wrong bytes under a final name, even without size or checksum", () => {
    it("a 206 longer than its Content-Range is a SIZE error", async () => {
      const data = patternBytes(20_000, 4);
      const href = server.set("/overlong.bin", {
        data,
        handler: (_req, res) => {
          res.writeHead(206, { "content-range": `bytes 0-9999/${data.length}`, "accept-ranges": "bytes" });
          res.end(data);
        },
      });
      const out = await fetch({ a: { href, roles: ["data"] } });
      assert.deepEqual(out.files, []);
      assert.equal(out.errors[0].code, "SIZE");
      assert.match(out.errors[0].message, /more bytes than its Content-Range/);
      assert.deepEqual(listFiles(root).filter((f) => f.endsWith(".bin") || f.endsWith(".part")), []);
    });

    it("a 206 shorter than the whole file is continued with Range until every byte is there", async () => {
      const data = patternBytes(20_000, 5);
      const href = server.set("/pieces.bin", {
        data,
        handler: (req, res) => {
          const start = Number(/bytes=(\d+)-/.exec(String(req.headers.range ?? ""))?.[1] ?? 0);
          const end = Math.min(start + 6999, data.length - 1);
          res.writeHead(206, { "content-range": `bytes ${start}-${end}/${data.length}`, "accept-ranges": "bytes", "content-length": end - start + 1 });
          res.end(data.subarray(start, end + 1));
        },
      });
      const out = await fetch({ a: { href, roles: ["data"] } });
      assert.deepEqual(out.errors, []);
      assert.ok(readFileSync(out.files[0].path).equals(data));
    });

    it("a truncating 416 (\"you have it all\" after a cut) does not turn a partial file into a final one", async () => {
      const data = patternBytes(10_000, 6);
      const href = server.set("/cut416.bin", {
        data,
        handler: (req, res) => {
          if (req.headers.range) {
            res.writeHead(416, { "content-range": "bytes */4000" });
            res.end();
            return;
          }
          res.writeHead(200, { "content-length": data.length, "accept-ranges": "bytes", etag: '"e1"' });
          res.write(data.subarray(0, 4000), () => res.socket?.destroy());
        },
      });
      const out = await fetch({ a: { href, roles: ["data"] } });
      assert.deepEqual(out.files, []);
      assert.ok(out.errors.length === 1, JSON.stringify(out.errors));
      assert.deepEqual(listFiles(root).filter((f) => f.endsWith(".bin")), []);
    });

    it("a content-coded body (gzip although identity was asked) is refused without a checksum, and accepted when the checksum proves it", async () => {
      const data = patternBytes(30_000, 7);
      const gz = gzipSync(data);
      const href = server.set("/gz.bin", {
        data,
        handler: (_req, res) => {
          res.writeHead(200, { "content-encoding": "gzip", "content-length": gz.length });
          res.end(gz);
        },
      });
      const out = await fetch({ a: { href, roles: ["data"] } });
      assert.equal(server.requests[0].headers["accept-encoding"], "identity");
      assert.deepEqual(out.files, []);
      assert.equal(out.errors[0].code, "UNSUPPORTED");
      assert.match(out.errors[0].message, /"gzip"-encoded body although only identity was accepted/);
      assert.ok(!existsSync(join(root, "col", "it-1", "a.bin")));
      const proven = await fetch({ a: { href, roles: ["data"], "file:checksum": sha256Multihash(gz) } });
      assert.deepEqual(proven.errors, []);
      assert.equal(proven.files[0].checksum, "verified");
    });
  });

  describe("refusals name the fix", () => {
    it("a 403 from a host that got no token says so and suggests signing or credentials; one from the token's host blames the token", async () => {
      const foreign = await startAssetServer();
      try {
        const endpoints = new Endpoints({ apiUrl: server.url, publishUrl: "ws://127.0.0.1:1/publish/v1/" });
        const auth = new Auth(endpoints, "secret-token-123456");
        const denied = { data: Buffer.alloc(0), failFirst: { status: 403, count: 99 } };
        const out = await fetch({ a: { href: `${foreign.set("/signed.tif", denied)}?sig=expired`, roles: ["data"] } }, { auth });
        assert.equal(out.errors[0].code, "FORBIDDEN");
        assert.equal(out.errors[0].status, 403);
        assert.match(out.errors[0].message, /127\.0\.0\.1:\d+ refused the download \(HTTP 403\); no Data Sphere token was sent there, so the token is not the cause: the URL may need signing/);
        assert.doesNotMatch(out.errors[0].message, /sig=expired|secret-token/);
        const own = await fetch({ b: { href: server.set("/own.tif", denied), roles: ["data"] } }, { auth });
        assert.equal(own.errors[0].code, "AUTH");
        assert.match(own.errors[0].message, /the Data Sphere token was refused \(HTTP 403\)/);
      } finally {
        await foreign.close();
      }
    });
  });
});
