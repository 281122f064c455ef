import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Auth } from "../../src/core/auth";
import { Endpoints } from "../../src/core/endpoints";
import { fetchItemAssets, TransferPool, type FetchOptions } from "../../src/core/assets";
import { planItem } from "../../src/core/assets/planner";
import { transferAsset, type TransferOptions } from "../../src/core/assets/transfer";
import { toMultihash } from "../../src/core/assets/multihash";
import { patternBytes, sha256Multihash, startAssetServer, type AssetTestServer } from "../helpers/asset-test-server";
import { listFiles } from "../helpers/files";

const FAST: Partial<TransferOptions> = { backoff: { initialMs: 5, maxMs: 50 }, retries: 3, idleTimeoutMs: 10_000, fsync: false };
const noAuth = { auth: { headersFor: () => ({}) } };

function item(id: string, assets: Record<string, Record<string, unknown>>): Record<string, unknown> {
  return { type: "Feature", stac_version: "1.0.0", id, collection: "col", geometry: null, properties: { datetime: "2024-01-01T00:00:00Z" }, links: [], assets };
}

function sha(alg: string, data: Buffer): string {
  return createHash(alg).update(data).digest("hex");
}

describe("core/assets transfer", function () {
  let server: AssetTestServer;
  let tmp: string;
  let root: string;

  beforeEach(async () => {
    server = await startAssetServer();
    tmp = mkdtempSync(join(tmpdir(), "asset-transfer-"));
    root = join(tmp, "root");
    mkdirSync(root);
  });
  afterEach(async () => {
    await server.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  async function fetchOne(data: Buffer, asset: Record<string, unknown>, options: Partial<FetchOptions> = {}, path = "/a.bin") {
    const href = server.set(path, { data, ...(asset.served as object) });
    delete asset.served;
    return fetchItemAssets(item("it-1", { a: { href, roles: ["data"], ...asset } }), {
      root,
      pool: new TransferPool(4, 2),
      ...noAuth,
      ...FAST,
      ...options,
    });
  }

  it("downloads and verifies each multihash algorithm; an unknown one is written and reported unverified", async () => {
    const data = patternBytes(300_000, 7);
    const algs: Array<["sha2-256" | "sha2-512" | "sha3-256" | "md5" | "sha1", string]> = [["sha2-256", "sha256"], ["sha2-512", "sha512"], ["sha3-256", "sha3-256"], ["md5", "md5"], ["sha1", "sha1"]];
    for (const [name, node] of algs) {
      const out = await fetchOne(data, { "file:size": data.length, "file:checksum": toMultihash(name, sha(node, data)) }, { existing: "overwrite" });
      assert.deepEqual(out.errors, [], name);
      assert.equal(out.files[0].checksum, "verified", name);
      assert.equal(out.files[0].bytes, data.length);
      assert.ok(readFileSync(out.files[0].path).equals(data), name);
    }
    const unknown = await fetchOne(data, { "file:checksum": `90e40210${"00".repeat(16)}` }, { existing: "overwrite", unverifiableChecksum: "keep" });
    assert.equal(unknown.files[0].checksum, "unverified");
    const refused = await fetchOne(data, { "file:checksum": `90e40210${"00".repeat(16)}` }, { existing: "overwrite" });
    assert.deepEqual([refused.files, refused.errors.map((e) => e.code)], [[], ["UNVERIFIABLE"]]);
    const absent = await fetchOne(data, {}, { existing: "overwrite" });
    assert.equal(absent.files[0].checksum, "absent");
    assert.deepEqual(listFiles(root), ["col/it-1/a.bin"]);
    const asset = (absent.item.assets as Record<string, Record<string, unknown>>).a;
    assert.equal(asset.href, join(root, "col/it-1/a.bin"));
    assert.deepEqual(asset.alternate, { original: { href: `${server.url}/a.bin`, "alternate:name": "original" } });
  });

  it("30 connection cuts at random offsets end in a byte-identical, verified file, resumed with Range and If-Range", async function () {
    this.timeout(60_000);
    const data = patternBytes(24 * 1024 * 1024, 3);
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const cuts = Array.from({ length: 30 }, () => 1 + Math.floor(rnd() * (data.length - 2))).sort((a, b) => a - b);
    const href = server.set("/big.bin", { data, cuts: [...cuts] });
    const plan = planItem(item("big", { big: { href, roles: ["data"], "file:size": data.length, "file:checksum": sha256Multihash(data) } }), { root });
    const result = await transferAsset(plan.entries[0], { ...noAuth, ...FAST });
    assert.equal(result.checksum, "verified");
    assert.ok(readFileSync(result.path).equals(data), "byte-identical");
    const gets = server.requests.filter((r) => r.path === "/big.bin");
    assert.equal(gets.length, 31 - cutsSharingAnOffset(cuts));
    assert.equal(result.resumes, gets.length - 1);
    assert.equal(result.restarts, 0);
    for (const r of gets.slice(1)) {
      assert.match(String(r.headers.range), /^bytes=\d+-$/);
      assert.match(String(r.headers["if-range"]), /^".+"$/);
    }
    assert.ok(!existsSync(`${result.path}.part`));
  });

  it("restarts from byte 0 when the server ignores Range, and still ends byte-identical and verified", async function () {
    this.timeout(60_000);
    const data = patternBytes(4 * 1024 * 1024, 5);
    const cuts = Array.from({ length: 30 }, (_, i) => Math.floor(((i + 1) * data.length) / 32));
    const href = server.set("/norange.bin", { data, cuts, ignoreRange: true });
    const plan = planItem(item("nr", { n: { href, roles: ["data"], "file:size": data.length, "file:checksum": sha256Multihash(data) } }), { root });
    const result = await transferAsset(plan.entries[0], { ...noAuth, ...FAST });
    assert.ok(readFileSync(result.path).equals(data));
    assert.equal(result.checksum, "verified");
    assert.equal(result.restarts, 30);
    assert.equal(result.resumes, 0);
  });

  it("hashing by reading the file back on a worker gives the same results: cuts with Range, ignored Range, a stale .part, a wrong checksum", async function () {
    this.timeout(60_000);
    const data = patternBytes(3 * 1024 * 1024, 21);
    const readback = { ...noAuth, ...FAST, readbackHashThreshold: 0 };
    const meta = { "file:size": data.length, "file:checksum": sha256Multihash(data) };
    const cuts = Array.from({ length: 10 }, (_, i) => Math.floor(((i + 1) * data.length) / 12));
    for (const [name, served] of [["range", { cuts: [...cuts] }], ["norange", { cuts: [...cuts], ignoreRange: true }]] as Array<[string, { cuts: number[]; ignoreRange?: boolean }]>) {
      const href = server.set(`/${name}.bin`, { data, ...served });
      const entry = planItem(item(name, { k: { href, roles: ["data"], ...meta } }), { root }).entries[0];
      const result = await transferAsset(entry, readback);
      assert.ok(readFileSync(result.path).equals(data), name);
      assert.equal(result.checksum, "verified");
      assert.equal(name === "range" ? result.resumes : result.restarts, 10, name);
    }
    const href = server.set("/stale.bin", { data });
    const entry = planItem(item("stale", { k: { href, roles: ["data"], ...meta } }), { root }).entries[0];
    mkdirSync(join(root, "col", "stale"), { recursive: true });
    writeFileSync(`${entry.path}.part`, patternBytes(1_000_000, 77));
    const stale = await transferAsset(entry, readback);
    assert.ok(readFileSync(stale.path).equals(data));
    assert.equal(stale.restarts, 1);
    const wrong = planItem(item("wrong", { k: { href, roles: ["data"], "file:checksum": sha256Multihash(patternBytes(10, 1)) } }), { root }).entries[0];
    await assert.rejects(transferAsset(wrong, readback), (e: { code: string }) => e.code === "CHECKSUM");
    assert.ok(!existsSync(wrong.path) && !existsSync(`${wrong.path}.part`));
  });

  it("a wrong checksum fails with CHECKSUM and leaves no file under the final name (and no .part)", async () => {
    const data = patternBytes(500_000, 9);
    const out = await fetchOne(data, { "file:size": data.length, "file:checksum": sha256Multihash(patternBytes(500_000, 10)) });
    assert.equal(out.errors.length, 1);
    assert.equal(out.errors[0].code, "CHECKSUM");
    assert.match(out.errors[0].message, /^Item it-1, asset a \(http:\/\/127\.0\.0\.1:\d+\/a\.bin\): checksum mismatch \(sha2-256: expected/);
    assert.deepEqual(out.files, []);
    assert.deepEqual(listFiles(root), []);
  });

  it("more bytes than file:size, or fewer, fail with SIZE and leave nothing", async () => {
    const data = patternBytes(100_000, 2);
    const big = await fetchOne(data, { "file:size": 50_000 });
    assert.equal(big.errors[0].code, "SIZE");
    const small = await fetchOne(data, { "file:size": 200_000 });
    assert.equal(small.errors[0].code, "SIZE");
    assert.deepEqual(listFiles(root), []);
  });

  it("a full disk gives a clear IO error and no partial file (1 MB tmpfs)", async function () {
    const mnt = join(tmp, "tiny");
    mkdirSync(mnt);
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], { stdio: "ignore" });
    } catch {
      console.warn("    ! cannot mount a tmpfs here (needs root and mount permission): skipping the full-disk case");
      this.skip();
    }
    try {
      const data = patternBytes(3 * 1024 * 1024, 4);
      const out = await fetchOne(data, { "file:size": data.length, "file:checksum": sha256Multihash(data) }, { root: mnt });
      assert.equal(out.errors.length, 1);
      assert.equal(out.errors[0].code, "IO");
      assert.match(out.errors[0].message, /ENOSPC \(no space left on the device\)/);
      assert.deepEqual(listFiles(mnt).filter((f) => f.endsWith(".bin") || f.endsWith(".part")), []);
      assert.equal(server.requests.length, 1, "a full disk is not retried");
    } finally {
      execFileSync("umount", [mnt]);
    }
  });

  it("an unwritable folder (a regular file where a folder is needed) gives a clear IO error", async () => {
    writeFileSync(join(root, "col"), "I am a file");
    const out = await fetchOne(patternBytes(1000), {});
    assert.equal(out.errors[0].code, "IO");
    assert.match(out.errors[0].message, /cannot create folder .*col\/it-1: .*col is a file where a folder is needed/);
    assert.equal(server.requests.length, 0);
  });

  it("the token goes to the Data Sphere origin only: a cross-origin redirect is followed without it", async () => {
    const other = await startAssetServer();
    const allowed = await startAssetServer();
    try {
      const data = patternBytes(10_000, 1);
      const endpoints = new Endpoints({ apiUrl: server.url, publishUrl: "ws://127.0.0.1:1/publish/v1/" });
      const auth = new Auth(endpoints, "secret-token-123456");
      const target = other.set("/asset.bin", { data });
      const href = server.set("/redirect", { data, redirectTo: target });
      const out = await fetchItemAssets(item("r", { a: { href, roles: ["data"], "file:checksum": sha256Multihash(data) } }), {
        root, pool: new TransferPool(2, 2), ...FAST, auth,
      });
      assert.deepEqual(out.errors, []);
      assert.equal(out.files[0].checksum, "verified");
      assert.equal(server.requests[0].headers.authorization, "Token secret-token-123456");
      assert.equal(other.requests.length, 1);
      assert.equal(other.requests[0].headers.authorization, undefined, "no token on the other origin");
      // A host the user lists explicitly gets it.
      const extra = auth.withExtraOrigins([allowed.url]);
      const allowedHref = allowed.set("/x.bin", { data });
      server.set("/redirect2", { data, redirectTo: allowedHref });
      await fetchItemAssets(item("r2", { a: { href: `${server.url}/redirect2`, roles: ["data"] } }), {
        root, pool: new TransferPool(2, 2), ...FAST, auth: extra,
      });
      assert.equal(allowed.requests[0].headers.authorization, "Token secret-token-123456");
    } finally {
      await other.close();
      await allowed.close();
    }
  });

  it("follows at most 5 redirects", async () => {
    const data = patternBytes(100);
    for (let i = 0; i < 6; i += 1) server.set(`/r${i}`, { data, redirectTo: `${server.url}/r${i + 1}` });
    server.set("/r6", { data });
    const out = await fetchItemAssets(item("loop", { a: { href: `${server.url}/r0`, roles: ["data"] } }), { root, pool: new TransferPool(1, 1), ...noAuth, ...FAST, retries: 0 });
    assert.equal(out.errors[0].code, "PROTOCOL");
    assert.match(out.errors[0].message, /more than 5 redirects/);
    server.set("/r0", { data, redirectTo: `${server.url}/r2` });
    const ok = await fetchItemAssets(item("ok", { a: { href: `${server.url}/r0`, roles: ["data"] } }), { root, pool: new TransferPool(1, 1), ...noAuth, ...FAST });
    assert.deepEqual(ok.errors, []);
  });

  it("retries 503 and 429 honouring Retry-After; 404 is not retried", async () => {
    const data = patternBytes(5000);
    const out = await fetchOne(data, { served: { failFirst: { status: 503, count: 2, retryAfter: "0" } } });
    assert.deepEqual(out.errors, []);
    assert.equal(server.requests.length, 3);
    const limited = await fetchOne(data, { served: { failFirst: { status: 429, count: 1, retryAfter: "1" } } }, { existing: "overwrite" }, "/b.bin");
    assert.deepEqual(limited.errors, []);
    const gap = server.requests.length;
    assert.equal(gap, 5);
    const missing = await fetchItemAssets(item("m", { a: { href: `${server.url}/missing`, roles: ["data"] } }), { root, pool: new TransferPool(1, 1), ...noAuth, ...FAST });
    assert.equal(missing.errors[0].code, "NOT_FOUND");
    assert.equal(server.requests.length, 6);
  });

  it("an idle timeout (not a whole-transfer deadline) ends a stalled response, and the transfer resumes", async () => {
    const data = patternBytes(2_000_000, 6);
    const out = await fetchOne(data, { "file:checksum": sha256Multihash(data), served: { stallAt: 700_000 } }, { idleTimeoutMs: 1000 });
    assert.deepEqual(out.errors, []);
    assert.ok(readFileSync(out.files[0].path).equals(data));
    assert.ok(server.requests.length >= 2);
    assert.ok(server.requests.some((r) => r.headers.range === "bytes=700000-"), "resumed where the stall began");
  });

  it("existing-file policy: skip-if-valid skips a valid file and replaces a truncated one; fail refuses; overwrite replaces", async () => {
    const data = patternBytes(200_000, 8);
    const meta = { "file:size": data.length, "file:checksum": sha256Multihash(data) };
    const first = await fetchOne(data, { ...meta });
    assert.equal(first.files[0].skipped, false);
    const again = await fetchOne(data, { ...meta });
    assert.equal(again.files[0].skipped, true);
    assert.equal(again.files[0].checksum, "verified");
    assert.equal(server.requests.length, 1, "a valid file is not downloaded again");
    writeFileSync(first.files[0].path, data.subarray(0, 1000));
    const repaired = await fetchOne(data, { ...meta });
    assert.equal(repaired.files[0].skipped, false);
    assert.ok(readFileSync(first.files[0].path).equals(data));
    const refused = await fetchOne(data, { ...meta }, { existing: "fail" });
    assert.equal(refused.errors[0].code, "EXISTS");
    const replaced = await fetchOne(data, { ...meta }, { existing: "overwrite" });
    assert.equal(replaced.files[0].skipped, false);
    assert.equal(server.requests.length, 3);
  });

  it("resumes the .part of an earlier run with Range when a checksum can prove the result, restarting once if it cannot", async () => {
    const data = patternBytes(1_000_000, 11);
    const dir = join(root, "col", "it-1");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "a.bin.part"), data.subarray(0, 400_000));
    const out = await fetchOne(data, { "file:size": data.length, "file:checksum": sha256Multihash(data) });
    assert.deepEqual(out.errors, []);
    assert.ok(readFileSync(out.files[0].path).equals(data));
    assert.equal(server.requests[0].headers.range, "bytes=400000-");
    // A stale .part holding other bytes: the checksum catches it and one fresh download fixes it.
    rmSync(out.files[0].path);
    writeFileSync(join(dir, "a.bin.part"), patternBytes(400_000, 99));
    const stale = await fetchOne(data, { "file:size": data.length, "file:checksum": sha256Multihash(data) });
    assert.deepEqual(stale.errors, []);
    assert.ok(readFileSync(stale.files[0].path).equals(data));
    assert.equal(server.requests.at(-1)!.headers.range, undefined);
  });

  it("abort keeps a resumable .part (Range + checksum) and removes one that cannot be resumed", async () => {
    const data = patternBytes(3_000_000, 12);
    for (const [name, meta, keep] of [["resumable.bin", { "file:checksum": sha256Multihash(data) }, true], ["plain.bin", {}, false]] as const) {
      const href = server.set(`/${name}`, { data, stallAt: 1_000_000 });
      const plan = planItem(item("ab", { k: { href, roles: ["data"], ...meta } }), { root, naming: "key", layout: "" });
      const controller = new AbortController();
      let seen = 0;
      const running = transferAsset({ ...plan.entries[0], path: join(root, name) }, {
        ...noAuth, ...FAST, signal: controller.signal, onBytes: (n) => { seen += n; if (seen >= 1_000_000) controller.abort(); },
      });
      await assert.rejects(running, (e: { code: string }) => e.code === "ABORTED");
      assert.equal(existsSync(join(root, `${name}.part`)), keep, name);
      assert.equal(existsSync(join(root, name)), false);
    }
  });

  it("bounded concurrency: never more than the global and per-host limits at once", async () => {
    const hosts = [server, await startAssetServer(), await startAssetServer()];
    try {
      let active = 0;
      let peak = 0;
      const hostOfKey = new Map<string, string>();
      const perHost = new Map<string, number>();
      const perHostPeak = new Map<string, number>();
      const assets: Record<string, Record<string, unknown>> = {};
      hosts.forEach((h, hi) => {
        for (let i = 0; i < 5; i += 1) assets[`h${hi}-${i}`] = { href: h.set(`/f${i}`, { data: patternBytes(400_000, i + 1) }), roles: ["data"] };
      });
      const pool = new TransferPool(4, 2);
      const out = await fetchItemAssets(item("many", assets), {
        root, pool, ...noAuth, ...FAST,
        onEvent: (e) => {
          if (e.event === "start") {
            const host = new URL(e.href).host;
            hostOfKey.set(e.key, host);
            active += 1;
            peak = Math.max(peak, active);
            perHost.set(host, (perHost.get(host) ?? 0) + 1);
            perHostPeak.set(host, Math.max(perHostPeak.get(host) ?? 0, perHost.get(host)!));
          } else if (e.event === "finish") {
            active -= 1;
            const host = hostOfKey.get(e.key)!;
            perHost.set(host, perHost.get(host)! - 1);
          }
        },
      });
      const peaks = [...perHostPeak.values()];
      assert.equal(peaks.length, 3);
      assert.ok(peaks.every((p) => p <= 2), `per-host peaks ${peaks}`);
      assert.deepEqual(peaks.slice(0, 2), [2, 2], "the first two hosts filled their two slots at once");
      assert.equal(out.files.length, 15);
      assert.ok(pool.inUse === 0 && pool.waiting === 0);
      assert.equal(peak, 4);
    } finally {
      await hosts[1].close();
      await hosts[2].close();
    }
  });

  it("fail-fast stops the Item's other transfers at the first error; keep-going finishes the rest", async () => {
    const data = patternBytes(2_000_000, 13);
    const assets = {
      bad: { href: server.set("/bad", { data: patternBytes(10) }), roles: ["data"], "file:checksum": sha256Multihash(data) },
      slow: { href: server.set("/slow", { data, stallAt: 500_000 }), roles: ["data"] },
    };
    const fast = await fetchItemAssets(item("ff", assets), { root, pool: new TransferPool(4, 4), ...noAuth, ...FAST, failFast: true });
    assert.deepEqual(fast.errors.map((e) => e.code), ["CHECKSUM"]);
    assert.deepEqual(fast.files, []);
    const going = await fetchItemAssets(item("kg", { ...assets, slow: { ...assets.slow, href: server.set("/slow2", { data }) } }), { root, pool: new TransferPool(4, 4), ...noAuth, ...FAST });
    assert.deepEqual(going.errors.map((e) => e.code), ["CHECKSUM"]);
    assert.deepEqual(going.files.map((f) => f.key), ["slow"]);
  });

  it("two Items writing the same file at the same time: the second is a COLLISION, not a second writer", async () => {
    const data = patternBytes(2_000_000, 14);
    const href = server.set("/shared.bin", { data, stallAt: 500_000 });
    const activePaths = new Set<string>();
    const controller = new AbortController();
    const options = { root, pool: new TransferPool(4, 4), ...noAuth, ...FAST, layout: "", activePaths, signal: controller.signal };
    let started = false;
    const first = fetchItemAssets(item("one", { a: { href, roles: ["data"] } }), { ...options, onEvent: (e) => { if (e.event === "start") started = true; } });
    while (!started) await new Promise((r) => setTimeout(r, 5));
    const second = await fetchItemAssets(item("two", { a: { href, roles: ["data"] } }), options);
    assert.deepEqual(second.errors.map((e) => e.code), ["COLLISION"]);
    assert.match(second.errors[0].message, /another download is writing .*a\.bin right now/);
    controller.abort();
    const firstOutcome = await first;
    assert.deepEqual(firstOutcome.errors.map((e) => e.code), ["ABORTED"]);
    assert.equal(activePaths.size, 0);
  });

  it(`hostile names download inside the folder only (${"real files"})`, async () => {
    const data = patternBytes(1000);
    const href = server.set("/h.bin", { data });
    const cases: Array<[string, string, string | undefined]> = [
      ["../../escape", "k", undefined], ["ok", "../../k", undefined], ["ok", "k", "../../../x.bin"], ["ok", "k2", "/etc/x.bin"],
      ["ok", "k3", "C:\\x.bin"], ["ok", "k4", "a\\..\\..\\..\\x.bin"], ["a/b", "k5", undefined], ["..", "k6", undefined],
    ];
    for (const [id, key, localPath] of cases) {
      await fetchItemAssets(item(id, { [key]: { href, roles: ["data"], ...(localPath ? { "file:local_path": localPath } : {}) } }), { root, pool: new TransferPool(2, 2), ...noAuth, ...FAST });
    }
    assert.deepEqual(readdirSync(tmp), ["root"], "nothing beside the target folder");
    assert.ok(listFiles(root).length >= 5);
    for (const f of listFiles(root)) assert.ok(!f.includes(".."), f);
  });
});

function cutsSharingAnOffset(cuts: number[]): number {
  return cuts.length - new Set(cuts).size;
}
