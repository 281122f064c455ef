import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { builtNode, configNode, helper, repoRoot, startHelperServer, stopHelperServer, waitFor } from "../helpers/node-red";
import { coreNode, joinNode, runtimeHooks, withRuntimeHooks, type NodeModule } from "../helpers/node-red-core";
import { slowSink } from "../helpers/slow-sink";
import { startReplayStacApi, type ReplayStacApi } from "../helpers/replay-stac-api";

type Msg = Record<string, any>;

const apiModule = builtNode("datasphere-stac-api");
const searchWithHooks = withRuntimeHooks(builtNode("datasphere-stac-search"));

const S2 = "sentinel-2-l2a";

/**
 * A STAC API that serves `pages` copies of one real page (500 sandbox Items) along GET next links:
 * 100k Items without the generator's cost, so the test measures the node, not the sandbox.
 */
function startReplayApi(items: unknown[], pages: number): Promise<ReplayStacApi> {
  const features = JSON.stringify(items);
  return startReplayStacApi((page, base) => {
    const links = page + 1 < pages ? `[{"rel":"next","href":"${base}/search?page=${page + 1}"}]` : "[]";
    return `{"type":"FeatureCollection","numberMatched":${pages * items.length},"features":${features},"links":${links}}`;
  });
}

describe("datasphere-stac-search node (Node-RED runtime, sandbox STAC API)", function () {
  this.timeout(120_000);
  let sb: Sandbox;
  let expected: string[];
  before(async () => {
    await startHelperServer();
    sb = await startSandbox({ port: 0, rate: 0, heartbeatMs: 0, keepAliveMs: 0 });
    expected = [];
    for (let i = 0; i < 500; i++) expected.push(String((await sb.datasetItem("sentinel-2-l2a-sample", i)).id));
  });
  after(async () => {
    await sb.close();
    await stopHelperServer();
  });
  afterEach(async () => {
    sb.faults.clear();
    sb.stacApi.settings.withoutClasses = [];
    sb.stacApi.settings.requireHeader = undefined;
    await helper.unload();
  });

  const api = (props: Record<string, unknown> = {}) => ({ id: "api", type: "datasphere-stac-api", url: sb.stacApi.url, authMode: "none", ...props });
  const search = (props: Record<string, unknown> = {}, wires: string[][] = [["items"], ["done"]]) => ({
    id: "search", type: "datasphere-stac-search", server: "api", collections: S2, collectionsType: "str", limit: "50", limitType: "num", window: 50, wires, ...props,
  });

  async function load(flow: unknown[], modules: NodeModule[] = [], credentials: Record<string, unknown> = {}): Promise<{ items: Msg[]; done: Msg[] }> {
    await helper.load([apiModule, searchWithHooks, ...modules], flow, credentials);
    const out = { items: [] as Msg[], done: [] as Msg[] };
    helper.getNode("items")?.on("input", (m: Msg) => out.items.push(m));
    helper.getNode("done")?.on("input", (m: Msg) => out.done.push(m));
    return out;
  }

  async function searchOnce(out: { done: Msg[] }, msg: Msg = {}): Promise<Msg> {
    const before = out.done.length;
    helper.getNode("search").receive(msg);
    await waitFor(() => out.done.length > before, "completion message", 60_000);
    return out.done[before];
  }

  it("searches with its typed properties: every Item once, msg.parts for join, a completion with pages and numberMatched", async () => {
    const out = await load([api(), search({ datetime: "2024-01-01/..", filter: '{"op": ">=", "args": [{"property": "eo:cloud_cover"}, 0]}', filterType: "json" }), { id: "items", type: "helper" }, { id: "done", type: "helper" }]);
    const done = await searchOnce(out);
    assert.equal(done.payload.error, undefined, JSON.stringify(done.payload.error));
    assert.deepEqual(out.items.map((m) => m.payload.id), expected);
    assert.deepEqual(out.items.map((m) => m.parts.index), expected.map((_, i) => i));
    assert.equal(out.items[499].parts.count, 500);
    assert.equal(out.items[0].parts.count, undefined);
    assert.equal(done.payload.items, 500);
    assert.equal(done.payload.pages, 10);
    assert.equal(done.payload.cursor, null);
    assert.equal(done.payload.flowControl, "hooks");
    const received = sb.stacApi.searches[sb.stacApi.searches.length - 1];
    assert.equal(received.query["filter-lang"], "cql2-json");
    assert.equal(received.query.datetime, "2024-01-01T00:00:00Z/..");
  });

  it("every parameter can come from msg; POST sends them as JSON", async () => {
    const out = await load([api(), search(), { id: "items", type: "helper" }, { id: "done", type: "helper" }]);
    const done = await searchOnce(out, { method: "POST", collections: [S2], bbox: [-180, -90, 180, 90], datetime: ["2024-01-02", "2024-01-02"], sortby: "-datetime", fields: "id,properties.datetime", filter: "eo:cloud_cover >= 0", limit: 5, maxItems: 12 });
    assert.equal(done.payload.error, undefined, JSON.stringify(done.payload.error));
    assert.deepEqual(out.items.map((m) => m.payload.id), expected.slice(36, 48).reverse());
    assert.deepEqual(Object.keys(out.items[0].payload).sort(), ["collection", "id", "properties", "type"]);
    const received = sb.stacApi.searches[sb.stacApi.searches.length - 1];
    assert.equal(received.method, "POST");
    assert.deepEqual((received.body as Msg).sortby, [{ field: "datetime", direction: "desc" }]);
    assert.equal((received.body as Msg).limit, 5);
    assert.equal(done.payload.pages, 3);
  });

  it("an unsupported parameter: UNSUPPORTED in the completion and to Catch, nothing searched", async () => {
    sb.stacApi.settings.withoutClasses = ["https://api.stacspec.org/v1.0.0/item-search#sort"];
    const out = await load([api(), search({ sortby: "-datetime" }), { id: "items", type: "helper" }, { id: "done", type: "helper" }]);
    const before = sb.stacApi.searches.length;
    const done = await searchOnce(out);
    assert.equal(done.payload.error.code, "UNSUPPORTED");
    assert.match(done.payload.error.message, /does not support sortby/);
    assert.equal(sb.stacApi.searches.length, before);
    assert.equal(out.items.length, 0);
    const search1 = helper.getNode("search");
    await waitFor(() => (search1.error as { called: boolean }).called, "error reported to Catch");
  });

  it("arrays of N into a join: one joined array with every Item", async () => {
    const flow = [api(), search({ output: "array", arraySize: 64 }, [["j1"], ["done"]]), { id: "j1", type: "join", mode: "auto", wires: [["joined"]] }, { id: "joined", type: "helper" }, { id: "done", type: "helper" }];
    const out = await load(flow, [joinNode]);
    const joined: Msg[] = [];
    helper.getNode("joined").on("input", (m: Msg) => joined.push(m));
    const done = await searchOnce(out);
    assert.equal(done.payload.messages, 8);
    await waitFor(() => joined.length === 1, "joined");
    assert.deepEqual((joined[0].payload as Msg[]).flat().map((i: Msg) => i.id), expected);
  });

  it("stop, then resume from the cursor: every Item exactly once", async () => {
    const out = await load([api(), search({ window: 5 }, [["sink"], ["done"]]), { id: "sink", type: "slow-sink", holdMs: 5, keep: "ids" }, { id: "done", type: "helper" }], [slowSink]);
    const node = helper.getNode("search");
    const sink = helper.getNode("sink");
    node.receive({});
    await waitFor(() => sink.count >= 60, "some Items");
    node.receive({ action: "stop" });
    await waitFor(() => out.done.length === 1, "completion");
    const first = out.done[0].payload;
    assert.equal(first.stopped, true);
    assert.ok(first.items >= 60 && first.items < 500, String(first.items));
    assert.equal(first.cursor.kind, "stac-search");
    await waitFor(() => sink.count === first.items, "in-flight Items arrive");
    const second = await searchOnce(out, { resume: first.cursor });
    assert.equal(second.payload.items, 500 - first.items);
    await waitFor(() => sink.count === 500, "all Items");
    assert.deepEqual(sink.ids, expected);
  });

  it("pacing: each msg.action = next sends exactly the next page; stop while waiting; resume; the completion follows the last page", async () => {
    const statusNode = coreNode("common/25-status.js");
    const flow = [
      api(),
      search({ pacing: "next" }),
      { id: "plain", type: "datasphere-stac-search", server: "api", collections: S2, collectionsType: "str", wires: [[], []] },
      { id: "items", type: "helper" },
      { id: "done", type: "helper" },
      { id: "watch", type: "status", scope: ["search"], wires: [["seen"]] },
      { id: "seen", type: "helper" },
    ];
    const out = await load(flow, [statusNode]);
    const waits: number[] = [];
    helper.getNode("seen").on("input", (m: Msg) => m.status.fill === "blue" && waits.push(out.items.length));
    const node = helper.getNode("search");
    const ids = () => out.items.map((m) => m.payload.id);
    /** The node says it waits for next (it can send nothing more until then), and what it sent has arrived. */
    async function pageDone(waitsSoFar: number, items: number): Promise<void> {
      await waitFor(() => waits.length === waitsSoFar && out.items.length >= items, `waiting for next after ${items} Items`);
      assert.deepEqual(ids(), expected.slice(0, items), `exactly the first ${items} Items`);
      assert.ok(out.items.every((m) => m.parts.count === undefined), "the sequence is still open");
    }

    node.receive({});
    await pageDone(1, 50);
    for (let page = 2; page <= 3; page++) {
      node.receive({ action: "next" });
      await pageDone(page, page * 50);
    }
    assert.equal(out.done.length, 0);
    node.receive({ action: "stop" });
    await waitFor(() => out.done.length === 1, "completion after stop");
    const stopped = out.done[0].payload;
    assert.equal(stopped.stopped, true);
    assert.equal(stopped.items, 151, "the sequence is closed by the waiting page's first Item");
    await waitFor(() => out.items.length === 151, "the closing Item");
    assert.equal(out.items[150].parts.count, 151);
    assert.deepEqual(ids(), expected.slice(0, 151));
    assert.deepEqual({ skip: stopped.cursor.skip, delivered: stopped.cursor.delivered }, { skip: 1, delivered: 151 });

    // Resume: the rest of page 4 at once, then one page per next; the completion without a further next.
    out.items.length = 0;
    node.receive({ resume: stopped.cursor });
    await waitFor(() => waits.length === 4 && out.items.length >= 49, "the rest of page 4");
    assert.deepEqual(ids(), expected.slice(151, 200));
    for (let page = 5; page <= 9; page++) {
      node.receive({ action: "next" });
      await waitFor(() => waits.length === page && out.items.length >= page * 50 - 151, `page ${page}`);
      assert.deepEqual(ids(), expected.slice(151, page * 50));
    }
    assert.equal(out.done.length, 1, "no completion before the last page");
    node.receive({ action: "next" });
    await waitFor(() => out.done.length === 2, "completion after the last page");
    const finished = out.done[1].payload;
    assert.equal(finished.error, undefined, JSON.stringify(finished.error));
    assert.equal(finished.items, 349);
    assert.equal(finished.cursor, null);
    await waitFor(() => out.items.length === 349, "the last page");
    assert.deepEqual(ids(), expected.slice(151));
    assert.equal(out.items[348].parts.count, 349);
    assert.equal(waits.length, 9, "no wait after the last page");

    // next without the pacing option is refused with a reason.
    const plain = helper.getNode("plain");
    plain.receive({ action: "next" });
    await waitFor(() => (plain.error as { called: boolean }).called, "next refused");
    assert.match(String((plain.error as { args: unknown[][] }).args[0][0]), /nextNeedsPacing|needs the pacing option/);
  });

  it("pacing with arrays: no array spans two pages; nexts sent at once add up; a join gets the whole sequence", async () => {
    const flow = [api(), search({ pacing: "next", output: "array", arraySize: 20 }, [["items", "j1"], ["done"]]), { id: "j1", type: "join", mode: "auto", wires: [["joined"]] }, { id: "joined", type: "helper" }, { id: "items", type: "helper" }, { id: "done", type: "helper" }];
    const out = await load(flow, [joinNode]);
    const joined: Msg[] = [];
    helper.getNode("joined").on("input", (m: Msg) => joined.push(m));
    const node = helper.getNode("search");
    node.receive({});
    await waitFor(() => out.items.length >= 3, "the first page");
    for (let i = 0; i < 9; i++) node.receive({ action: "next" });
    await waitFor(() => out.done.length === 1 && joined.length === 1, "completion and join");
    assert.equal(out.done[0].payload.error, undefined, JSON.stringify(out.done[0].payload.error));
    assert.deepEqual(out.items.map((m) => m.payload.length), new Array(10).fill([20, 20, 10]).flat());
    assert.equal(out.done[0].payload.messages, 30);
    assert.deepEqual((joined[0].payload as Msg[]).flat().map((i: Msg) => i.id), expected);
  });

  it("close during a search aborts it and removes its message hooks, sending nothing more", async () => {
    const out = await load([api(), search({ window: 5 }, [["sink"], ["done"]]), { id: "sink", type: "slow-sink", holdMs: 50, keep: "count" }, { id: "done", type: "helper" }], [slowSink]);
    const sink = helper.getNode("sink");
    helper.getNode("search").receive({});
    await waitFor(() => sink.count >= 5, "searching");
    assert.ok(runtimeHooks.has("onComplete.datasphereStacSearchsearch"), "hooks registered while searching");
    await helper.unload();
    assert.ok(!runtimeHooks.has("onComplete.datasphereStacSearchsearch"), "hooks removed at close");
    assert.equal(out.done.length, 0, "no completion at close");
  });

  it("429 and a cut page are retried; a bearer secret from an environment variable reaches the API", async () => {
    process.env.STAC_TEST_SECRET = "env-secret-123";
    sb.stacApi.settings.requireHeader = { name: "authorization", value: "Bearer env-secret-123" };
    sb.faults.set({ failNext: { count: 1, status: 429, retryAfter: 1 } }, "stac-search");
    const out = await load([api({ authMode: "bearer", tokenSource: "env", tokenEnv: "STAC_TEST_SECRET" }), search({ retries: 3 }), { id: "items", type: "helper" }, { id: "done", type: "helper" }]);
    const done = await searchOnce(out);
    assert.equal(done.payload.error, undefined, JSON.stringify(done.payload.error));
    assert.deepEqual(out.items.map((m) => m.payload.id), expected);
    assert.ok(!JSON.stringify(out.done).includes("env-secret-123"));
    sb.faults.set({ dropAfterBytes: 5000, times: 1 }, "stac-search");
    const again = await searchOnce(out);
    assert.equal(again.payload.items, 500);
    delete process.env.STAC_TEST_SECRET;
  });

  it("a missing secret makes the config unusable, with a clear reason", async () => {
    delete process.env.STAC_NOT_SET;
    const out = await load([api({ authMode: "bearer", tokenSource: "env", tokenEnv: "STAC_NOT_SET" }), search(), { id: "items", type: "helper" }, { id: "done", type: "helper" }]);
    assert.match(String(helper.getNode("api").configError), /auth secret is missing: environment variable STAC_NOT_SET is not set/);
    helper.getNode("search").receive({});
    await waitFor(() => (helper.getNode("search").error as { called: boolean }).called || out.done.length > 0, "refused");
  });

  /** An example flow as the test runtime loads it: no inject or comment, debug nodes as helpers. */
  function example(file: string, change: (n: Msg) => Msg = (n) => n): Msg[] {
    const nodes = JSON.parse(readFileSync(join(repoRoot, "examples", file), "utf8")) as Msg[];
    return nodes.filter((n) => !["inject", "comment"].includes(n.type)).map((n) => change(n.type === "debug" ? { id: n.id, type: "helper", z: n.z } : n));
  }

  it("examples/stac-search-to-asset-fetch.json: a bbox and date range, then the true-colour bands of the first two Items, verified", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stac-example-"));
    Object.assign(process.env, { STAC_API_URL: sb.stacApi.url, DATASPHERE_API_URL: sb.url, DATASPHERE_PUBLISH_URL: sb.publishUrl, DATASPHERE_TOKEN: sb.token });
    try {
      const flow = example("stac-search-to-asset-fetch.json", (n) => (n.type === "datasphere-asset-fetch" ? { ...n, directory: dir } : n));
      await helper.load([apiModule, searchWithHooks, configNode(), builtNode("datasphere-asset-fetch")], flow, {});
      const files: Msg[] = [];
      const done: Msg[] = [];
      helper.getNode("dsx-sf-files").on("input", (m: Msg) => files.push(m));
      helper.getNode("dsx-sf-done").on("input", (m: Msg) => done.push(m));
      helper.getNode("dsx-sf-search").receive({});
      await waitFor(() => files.length === 2 && done.length === 1, "two Items downloaded", 60_000);
      assert.equal(done[0].payload.items, 2);
      assert.equal(done[0].payload.error, undefined);
      const received = sb.stacApi.searches[sb.stacApi.searches.length - 1];
      assert.equal(received.query.bbox, "-10,35,30,60");
      assert.equal(received.query.datetime, "2024-01-01T00:00:00Z/2024-01-10T23:59:59.999Z");
      for (const m of files) {
        assert.deepEqual(m.files.map((f: Msg) => `${f.key}:${f.checksum}`).sort(), ["B02_10m:verified", "B03_10m:verified", "B04_10m:verified"]);
        const [w, s1, e, n] = m.payload.bbox as number[];
        assert.ok(w <= 30 && e >= -10 && s1 <= 60 && n >= 35, `Item ${m.payload.id} meets the bbox`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      for (const k of ["STAC_API_URL", "DATASPHERE_API_URL", "DATASPHERE_PUBLISH_URL"]) delete process.env[k];
    }
  });

  it("examples/stac-search-join-summary.json: search, join, summary of every matching Item", async () => {
    process.env.STAC_API_URL = sb.stacApi.url;
    try {
      const functionNode = coreNode("function/10-function.js");
      await helper.load([apiModule, searchWithHooks, joinNode, functionNode], example("stac-search-join-summary.json"), {});
      const summaries: Msg[] = [];
      const done: Msg[] = [];
      helper.getNode("dsx-sj-debug").on("input", (m: Msg) => summaries.push(m));
      helper.getNode("dsx-sj-done").on("input", (m: Msg) => done.push(m));
      helper.getNode("dsx-sj-search").receive({});
      await waitFor(() => summaries.length === 1 && done.length === 1, "summary", 60_000);
      const week: Msg[] = [];
      for (let i = 0; i < 7 * 24; i++) week.push(await sb.datasetItem("sentinel-2-l2a-sample", i));
      const clear = week.filter((i) => i.properties["eo:cloud_cover"] < 30);
      assert.equal(summaries[0].payload.items, clear.length);
      assert.equal(done[0].payload.items, clear.length);
      assert.equal(summaries[0].payload.first, clear[0].properties.datetime);
      assert.equal(summaries[0].payload.last, clear[clear.length - 1].properties.datetime);
      assert.ok(clear.length > 20 && clear.length < 7 * 24, String(clear.length));
    } finally {
      delete process.env.STAC_API_URL;
    }
  });

  it("memory stays bounded: 100k Items into a slow sink, at most the window in flight, one page read ahead at most", async function () {
    this.timeout(600_000);
    const window = 50;
    const limit = 500;
    const items = [];
    for (let i = 0; i < limit; i++) items.push(await sb.datasetItem("sentinel-2-l2a-sample", i));
    const replay = await startReplayApi(items, 200);
    after(() => replay.close());
    const flow = [api({ url: replay.url }), search({ collections: "", limit: String(limit), window }, [["sink"], ["done"]]), { id: "sink", type: "slow-sink", holdMs: 0, keep: "count" }, { id: "done", type: "helper" }];
    const out = await load(flow, [slowSink]);
    const sink = helper.getNode("sink");
    const pagesBefore = replay.served();
    // What stays reachable (not garbage not yet collected): the heap after a full collection, sampled.
    require("node:v8").setFlagsFromString("--expose-gc");
    const gc = require("node:vm").runInNewContext("gc") as () => void;
    gc();
    const baseline = process.memoryUsage().heapUsed;
    let peakRetained = 0;
    let worstAhead = 0;
    // The test helper spies on Node.prototype.send and the log, keeping every call's arguments: that
    // history is the helper's, not the node's, so it is dropped as the run goes.
    const spies = (helper as unknown as { _sandbox: { resetHistory(): void } })._sandbox;
    const ahead = setInterval(() => (worstAhead = Math.max(worstAhead, (replay.served() - pagesBefore) * limit - sink.count)), 5);
    const sampler = setInterval(() => {
      spies.resetHistory();
      gc();
      peakRetained = Math.max(peakRetained, process.memoryUsage().heapUsed - baseline);
    }, 3000);
    try {
      helper.getNode("search").receive({});
      await waitFor(() => out.done.length === 1, "completion", 590_000);
    } finally {
      clearInterval(sampler);
      clearInterval(ahead);
    }
    assert.equal(out.done[0].payload.items, 100_000);
    assert.equal(sink.count, 100_000);
    assert.ok(sink.maxHeld <= window, `the sink held at most the window: ${sink.maxHeld}`);
    // Read but not yet taken by the sink: the page being sent, the page read ahead, the window and the one message held back.
    assert.ok(worstAhead <= 2 * limit + window + 1, `reading stays within two pages and the window of the sink: ${worstAhead} Items ahead`);
    const retainedMb = peakRetained / 1024 / 1024;
    if (process.env.DS_DEBUG) console.log({ retainedMb, worstAhead, maxHeld: sink.maxHeld, ms: out.done[0].payload.durationMs });
    assert.ok(retainedMb < 64, `at most ${retainedMb.toFixed(1)} MB retained while 100k Items went through`);
  });
});
