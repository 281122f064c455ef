import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { patternBytes, sha256Multihash, startAssetServer, type AssetTestServer } from "../helpers/asset-test-server";
import { builtNode, configNode, helper, repoRoot, startHelperServer, stopHelperServer, waitFor } from "../helpers/node-red";
import { listFiles } from "../helpers/files";

const TOKEN = "sandbox-token-asset-0123";
const assetNode = () => builtNode("datasphere-asset-fetch");

interface Received {
  msgs: any[];
  progress: any[];
  caught: any[];
}

async function get(url: string, token?: string): Promise<{ status: number; body: Buffer }> {
  const res = await request(url, { headers: token ? { authorization: `Token ${token}` } : {} });
  return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
}

describe("datasphere-asset-fetch node", function () {
  this.timeout(60_000);
  let sb: Sandbox;
  let tmp: string;

  before(startHelperServer);
  after(stopHelperServer);
  beforeEach(async () => {
    sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs: 0, keepAliveMs: 0, assetSize: 300_000 });
    tmp = mkdtempSync(join(tmpdir(), "asset-node-"));
  });
  afterEach(async () => {
    await helper.unload();
    await sb.close();
    rmSync(tmp, { recursive: true, force: true });
    delete process.env.DS_ASSET_DIR;
  });

  function flow(props: Record<string, unknown> = {}, apiUrl = sb.url): unknown[] {
    return [
      { id: "f1", type: "tab", label: "assets" },
      { id: "cfg", type: "datasphere-config", apiUrl, publishUrl: `${apiUrl.replace(/^http/, "ws")}/publish/v1/`, authMode: "header" },
      { id: "fetch", z: "f1", type: "datasphere-asset-fetch", server: "cfg", assets: "", directory: tmp, directoryType: "str", wires: [["out"], ["prog"]], ...props },
      { id: "out", z: "f1", type: "helper" },
      { id: "prog", z: "f1", type: "helper" },
      { id: "catcher", z: "f1", type: "catch", scope: ["fetch"], uncaught: false, wires: [["caught"]] },
      { id: "caught", z: "f1", type: "helper" },
    ];
  }

  async function load(props: Record<string, unknown> = {}, apiUrl?: string): Promise<Received> {
    await helper.load([configNode(), assetNode()], flow(props, apiUrl), { cfg: { token: TOKEN } });
    const received: Received = { msgs: [], progress: [], caught: [] };
    helper.getNode("out").on("input", (m: unknown) => received.msgs.push(m));
    helper.getNode("prog").on("input", (m: unknown) => received.progress.push(m));
    helper.getNode("caught").on("input", (m: unknown) => received.caught.push(m));
    return received;
  }

  async function sandboxItem(): Promise<any> {
    const { status, body } = await get(`${sb.url}/api/item/v1/sentinel-2-l2a-example`, TOKEN);
    assert.equal(status, 200);
    return JSON.parse(body.toString("utf8"));
  }

  it("the Usage-page case: B02_10m,B03_10m,B04_10m of the sandbox's item package, byte-identical and verified", async () => {
    const r = await load({ assets: "B02_10m,B03_10m,B04_10m", progress: true });
    const item = await sandboxItem();
    helper.getNode("fetch").receive({ payload: item, topic: "sentinel-2-l2a-example" });
    await waitFor(() => r.msgs.length === 1 || r.caught.length > 0, "output message");
    assert.deepEqual(r.caught.map((c) => c.error?.message), []);
    const msg = r.msgs[0];
    assert.equal(msg.topic, "sentinel-2-l2a-example");
    assert.deepEqual(msg.files.map((f: any) => [f.key, f.checksum, f.skipped]), [["B02_10m", "verified", false], ["B03_10m", "verified", false], ["B04_10m", "verified", false]]);
    for (const f of msg.files) {
      const original = item.assets[f.key].href;
      const remote = await get(original, TOKEN);
      const local = readFileSync(f.path);
      assert.ok(local.equals(remote.body), `${f.key} byte-identical`);
      assert.equal(f.bytes, item.assets[f.key]["file:size"]);
      assert.ok(f.path.startsWith(join(tmp, item.collection, item.id)), f.path);
      assert.equal(msg.payload.assets[f.key].href, f.path);
      assert.equal(msg.payload.assets[f.key].alternate.original.href, original);
    }
    assert.equal(msg.payload.assets.visual.href, item.assets.visual.href, "unselected assets keep their href");
    assert.equal(listFiles(tmp).filter((p) => p.endsWith(".part")).length, 0);
    const events = r.progress.map((p) => `${p.payload.event}:${p.payload.key}`).sort();
    assert.deepEqual(events, ["finish:B02_10m", "finish:B03_10m", "finish:B04_10m", "start:B02_10m", "start:B03_10m", "start:B04_10m"]);
    assert.ok(r.progress.every((p) => p.payload.event !== "finish" || p.payload.bytes === 300_000));
    const statuses = (helper.getNode("fetch").status as any).args.map((a: any[]) => a[0].text);
    assert.ok(statuses.includes("datasphere-asset-fetch.status.active"), statuses.join(","));
    assert.ok(statuses.includes("datasphere-asset-fetch.status.done"), statuses.join(","));
  });

  it("the Usage-page case on live Items: subscribe-in -> asset-fetch, files verified and byte-identical", async function () {
    const live = [
      { id: "f1", type: "tab", label: "live" },
      { id: "cfg", type: "datasphere-config", apiUrl: sb.url, publishUrl: sb.publishUrl, authMode: "header" },
      { id: "sub", z: "f1", type: "datasphere-subscribe-in", server: "cfg", package: "sentinel-2-l2a-live", wires: [["fetch"]] },
      { id: "fetch", z: "f1", type: "datasphere-asset-fetch", server: "cfg", assets: "B02_10m,B03_10m,B04_10m", directory: tmp, directoryType: "str", wires: [["out"]] },
      { id: "out", z: "f1", type: "helper" },
    ];
    await helper.load([configNode(), builtNode("datasphere-subscribe-in"), assetNode()], live, { cfg: { token: TOKEN } });
    const msgs: any[] = [];
    helper.getNode("out").on("input", (m: unknown) => msgs.push(m));
    await waitFor(() => sb.liveSubscriberCount("sentinel-2-l2a-live") > 0, "subscription connected");
    sb.publishLive("sentinel-2-l2a-live");
    sb.publishLive("sentinel-2-l2a-live");
    await waitFor(() => msgs.length === 2, "two live Items downloaded", 30_000);
    for (const msg of msgs) {
      assert.deepEqual(msg.files.map((f: any) => `${f.key}:${f.checksum}`), ["B02_10m:verified", "B03_10m:verified", "B04_10m:verified"]);
      for (const f of msg.files) {
        const remote = await get(msg.payload.assets[f.key].alternate.original.href, TOKEN);
        assert.ok(readFileSync(f.path).equals(remote.body), `${msg.payload.id} ${f.key} byte-identical`);
      }
    }
  });

  it("the example flow (examples/asset-fetch.json) downloads the three bands through dataset-pull", async function () {
    process.env.DATASPHERE_API_URL = sb.url;
    process.env.DATASPHERE_PUBLISH_URL = sb.publishUrl;
    // The examples' shared config node reads its token from DATASPHERE_TOKEN.
    process.env.DATASPHERE_TOKEN = TOKEN;
    try {
      const example = JSON.parse(readFileSync(join(repoRoot, "examples", "asset-fetch.json"), "utf8")) as any[];
      const nodes = example
        .filter((n) => n.type !== "inject" && n.type !== "comment")
        .map((n) => (n.type === "debug" ? { ...n, type: "helper" } : n.type === "datasphere-asset-fetch" ? { ...n, directory: tmp } : n));
      const config = nodes.find((n) => n.type === "datasphere-config");
      await helper.load([configNode(), builtNode("datasphere-dataset-pull"), assetNode()], nodes, { [config.id]: { token: TOKEN } });
      const files: any[] = [];
      const progress: any[] = [];
      helper.getNode("dsx-af-files").on("input", (m: any) => files.push(m));
      helper.getNode("dsx-af-progress").on("input", (m: any) => progress.push(m));
      helper.getNode("dsx-af-pull").receive({});
      await waitFor(() => files.length === 1, "example output", 30_000);
      assert.deepEqual(files[0].files.map((f: any) => `${f.key}:${f.checksum}`), ["B02_10m:verified", "B03_10m:verified", "B04_10m:verified"]);
      assert.equal(progress.length, 6);
    } finally {
      delete process.env.DATASPHERE_API_URL;
      delete process.env.DATASPHERE_PUBLISH_URL;
      delete process.env.DATASPHERE_TOKEN;
    }
  });

  it("Items from a dataset package: default selection (role data) with ${ENV} folder and a custom layout", async () => {
    process.env.DS_ASSET_DIR = join(tmp, "env-dir");
    const r = await load({ directory: "${DS_ASSET_DIR}", layout: "{year}/{id}", naming: "key", fsync: true });
    const items = await Promise.all([0, 1, 2].map((i) => sb.datasetItem("sentinel-2-l2a-sample", i)));
    for (const it of items) helper.getNode("fetch").receive({ payload: JSON.stringify(it) });
    await waitFor(() => r.msgs.length === 3 || r.caught.length > 0, "three messages");
    assert.deepEqual(r.caught.map((c) => c.error?.message), []);
    for (const msg of r.msgs) {
      assert.deepEqual(msg.files.map((f: any) => f.key).sort(), ["B02_10m", "B03_10m", "B04_10m"]);
      for (const f of msg.files) {
        assert.equal(f.checksum, "verified");
        assert.ok(f.path.startsWith(join(tmp, "env-dir", "2024", msg.payload.id, `${f.key}.jp2`)), f.path);
      }
    }
    assert.equal(listFiles(join(tmp, "env-dir")).length, 9);
  });

  it("a wrong checksum reaches Catch with CHECKSUM, the Item id, key and href (no token), and leaves no file", async () => {
    const r = await load({ assets: "B02_10m" });
    sb.faults.set({ wrongChecksum: true }, "asset");
    const item = await sandboxItem();
    helper.getNode("fetch").receive({ payload: item });
    await waitFor(() => r.caught.length === 1, "caught error");
    const err = r.caught[0].error;
    assert.match(err.message, new RegExp(`^DatasphereError: Item ${item.id}, asset B02_10m \\(http://127\\.0\\.0\\.1:\\d+/assets/.*\\): checksum mismatch \\(sha3-256`));
    assert.equal(err.code, "CHECKSUM");
    assert.deepEqual(r.caught[0].errors.map((e: any) => [e.code, e.itemId, e.key, e.href]), [["CHECKSUM", item.id, "B02_10m", item.assets.B02_10m.href]]);
    assert.ok(!JSON.stringify(r.caught[0]).includes(TOKEN));
    assert.equal(r.msgs.length, 0);
    assert.deepEqual(listFiles(tmp), []);
    // The failed transfer is no longer counted as active: the red status stays, no green "active" after it.
    const node = helper.getNode("fetch");
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const last = node.status.lastCall.args[0];
    assert.deepEqual([last.fill, last.text], ["red", "datasphere-asset-fetch.status.failed"]);
  });

  it("cuts (dropAfterBytes) and ignoreRange faults from the sandbox still end in verified files", async () => {
    await sb.close();
    sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs: 0, keepAliveMs: 0, assetSize: 300_000, assetSizes: { B02_10m: 6_000_000 } });
    const r = await load({ assets: "B02_10m" });
    const item = await sandboxItem();
    sb.faults.set({ dropAfterBytes: (n: number) => 200_000 + ((n * 7919) % 900_000), times: 6 }, "asset");
    helper.getNode("fetch").receive({ payload: item });
    await waitFor(() => r.msgs.length === 1 || r.caught.length > 0, "resumed download");
    assert.deepEqual(r.caught.map((c) => c.error?.message), []);
    assert.equal(r.msgs[0].files[0].checksum, "verified");
    const remote = await get(item.assets.B02_10m.href, TOKEN);
    assert.ok(readFileSync(r.msgs[0].files[0].path).equals(remote.body));

    assert.ok(sb.faults.injected >= 6, `faults injected: ${sb.faults.injected}`);

    sb.faults.set({ ignoreRange: true, dropAfterBytes: 2_500_000, times: 2 }, "asset");
    helper.getNode("fetch").receive({ payload: item, assets: "B02_10m" });
    await waitFor(() => r.msgs.length === 2 || r.caught.length > 0, "skip-if-valid second run");
    assert.equal(r.msgs[1].files[0].skipped, true, "a valid file is skipped");
    await helper.unload();
    const before = sb.faults.injected;
    const again = await load({ assets: "B02_10m", existing: "overwrite" });
    helper.getNode("fetch").receive({ payload: item });
    await waitFor(() => again.msgs.length === 1 || again.caught.length > 0, "restarted download");
    assert.deepEqual(again.caught.map((c) => c.error?.message), []);
    assert.equal(again.msgs[0].files[0].checksum, "verified");
    assert.ok(readFileSync(again.msgs[0].files[0].path).equals(remote.body));
    assert.ok(sb.faults.injected >= before + 2, "two cuts, then Range ignored on the retries");
  });

  it("a cross-origin redirect does not carry the token (recorded by the other server); listed hosts get it", async () => {
    const other: AssetTestServer = await startAssetServer();
    try {
      const item = await sandboxItem();
      const path = new URL(item.assets.B03_10m.href).pathname;
      const remote = await get(item.assets.B03_10m.href, TOKEN);
      other.set(decodeURIComponent(path), { data: remote.body });
      other.set(path, { data: remote.body });
      sb.faults.set({ redirectAssetsTo: other.url }, "asset");
      const r = await load({ assets: "B03_10m" });
      helper.getNode("fetch").receive({ payload: item });
      await waitFor(() => r.msgs.length === 1 || r.caught.length > 0, "redirected download");
      assert.deepEqual(r.caught.map((c) => c.error?.message), []);
      assert.equal(r.msgs[0].files[0].checksum, "verified");
      assert.equal(other.requests.length, 1);
      assert.equal(other.requests[0].headers.authorization, undefined, "no token to another origin");
      await helper.unload();
      const r2 = await load({ assets: "B03_10m", tokenHosts: other.url, existing: "overwrite" });
      helper.getNode("fetch").receive({ payload: item });
      await waitFor(() => r2.msgs.length === 1 || r2.caught.length > 0, "listed host");
      assert.equal(other.requests[1].headers.authorization, `Token ${TOKEN}`);
    } finally {
      await other.close();
    }
  });

  it("keep-going sends the good files with msg.errors and reports the bad ones; fail-fast sends nothing", async () => {
    const item = await sandboxItem();
    item.assets.local = { href: "file:///etc/passwd", roles: ["data"] };
    item.assets.evil = { href: item.assets.B02_10m.href, roles: ["data"], "file:local_path": "../../../evil.jp2", "file:checksum": item.assets.B02_10m["file:checksum"] };
    item.assets.twin = { ...item.assets.B03_10m };
    item.assets.twin["file:local_path"] = "same.jp2";
    item.assets.twin2 = { ...item.assets.B03_10m, "file:local_path": "same.jp2" };
    const r = await load({ assets: "B02_10m,local,evil,twin,twin2" });
    helper.getNode("fetch").receive({ payload: item });
    await waitFor(() => r.caught.length === 1, "caught");
    assert.equal(r.msgs.length, 1);
    assert.deepEqual(r.msgs[0].files.map((f: any) => f.key), ["B02_10m", "evil"]);
    assert.equal(r.msgs[0].files[1].path, join(tmp, item.collection, item.id, "evil.jp2"), "unsafe local path falls back to the key");
    assert.deepEqual(r.msgs[0].errors.map((e: any) => `${e.key}:${e.code}`).sort(), ["local:UNSUPPORTED", "twin2:COLLISION", "twin:COLLISION"]);
    assert.match(r.caught[0].error.message, /^DatasphereError: 3 assets failed: /);
    assert.match(r.caught[0].error.message, /file:\/\/ hrefs from a remote document are refused/);
    assert.deepEqual(readdirSync(tmp), [item.collection]);
    await helper.unload();
    const f = await load({ assets: "B02_10m,local", failFast: true, existing: "overwrite" });
    helper.getNode("fetch").receive({ payload: item });
    await waitFor(() => f.caught.length === 1, "fail-fast error");
    assert.equal(f.msgs.length, 0);
    assert.equal(f.caught[0].error.message.includes("file://"), true);
  });

  it("requested keys an Item lacks are skipped and listed on msg.skipped; an error only with Missing keys = error", async () => {
    const item = await sandboxItem();
    const r = await load({ assets: "B02_10m,SR_B1.TIF,B03_10m,MTL.txt" });
    helper.getNode("fetch").receive({ payload: item });
    await waitFor(() => r.msgs.length === 1 || r.caught.length > 0, "output");
    assert.deepEqual(r.caught, []);
    assert.deepEqual(r.msgs[0].files.map((f: any) => [f.key, f.checksum]), [["B02_10m", "verified"], ["B03_10m", "verified"]]);
    assert.deepEqual(r.msgs[0].skipped, ["SR_B1.TIF", "MTL.txt"]);
    await helper.unload();
    const strict = await load({ assets: "B02_10m,SR_B1.TIF", missingKeys: "error", existing: "overwrite" });
    helper.getNode("fetch").receive({ payload: item });
    await waitFor(() => strict.caught.length === 1, "missing key error");
    assert.equal(strict.caught[0].error.code, "NOT_FOUND");
    assert.match(strict.caught[0].error.message, /asset SR_B1\.TIF: no asset with this key/);
  });

  it("an Item whose default selection is empty: sent on, yellow status, and a warning naming the Item", async () => {
    const r = await load({});
    const item = {
      type: "Feature", stac_version: "1.0.0", id: "only-previews", collection: "c", geometry: null, properties: { datetime: "2024-01-01T00:00:00Z" }, links: [],
      assets: { thumbnail: { href: `${sb.url}/t.png`, type: "image/png", roles: ["thumbnail"] }, meta: { href: `${sb.url}/m.xml`, type: "application/xml", roles: ["metadata"] } },
    };
    const node = helper.getNode("fetch");
    helper.getNode("fetch").receive({ payload: item });
    await waitFor(() => r.msgs.length === 1, "the Item is sent on");
    assert.deepEqual(r.msgs[0].files, []);
    assert.deepEqual(r.msgs[0].skipped, []);
    await waitFor(() => node.warn.called, "a warning");
    assert.equal(node.warn.lastCall.args[0], "datasphere-asset-fetch.warnings.nothingSelected");
    await waitFor(() => node.status.lastCall?.args[0]?.fill === "yellow", "yellow status");
    assert.equal(node.status.lastCall.args[0].text, "datasphere-asset-fetch.status.nothingSelected");
    assert.deepEqual(r.caught, []);
  });

  it("errors carry a stable code: a 403 from a host that got no token is FORBIDDEN; relative hrefs are one short RELATIVE_HREF per Item", async () => {
    const foreign = await startAssetServer();
    try {
      const r = await load({});
      const base = { type: "Feature", stac_version: "1.0.0", collection: "c", geometry: null, properties: { datetime: "2024-01-01T00:00:00Z" }, links: [] };
      const denied = foreign.set("/sas.tif", { data: Buffer.alloc(0), failFirst: { status: 403, count: 99 } });
      helper.getNode("fetch").receive({ payload: { ...base, id: "sas", assets: { a: { href: `${denied}?sig=old`, type: "image/tiff", roles: ["data"] } } } });
      const relative = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`b${i}`, { href: `./bands/b${i}.tif`, roles: ["data"] }]));
      helper.getNode("fetch").receive({ payload: { ...base, id: "rel", assets: relative } });
      await waitFor(() => r.caught.length === 2, "two errors");
      const byItem = Object.fromEntries(r.caught.map((c) => [c.error.message.includes("sas") ? "sas" : "rel", c.error]));
      assert.equal(byItem.sas.code, "FORBIDDEN");
      assert.match(byItem.sas.message, /refused the download \(HTTP 403\); no Data Sphere token was sent there, so the token is not the cause/);
      assert.doesNotMatch(byItem.sas.message, /token missing or invalid|sig=old/);
      assert.equal(byItem.rel.code, "RELATIVE_HREF");
      assert.ok(byItem.rel.message.length < 400, `${byItem.rel.message.length} characters`);
      assert.match(byItem.rel.message, /Item rel: 40 assets have relative hrefs/);
    } finally {
      await foreign.close();
    }
  });

  it("rejects a payload that is not an Item, and an unknown layout placeholder, through done(err)", async () => {
    const r = await load({ layout: "{bogus}" });
    helper.getNode("fetch").receive({ payload: { type: "Feature", id: "x", assets: {} } });
    await waitFor(() => r.caught.length === 1, "layout error");
    assert.match(r.caught[0].error.message, /datasphere-asset-fetch.errors.badLayout/);
    await helper.unload();
    const r2 = await load({});
    helper.getNode("fetch").receive({ payload: { type: "Collection", id: "c" } });
    helper.getNode("fetch").receive({ payload: "{not json" });
    await waitFor(() => r2.caught.length === 2, "payload errors");
    const texts = r2.caught.map((c) => c.error.message).sort();
    assert.match(texts[0], /errors.notJson/);
    assert.match(texts[1], /msg.payload is not a STAC Item/);
  });

  it("10 partial redeploys leave one user on the config node, no extra listeners, and a working node", async () => {
    await load({ assets: "B04_10m" });
    const cfg = helper.getNode("cfg");
    const listeners = () => cfg.eventNames().reduce((n: number, e: string | symbol) => n + cfg.listenerCount(e), 0);
    const before = listeners();
    for (let i = 0; i < 10; i += 1) await helper.setFlows(flow({ assets: "B04_10m", name: `v${i}` }), "nodes", { cfg: { token: TOKEN } });
    assert.equal(helper.getNode("cfg"), cfg, "the config node was not restarted");
    assert.equal(cfg.users.size, 1);
    assert.equal(listeners(), before);
    const received: any[] = [];
    helper.getNode("out").on("input", (m: unknown) => received.push(m));
    helper.getNode("fetch").receive({ payload: await sandboxItem() });
    await waitFor(() => received.length === 1, "download after redeploys");
    assert.equal(received[0].files[0].checksum, "verified");
  });

  it("close aborts transfers, removes a .part that cannot be resumed and keeps one that can", async () => {
    const server = await startAssetServer();
    try {
      const data = patternBytes(4_000_000, 3);
      const item = {
        type: "Feature", stac_version: "1.0.0", id: "closing", collection: "c", geometry: null, properties: { datetime: null }, links: [],
        assets: {
          plain: { href: server.set("/plain.bin", { data, stallAt: 1_000_000 }), roles: ["data"] },
          checked: { href: server.set("/checked.bin", { data, stallAt: 1_000_000 }), roles: ["data"], "file:checksum": sha256Multihash(data) },
        },
      };
      const r = await load({});
      helper.getNode("fetch").receive({ payload: item });
      const dir = join(tmp, "c", "closing");
      await waitFor(() => existsSync(join(dir, "plain.bin.part")) && statSync(join(dir, "plain.bin.part")).size >= 1_000_000 && existsSync(join(dir, "checked.bin.part")) && statSync(join(dir, "checked.bin.part")).size >= 1_000_000, "both stalled");
      await helper.unload();
      // Only an aborted transfer removes the .part it cannot resume: the abort, not a deadline, ended close.
      assert.deepEqual(listFiles(dir), ["checked.bin.part"]);
      assert.equal(r.msgs.length, 0);
    } finally {
      await server.close();
    }
  });
});
