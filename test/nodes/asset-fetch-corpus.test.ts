import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { patternBytes, sha256Multihash, startAssetServer, type AssetTestServer } from "../helpers/asset-test-server";
import { corpusDocuments, corpusRoot, requireCorpus } from "../helpers/corpus";
import { builtNode, configNode, helper, startHelperServer, stopHelperServer, waitFor } from "../helpers/node-red";

const TOKEN = "sandbox-token-corpus-0123";
const PARENT = "corpus-e2e";

interface Served {
  item: Record<string, any>;
  bytes: Map<string, Buffer>;
  legacy: boolean;
}

/** Every Item of the valid corpus (FeatureCollections split), with each asset served by `server`: hrefs rewritten, sizes and checksums from the served bytes. */
function servedCorpus(server: AssetTestServer): Served[] {
  const out: Served[] = [];
  let n = 0;
  for (const doc of corpusDocuments("valid")) {
    const json = doc.json as Record<string, any>;
    const items = json.type === "Feature" ? [json] : json.type === "FeatureCollection" ? (json.features as Array<Record<string, any>>) : [];
    for (const original of items) {
      n += 1;
      const item = structuredClone(original);
      // Spec examples share ids across versions: one per Item here, so each is followed end to end.
      item.id = `${n}-${String(item.id)}`;
      const bytes = new Map<string, Buffer>();
      for (const [i, [key, asset]] of Object.entries(item.assets as Record<string, any>).entries()) {
        const data = patternBytes(1000 + ((n * 37 + i * 101) % 3000), n * 1000 + i + 1);
        const tail = String(asset.href).replace(/^[a-z0-9+.-]+:\/\/[^/]*/i, "").replace(/^\.?\/*/, "").split("?")[0];
        const href = server.set(`/${n}/${i}/${tail}`, { data });
        asset.href = href;
        if (asset.alternate && typeof asset.alternate === "object") for (const alt of Object.values(asset.alternate as Record<string, any>)) alt.href = href;
        asset["file:size"] = data.length;
        asset["file:checksum"] = sha256Multihash(data);
        delete asset["checksum:multihash"];
        bytes.set(key, data);
      }
      out.push({ item, bytes, legacy: /^1\.0\.0-|^0\./.test(String(item.stac_version)) });
    }
  }
  return out;
}

describe("the valid corpus through asset-fetch, then publish-out and back over the subscription (real Node-RED runtime)", function () {
  this.timeout(240_000);
  let sb: Sandbox;
  let server: AssetTestServer;
  let tmp: string;

  before(startHelperServer);
  after(stopHelperServer);
  beforeEach(async function () {
    requireCorpus(this);
    sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs: 0, keepAliveMs: 0 });
    server = await startAssetServer();
    tmp = mkdtempSync(join(tmpdir(), "asset-corpus-"));
  });
  afterEach(async () => {
    await helper.unload();
    await server?.close();
    await sb?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("every selected file byte-identical and inside the folder; every Item downloads or warns; published and received back equal as JSON; legacy validated as migrated", async () => {
    const served = servedCorpus(server);
    assert.ok(served.length >= 25, `${served.length} Items`);
    const flow = [
      { id: "f1", type: "tab", label: "corpus" },
      { id: "cfg", type: "datasphere-config", apiUrl: sb.url, publishUrl: sb.publishUrl, authMode: "header" },
      { id: "fetch", z: "f1", type: "datasphere-asset-fetch", server: "cfg", assets: "", directory: tmp, directoryType: "str", concurrency: 8, perHost: 8, wires: [["pub", "fetched"]] },
      { id: "fetched", z: "f1", type: "helper" },
      { id: "pub", z: "f1", type: "datasphere-publish-out", server: "cfg", activeParent: PARENT, schemaCheck: "reject", schemaDir: join(corpusRoot, "schemas") },
      { id: "sub", z: "f1", type: "datasphere-subscribe-in", server: "cfg", package: PARENT, wires: [["back"]] },
      { id: "back", z: "f1", type: "helper" },
      { id: "catcher", z: "f1", type: "catch", scope: ["fetch", "pub"], uncaught: false, wires: [["caught"]] },
      { id: "caught", z: "f1", type: "helper" },
    ];
    await helper.load([configNode(), builtNode("datasphere-asset-fetch"), builtNode("datasphere-publish-out"), builtNode("datasphere-subscribe-in")], flow, { cfg: { token: TOKEN } });
    const fetched: any[] = [];
    const back: any[] = [];
    const caught: any[] = [];
    helper.getNode("fetched").on("input", (m: any) => fetched.push(m));
    helper.getNode("back").on("input", (m: any) => back.push(m));
    helper.getNode("caught").on("input", (m: any) => caught.push(m));
    await waitFor(() => sb.liveSubscriberCount(PARENT) > 0, "subscription connected");

    const fetch = helper.getNode("fetch");
    for (const s of served) fetch.receive({ payload: s.item });
    await waitFor(() => fetched.length + caught.length >= served.length || caught.length > 0, "every Item fetched", 180_000);
    assert.deepEqual(caught.map((c) => `${c.error?.code}: ${c.error?.message}`), []);

    // Files: byte-identical, inside the folder (real path), one per selected asset.
    const realRoot = realpathSync(tmp);
    let files = 0;
    let empty = 0;
    for (const msg of fetched) {
      const s = served.find((x) => x.item.id === msg.payload.id)!;
      if (msg.files.length === 0) empty += 1;
      for (const f of msg.files) {
        const real = realpathSync(f.path);
        const rel = relative(realRoot, real);
        assert.ok(!rel.startsWith("..") && !rel.startsWith(sep), `${s.item.id} ${f.key}: ${real} outside ${realRoot}`);
        assert.ok(readFileSync(real).equals(s.bytes.get(f.key)!), `${s.item.id} ${f.key} byte-identical`);
        assert.equal(f.checksum, "verified");
        files += 1;
      }
    }
    const warnings = (fetch.warn as { args: unknown[][] }).args.filter((a) => a[0] === "datasphere-asset-fetch.warnings.nothingSelected").length;
    assert.equal(warnings, empty, "every Item that downloads nothing is warned about");
    assert.ok(empty <= 1, `${empty} Items selected nothing`);
    assert.ok(files >= 300, `${files} files`);

    // Published (schema check: reject) and received back over the subscription, equal as JSON.
    await waitFor(() => back.length + caught.length >= fetched.length, "every Item back over the subscription", 60_000);
    assert.deepEqual(caught.map((c) => `${c.error?.code}: ${c.error?.message}`), []);
    assert.equal(back.length, fetched.length);
    for (const msg of fetched) {
      const received = back.find((b) => b.payload?.id === msg.payload.id);
      assert.ok(received, `${msg.payload.id} came back`);
      assert.deepEqual(received.payload, JSON.parse(JSON.stringify(msg.payload)), `${msg.payload.id} equal as JSON`);
    }

    // Legacy versions were validated as migrated copies (and published as they were).
    const legacy = served.filter((s) => s.legacy);
    assert.ok(legacy.length >= 2, `${legacy.length} legacy Items`);
    const logs = (helper.getNode("pub").log as { args: unknown[][] }).args.map((a) => String(a[0]));
    for (const s of legacy) {
      assert.ok(logs.some((l) => l.includes(`"${s.item.id}"`) && l.includes(`validated as migrated from ${s.item.stac_version}`)), `${s.item.id}: ${logs.join(" | ")}`);
      const received = back.find((b) => b.payload?.id === s.item.id);
      assert.equal(received.payload.stac_version, s.item.stac_version, "published as the user's document, not the migrated copy");
    }
  });

  it("publish-out in reject mode: one 'Not published:' prefix, the real cause of a schema failure, and a document no schema can check refused with that reason", async () => {
    const flow = [
      { id: "f1", type: "tab", label: "reject" },
      { id: "cfg", type: "datasphere-config", apiUrl: sb.url, publishUrl: sb.publishUrl, authMode: "header" },
      { id: "pub", z: "f1", type: "datasphere-publish-out", server: "cfg", activeParent: PARENT, schemaCheck: "reject", schemaDir: join(corpusRoot, "schemas") },
      { id: "catcher", z: "f1", type: "catch", scope: ["pub"], uncaught: false, wires: [["caught"]] },
      { id: "caught", z: "f1", type: "helper" },
    ];
    await helper.load([configNode(), builtNode("datasphere-publish-out")], flow, { cfg: { token: TOKEN } });
    const caught: any[] = [];
    helper.getNode("caught").on("input", (m: any) => caught.push(m));
    const pub = helper.getNode("pub");
    const noLink = corpusDocuments("invalid").find((d) => d.file.includes("collection-without-link"))!.json as Record<string, unknown>;
    const valid = corpusDocuments("valid").find((d) => d.file === "stac-spec-v1.1.0__core-item.json")!.json as Record<string, unknown>;
    pub.receive({ payload: noLink });
    pub.receive({ payload: { ...valid, id: "from-the-future", stac_version: "9.9.9" } });
    pub.receive({ payload: { type: "Feature", id: "broken" } });
    await waitFor(() => caught.length === 3, "three refusals");
    // The test runtime does not translate: render the catalog text as Node-RED would, from the error's detail.
    const catalog = JSON.parse(readFileSync(join(__dirname, "../../../nodes/locales/en-US/datasphere-publish-out.json"), "utf8"))["datasphere-publish-out"].errors;
    const errors = (pub.error as { args: unknown[][] }).args.map((a) => a[0] as { code: string; details: { detail: string } });
    assert.equal(errors.length, 3);
    const shown = errors.map((e) => ({ code: e.code, text: String(catalog.invalidStac).replace("__detail__", e.details.detail) }));
    for (const e of shown) assert.doesNotMatch(e.text, /not published:.*not published:/i, e.text);
    const byId = (id: string) => shown.find((e) => e.text.includes(id))!;
    assert.equal(byId(String(noLink.id)).code, "INVALID_STAC");
    assert.match(byId(String(noLink.id)).text, /^Not published: Item "S2B_MSIL2A_20240110T100309.*collection: the Item names collection "sentinel-2-l2a" but has no link with rel "collection"; add \{"rel": "collection"/);
    assert.match(byId(String(noLink.id)).text, /\(schema https:\/\/schemas\.stacspec\.org\/v1\.1\.0\/item-spec\/json-schema\/item\.json\)/);
    assert.match(byId("from-the-future").text, /cannot be validated: no core schema for STAC 9\.9\.9 in the schema folder/);
    assert.match(byId("broken").text, /^Not published: Item "broken" is not a valid STAC Item/);
    assert.equal(sb.published.length, 0, "nothing went out");
  });
});
