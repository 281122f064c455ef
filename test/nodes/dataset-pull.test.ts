import { strict as assert } from "node:assert";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { startDatasetTestServer, type DatasetTestServer } from "../helpers/dataset-test-server";
import { builtNode, configNode, helper, repoRoot, startHelperServer, stopHelperServer, waitFor } from "../helpers/node-red";
import { joinNode, runtimeHooks, withRuntimeHooks, type NodeModule } from "../helpers/node-red-core";
import { slowSink } from "../helpers/slow-sink";
import { throwingSink } from "../helpers/throwing-sink";

type Msg = Record<string, any>;

const pullModule = builtNode("datasphere-dataset-pull");
const pullWithHooks = withRuntimeHooks(pullModule);
/** The node as node-red-node-test-helper loads it: no RED.hooks. */
const pullWithoutHooks: NodeModule = (RED) => {
  delete RED.hooks;
  return pullModule(RED);
};

/** A downstream node written the old way: (msg) only, never calls done(). */
const legacySink: NodeModule = (RED) => {
  RED.nodes.registerType("legacy-sink", function (this: any, def: any) {
    RED.nodes.createNode(this, def);
    const node = this;
    node.received = [] as Msg[];
    node.on("input", (msg: Msg) => {
      node.received.push(msg);
    });
  });
};

const PKG = "sentinel-2-l2a-sample";

function cfg(apiUrl: string) {
  return { id: "cfg", type: "datasphere-config", apiUrl, publishUrl: "ws://127.0.0.1:1/publish/v1/", authMode: "header" };
}

function pullNode(props: Record<string, unknown> = {}, wires: string[][] = [["items"], ["done"]]) {
  return { id: "pull", type: "datasphere-dataset-pull", server: "cfg", package: PKG, mode: "stream", order: "new", window: 50, wires, ...props };
}

interface Run {
  items: Msg[];
  completions: Msg[];
}

/** Collects output 1 on helper node "items" and output 2 on helper node "done". */
function collect(): Run {
  const run: Run = { items: [], completions: [] };
  helper.getNode("items")?.on("input", (msg: Msg) => run.items.push(msg));
  helper.getNode("done")?.on("input", (msg: Msg) => run.completions.push(msg));
  return run;
}

async function load(modules: NodeModule[], flow: unknown[], token: string): Promise<void> {
  await helper.load([configNode(), ...modules], flow, { cfg: { token } });
}

async function pullOnce(run: Run, msg: Msg = {}, timeoutMs = 20_000): Promise<Msg> {
  const before = run.completions.length;
  helper.getNode("pull").receive(msg);
  await waitFor(() => run.completions.length > before, "completion message", timeoutMs);
  return run.completions[before];
}

const ids = (msgs: Msg[]) => msgs.map((m) => m.payload.id);

describe("datasphere-dataset-pull node", function () {
  this.timeout(60_000);
  let sb: Sandbox;
  before(async () => {
    await startHelperServer();
    sb = await startSandbox({ port: 0, token: "sandbox-token", seed: 1, rate: 0, heartbeatMs: 0, keepAliveMs: 0 });
    sb.addDataset("ties-300", { count: 300, stepMs: 0 });
  });
  after(async () => {
    await sb.close();
    await stopHelperServer();
  });
  afterEach(async () => {
    sb.faults.clear();
    await helper.unload();
  });

  async function expectedIds(pkg: string, indices: number[]): Promise<string[]> {
    const out: string[] = [];
    for (const i of indices) out.push(String((await sb.datasetItem(pkg, i)).id));
    return out;
  }
  const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, k) => lo + k);

  it("stream and paginate deliver the same Items in the same order; order, from and to as the protocol says", async () => {
    const all = await expectedIds(PKG, range(0, 499));
    const item5 = await sb.datasetItem(PKG, 5);
    const item40 = await sb.datasetItem(PKG, 40);
    const from = (item5.properties as { datetime: string }).datetime;
    const to = (item40.properties as { datetime: string }).datetime;
    const cases: Array<{ msg: Msg; expected: string[] }> = [
      { msg: {}, expected: [...all].reverse() },
      { msg: { order: "old" }, expected: all },
      { msg: { order: "old", from, to }, expected: all.slice(5, 41) },
      { msg: { order: "new", from, to }, expected: all.slice(5, 41).reverse() },
    ];
    const flow = [
      cfg(sb.url),
      pullNode({ id: "s", mode: "stream" }, [["items"], ["done"]]),
      pullNode({ id: "p", mode: "paginate" }, [["items"], ["done"]]),
      { id: "items", type: "helper" },
      { id: "done", type: "helper" },
    ];
    await load([pullWithHooks], flow, sb.token);
    const run2 = collect();
    for (const { msg, expected } of cases) {
      for (const id of ["s", "p"]) {
        run2.items.length = 0;
        const before = run2.completions.length;
        helper.getNode(id).receive({ ...msg });
        await waitFor(() => run2.completions.length > before, `completion of ${id}`);
        const summary = run2.completions[before].payload;
        assert.equal(summary.error, undefined, JSON.stringify(summary.error));
        assert.deepEqual(ids(run2.items), expected, `${id} ${JSON.stringify(msg)}`);
        assert.equal(summary.items, expected.length);
        assert.equal(summary.mode, id === "s" ? "stream" : "paginate");
        if (id === "p") assert.equal(summary.pages, Math.ceil(expected.length / 50));
        assert.ok(run2.items.every((m) => m.topic === PKG));
      }
    }
  });

  it("msg.parts lets the core join node rebuild the exact array (one Item per message, and arrays of N)", async () => {
    for (const props of [{ output: "item" }, { output: "array", arraySize: 7 }]) {
      const flow = [
        cfg(sb.url),
        pullNode({ ...props, order: "old", package: "landsat-c2-l2-sample", window: 20 }, [["items", "j1"], ["done"]]),
        { id: "j1", type: "join", mode: "auto", build: "array", property: "payload", propertyType: "msg", wires: [["joined"]] },
        { id: "items", type: "helper" },
        { id: "joined", type: "helper" },
        { id: "done", type: "helper" },
      ];
      await load([pullWithHooks, joinNode], flow, sb.token);
      const run = collect();
      const joined: Msg[] = [];
      helper.getNode("joined").on("input", (m: Msg) => joined.push(m));
      const done = await pullOnce(run);
      assert.equal(done.payload.items, 200);
      await waitFor(() => joined.length === 1, "the joined array");
      const flat = run.items.flatMap((m) => (Array.isArray(m.payload) ? m.payload : [m.payload]));
      assert.equal(flat.length, 200);
      assert.deepEqual(joined[0].payload, flat, JSON.stringify(props));
      assert.deepEqual(flat.map((i: Msg) => i.id), await expectedIds("landsat-c2-l2-sample", range(0, 199)));
      const last = run.items[run.items.length - 1];
      assert.equal(last.parts.count, run.items.length);
      assert.ok(run.items.slice(0, -1).every((m) => m.parts.count === undefined), "count only on the last");
      await helper.unload();
    }
  });

  it("faults on pages: 429 with Retry-After is honoured, a page failing twice then succeeding is retried", async () => {
    await load([pullWithHooks], [cfg(sb.url), pullNode({ mode: "paginate", order: "old" }), { id: "items", type: "helper" }, { id: "done", type: "helper" }], sb.token);
    const run = collect();
    sb.faults.set({ failNext: { count: 1, status: 429, retryAfter: 1 } }, "dataset");
    const before = sb.stats.datasetRequests;
    const limited = await pullOnce(run);
    assert.equal(limited.payload.error, undefined);
    assert.equal(limited.payload.items, 500);
    assert.equal(sb.stats.datasetRequests - before, 11, "10 pages and one 429");
    assert.ok(limited.payload.durationMs >= 950, `waited for Retry-After: ${limited.payload.durationMs} ms`);
    run.items.length = 0;
    sb.faults.set({ failNext: { count: 2, status: 503 } }, "dataset");
    const flaky = await pullOnce(run);
    assert.equal(flaky.payload.error, undefined);
    assert.deepEqual(ids(run.items), await expectedIds(PKG, range(0, 499)));
  });

  it("faults: a later page rate-limited or failing twice, a repeated next link, an empty page (own server)", async () => {
    const server: DatasetTestServer = await startDatasetTestServer({ count: 160, token: "own-token-123" });
    try {
      const flow = [cfg(server.url), pullNode({ package: "test-pkg", mode: "paginate", order: "old", retries: 3 }), { id: "items", type: "helper" }, { id: "done", type: "helper" }];
      await load([pullWithHooks], flow, "own-token-123");
      const run = collect();
      server.faults.rateLimitPage = { page: 2, retryAfterSeconds: 1 };
      server.faults.failPage = { page: 3, times: 2 };
      const ok = await pullOnce(run);
      assert.equal(ok.payload.error, undefined);
      assert.deepEqual(ids(run.items), ids(server.select("old").map((payload) => ({ payload }))));
      assert.equal(ok.payload.pages, 4);
      server.faults.rateLimitPage = undefined;
      server.faults.failPage = undefined;
      for (const fault of [{ repeatNextAt: 2 }, { emptyPageAt: 3 }] as const) {
        Object.assign(server.faults, { repeatNextAt: undefined, emptyPageAt: undefined }, fault);
        run.items.length = 0;
        const done = await pullOnce(run);
        assert.equal(done.payload.error, undefined);
        assert.equal(done.payload.items, "repeatNextAt" in fault ? 100 : 100, JSON.stringify(fault));
        assert.equal(done.payload.cursor, null, "nothing to resume after a stop condition");
      }
    } finally {
      await server.close();
    }
  });

  it("a stream cut mid-way ends with an error and a cursor; pulling from the cursor yields exactly the missing Items (ties)", async () => {
    for (const pkg of [PKG, "ties-300"]) {
      for (const order of ["new", "old"]) {
        await load([pullWithHooks], [cfg(sb.url), pullNode({ package: pkg, order }), { id: "items", type: "helper" }, { id: "done", type: "helper" }], sb.token);
        const run = collect();
        sb.faults.set({ dropAfterEvents: 137, times: 1 }, "dataset");
        const cut = await pullOnce(run);
        assert.equal(cut.payload.error?.code, "NETWORK", JSON.stringify(cut.payload));
        assert.equal(cut.payload.items, 137);
        const cursor = cut.payload.cursor;
        assert.equal(cursor.kind, "stream");
        if (pkg === "ties-300") assert.equal(cursor.skipIds.length, 137, "all delivered Items share the datetime");
        const first = ids(run.items);
        run.items.length = 0;
        const resumed = await pullOnce(run, { resume: JSON.parse(JSON.stringify(cursor)) });
        assert.equal(resumed.payload.error, undefined);
        const count = pkg === PKG ? 500 : 300;
        const all = await expectedIds(pkg, range(0, count - 1));
        const expected = order === "old" ? all : [...all].reverse();
        if (pkg === "ties-300") assert.deepEqual([...first, ...ids(run.items)].sort(), [...all].sort(), "ties: same set, each once");
        else assert.deepEqual([...first, ...ids(run.items)], expected, `${pkg} ${order}`);
        assert.equal(first.length + run.items.length, count);
        await helper.unload();
        sb.faults.clear();
      }
    }
  });

  it("malformed stream lines are reported (line number, first 200 characters) and the pull goes on", async () => {
    await load([pullWithHooks], [cfg(sb.url), pullNode({ order: "old" }), { id: "items", type: "helper" }, { id: "done", type: "helper" }], sb.token);
    const run = collect();
    sb.faults.set({ malformedEvery: 100 }, "dataset");
    const done = await pullOnce(run);
    assert.equal(done.payload.error, undefined);
    assert.equal(done.payload.items, 500);
    assert.equal(done.payload.malformed, 5);
    const warnings = (helper.getNode("pull").warn as { args: unknown[][] }).args.map((a) => String(a[0]));
    assert.equal(warnings.filter((w) => w === "datasphere-dataset-pull.warnings.malformed").length, 5, warnings.join("\n"));
  });

  it("a URL pasted for another origin is refused and no request is sent there; a Data Library URL on the API origin works", async () => {
    let foreignHits = 0;
    const foreign = createServer((_req, res) => {
      foreignHits++;
      res.end();
    });
    await new Promise<void>((r) => foreign.listen(0, "127.0.0.1", r));
    try {
      await load([pullWithHooks], [cfg(sb.url), pullNode(), { id: "items", type: "helper" }, { id: "done", type: "helper" }], sb.token);
      const run = collect();
      const foreignUrl = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}/api/dataset/v1/${PKG}/stream/`;
      const refused = await pullOnce(run, { url: foreignUrl });
      assert.equal(refused.payload.error.code, "BAD_REQUEST");
      assert.match(refused.payload.error.message, /not the configured API origin/);
      assert.equal(foreignHits, 0);
      assert.equal(run.items.length, 0);
      await waitFor(() => (helper.getNode("pull").error as { called: boolean }).called, "done(err) reached the runtime");
      const library = await pullOnce(run, { url: `${sb.url}/api/dataset/v1/landsat-c2-l2-sample/paginate/?order=old` });
      assert.equal(library.payload.error, undefined);
      assert.equal(library.payload.mode, "paginate");
      assert.equal(library.payload.package, "landsat-c2-l2-sample");
      assert.deepEqual(ids(run.items), await expectedIds("landsat-c2-l2-sample", range(0, 199)));
    } finally {
      foreign.close();
    }
  });

  it("item mode: one message with the Item, or the error 'unknown item package'", async () => {
    await load([pullWithHooks], [cfg(sb.url), pullNode({ mode: "item", package: "sentinel-2-l2a-example" }), { id: "items", type: "helper" }, { id: "done", type: "helper" }], sb.token);
    const run = collect();
    const ok = await pullOnce(run);
    assert.equal(ok.payload.items, 1);
    assert.equal(run.items.length, 1);
    assert.equal(run.items[0].payload.type, "Feature");
    assert.equal(run.items[0].topic, "sentinel-2-l2a-example");
    const missing = await pullOnce(run, { package: "no-such-item-package" });
    assert.equal(missing.payload.error.code, "NOT_FOUND");
    assert.match(missing.payload.error.message, /unknown item package/);
    assert.equal(run.items.length, 1);
  });

  it("flow control: with message hooks the window bounds the messages a slow node holds", async () => {
    const flow = [cfg(sb.url), pullNode({ window: 20, order: "old" }, [["sink"], ["done"]]), { id: "sink", type: "slow-sink", holdMs: 3 }, { id: "done", type: "helper" }];
    await load([pullWithHooks, slowSink], flow, sb.token);
    const run = collect();
    const done = await pullOnce(run);
    const sink = helper.getNode("sink");
    assert.equal(done.payload.flowControl, "hooks");
    assert.equal(sink.received.length, 500);
    assert.ok(sink.maxHeld <= 20 && sink.maxHeld >= 2, `held at most the window: ${sink.maxHeld}`);
    assert.deepEqual(sink.received.map((m: Msg) => m.payload.id), await expectedIds(PKG, range(0, 499)));
    const statuses = (helper.getNode("pull").status as { args: unknown[][] }).args.map((a) => (a[0] as { text?: string }).text);
    const pulling = statuses.filter((t) => t === "datasphere-dataset-pull.status.pulling").length;
    assert.ok(pulling >= 1 && pulling <= Math.ceil(done.payload.durationMs / 1000) + 1, `status at most once a second: ${pulling} in ${done.payload.durationMs} ms`);
    assert.equal(statuses[statuses.length - 1], "datasphere-dataset-pull.status.done");
    assert.ok(!JSON.stringify(done).includes(sb.token), "no token in the completion message");
  });

  it("a numeric setting that cannot be used (In flight from an environment variable: \"20 messages\") gives one warning and the default; the pull runs", async () => {
    process.env.DS_TEST_WINDOW = "20 messages";
    try {
      const flow = [cfg(sb.url), pullNode({ window: "${DS_TEST_WINDOW}", retries: "2", order: "old" }, [["sink"], ["done"]]), { id: "sink", type: "slow-sink" }, { id: "done", type: "helper" }];
      await load([pullWithHooks, slowSink], flow, sb.token);
      const warnings = (helper.getNode("pull").warn as { args: unknown[][] }).args;
      assert.deepEqual(warnings.map((a) => String(a[0])), ["datasphere-dataset-pull.warnings.setting"]);
      const done = await pullOnce(collect());
      assert.equal(done.payload.items, 500);
      assert.ok(helper.getNode("sink").maxHeld > 20, `the default window of 200, not 20: held ${helper.getNode("sink").maxHeld}`);
    } finally {
      delete process.env.DS_TEST_WINDOW;
    }
  });

  it("flow control: nodes that never call done() and a join longer than the window do not stall the pull", async () => {
    const flow = [
      cfg(sb.url),
      pullNode({ window: 10, order: "old" }, [["legacy", "j1"], ["done"]]),
      { id: "legacy", type: "legacy-sink" },
      { id: "j1", type: "join", mode: "auto", wires: [["joined"]] },
      { id: "joined", type: "helper" },
      { id: "done", type: "helper" },
    ];
    await load([pullWithHooks, legacySink, joinNode], flow, sb.token);
    const run = collect();
    const joined: Msg[] = [];
    helper.getNode("joined").on("input", (m: Msg) => joined.push(m));
    const done = await pullOnce(run);
    assert.equal(done.payload.items, 500);
    assert.equal(helper.getNode("legacy").received.length, 500);
    await waitFor(() => joined.length === 1, "joined");
    assert.equal(joined[0].payload.length, 500);
  });

  it("without message hooks (the test helper's runtime) it falls back to yielding, and says so", async () => {
    const flow = [cfg(sb.url), pullNode({ window: 20, order: "old" }, [["sink"], ["done"]]), { id: "sink", type: "slow-sink", holdMs: 1 }, { id: "done", type: "helper" }];
    await load([pullWithoutHooks, slowSink], flow, sb.token);
    const run = collect();
    const done = await pullOnce(run);
    assert.equal(done.payload.flowControl, "yield");
    assert.equal(helper.getNode("sink").received.length, 500);
  });

  it("stop aborts a pull in progress: completion says stopped, the cursor resumes exactly, hooks are removed", async () => {
    const flow = [cfg(sb.url), pullNode({ window: 5, order: "old" }, [["sink"], ["done"]]), { id: "sink", type: "slow-sink", holdMs: 20 }, { id: "done", type: "helper" }];
    await load([pullWithHooks, slowSink], flow, sb.token);
    const run = collect();
    const pull = helper.getNode("pull");
    pull.receive({});
    const sink = helper.getNode("sink");
    await waitFor(() => sink.received.length >= 30, "some Items");
    assert.ok(runtimeHooks.has(`onComplete.datasphereDatasetPullpull`), "hooks registered while pulling");
    pull.receive({ action: "stop" });
    await waitFor(() => run.completions.length === 1, "completion");
    const summary = run.completions[0].payload;
    assert.equal(summary.stopped, true);
    assert.equal(summary.error, undefined);
    assert.ok(summary.items < 500 && summary.items >= 30, String(summary.items));
    assert.ok(!runtimeHooks.has(`onComplete.datasphereDatasetPullpull`), "hooks removed after the pull");
    await waitFor(() => sink.received.length === summary.items, "the in-flight Items arrive");
    const last = sink.received[sink.received.length - 1];
    assert.equal(last.parts.count, summary.items, "the sequence is closed");
    const resumed = await pullOnce(run, { resume: summary.cursor });
    assert.equal(resumed.payload.items, 500 - summary.items);
    await waitFor(() => sink.received.length === 500, "all Items");
    assert.deepEqual(sink.received.map((m: Msg) => m.payload.id), await expectedIds(PKG, range(0, 499)));
    const statuses = (pull.status as { args: unknown[][] }).args.map((a) => (a[0] as { text?: string }).text);
    assert.ok(statuses.includes("datasphere-dataset-pull.status.stopped"), statuses.join(","));
  });

  it("a second pull while one runs is queued (never interleaved), or refused", async () => {
    for (const busy of ["queue", "refuse"]) {
      const flow = [cfg(sb.url), pullNode({ busy, window: 10, package: "landsat-c2-l2-sample" }, [["sink"], ["done"]]), { id: "sink", type: "slow-sink", holdMs: 2 }, { id: "done", type: "helper" }];
      await load([pullWithHooks, slowSink], flow, sb.token);
      const run = collect();
      const pull = helper.getNode("pull");
      pull.receive({ order: "old" });
      pull.receive({ order: "new" });
      if (busy === "queue") {
        await waitFor(() => run.completions.length === 2, "two completions");
        const received = helper.getNode("sink").received as Msg[];
        await waitFor(() => received.length === 400, "all Items");
        const firstId = received[0].parts.id;
        assert.ok(received.slice(0, 200).every((m) => m.parts.id === firstId), "first pull's Items all come first");
        assert.ok(received.slice(200).every((m) => m.parts.id !== firstId));
        assert.deepEqual(ids(received.slice(200)), ids(received.slice(0, 200)).reverse());
      } else {
        await waitFor(() => run.completions.length === 1, "one completion");
        await waitFor(() => (pull.error as { called: boolean }).called, "refusal reported");
        const errors = (pull.error as { args: unknown[][] }).args.map((a) => String((a[0] as Error)?.message ?? a[0]));
        assert.ok(errors.some((e) => e.includes("datasphere-dataset-pull.errors.busy")), errors.join("\n"));
        assert.equal(run.completions.length, 1);
      }
      await helper.unload();
    }
  });

  it("pacing: one batch per msg.action = next", async () => {
    const flow = [cfg(sb.url), pullNode({ pacing: "next", batch: 40, order: "old" }), { id: "items", type: "helper" }, { id: "done", type: "helper" }];
    await load([pullWithHooks], flow, sb.token);
    const run = collect();
    const pull = helper.getNode("pull");
    pull.receive({});
    await waitFor(() => run.items.length === 40, "first batch");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(run.items.length, 40, "waits for next");
    pull.receive({ action: "next" });
    await waitFor(() => run.items.length === 80, "second batch");
    for (let i = 0; i < 11; i++) pull.receive({ action: "next" });
    await waitFor(() => run.completions.length === 1, "completion");
    assert.equal(run.items.length, 500);
    assert.equal(run.items[499].parts.count, 500);
  });

  it("close aborts a running pull quickly and removes its hooks", async () => {
    const flow = [cfg(sb.url), pullNode({ package: "sentinel-2-l2a-1m", window: 5 }, [["sink"], ["done"]]), { id: "sink", type: "slow-sink", holdMs: 50 }, { id: "done", type: "helper" }];
    await load([pullWithHooks, slowSink], flow, sb.token);
    helper.getNode("pull").receive({});
    await waitFor(() => helper.getNode("sink").received.length >= 5, "pulling");
    await helper.unload();
    // The hooks go when the pull itself ends: gone at close means the abort ended it, not the close deadline.
    assert.ok(!runtimeHooks.has(`onComplete.datasphereDatasetPullpull`));
    await waitFor(() => sb.openSockets() === 0, "the sandbox sees the connection closed");
  });

  it("refuses unknown actions and reports a missing package", async () => {
    await load([pullWithHooks], [cfg(sb.url), pullNode({ package: "" }), { id: "items", type: "helper" }, { id: "done", type: "helper" }], sb.token);
    const run = collect();
    const pull = helper.getNode("pull");
    pull.receive({ action: "explode" });
    const none = await pullOnce(run);
    assert.equal(none.payload.error.code, "BAD_REQUEST");
    assert.match(none.payload.error.message, /no package/);
    await waitFor(() => (pull.error as { args: unknown[][] }).args.length >= 2, "two errors");
    const errors = (pull.error as { args: unknown[][] }).args.map((a) => String((a[0] as Error)?.message ?? a[0]));
    assert.ok(errors.some((e) => e.includes("errors.unknownAction")), errors.join("\n"));
    // Catch gets the typed error with its code, for a refused action and for a failed pull alike.
    const codes = (pull.error as { args: unknown[][] }).args.map((a) => (a[0] as { code?: string }).code);
    assert.deepEqual(codes, ["BAD_REQUEST", "BAD_REQUEST"]);
  });

  it("examples/dataset-pull-to-join.json runs against the sandbox: the join gets all 200 Items", async () => {
    process.env.DATASPHERE_API_URL = sb.url;
    process.env.DATASPHERE_PUBLISH_URL = sb.publishUrl;
    // The examples' shared config node reads its token from DATASPHERE_TOKEN.
    process.env.DATASPHERE_TOKEN = sb.token;
    try {
      const example = JSON.parse(readFileSync(join(repoRoot, "examples", "dataset-pull-to-join.json"), "utf8")) as Msg[];
      const flow = example
        .filter((n) => !["tab", "comment", "inject"].includes(n.type))
        .map((n) => (n.type === "debug" ? { id: n.id, type: "helper", z: n.z } : n));
      await helper.load([configNode(), pullWithHooks, joinNode], flow, { "dsx-dp-config": { token: sb.token } });
      const arrays: Msg[] = [];
      const completions: Msg[] = [];
      helper.getNode("dsx-dp-debug-items").on("input", (m: Msg) => arrays.push(m));
      helper.getNode("dsx-dp-debug-done").on("input", (m: Msg) => completions.push(m));
      helper.getNode("dsx-dp-pull").receive({});
      await waitFor(() => arrays.length === 1 && completions.length === 1, "joined array and completion");
      assert.equal(arrays[0].payload.length, 200);
      assert.equal(completions[0].payload.items, 200);
      assert.equal(completions[0].payload.error, undefined);
    } finally {
      delete process.env.DATASPHERE_API_URL;
      delete process.env.DATASPHERE_PUBLISH_URL;
      delete process.env.DATASPHERE_TOKEN;
    }
  });

  it("from/to: a plain date is passed unchanged (whole UTC days), typed inputs read env, msg and flow", async () => {
    process.env.DS_PULL_FROM = "2024-01-02";
    try {
      const flow = [
        cfg(sb.url),
        pullNode({ order: "old", from: "DS_PULL_FROM", fromType: "env", to: "until", toType: "msg" }),
        { id: "items", type: "helper" },
        { id: "done", type: "helper" },
      ];
      await load([pullWithHooks], flow, sb.token);
      const run = collect();
      // The sample has one Item per hour from 2024-01-01T00:00Z: 2024-01-02..2024-01-03 is Items 24..71.
      const days = await pullOnce(run, { until: "2024-01-03" });
      assert.equal(days.payload.error, undefined);
      assert.deepEqual(ids(run.items), await expectedIds(PKG, range(24, 71)));
      run.items.length = 0;
      const picker = await pullOnce(run, { until: "2024-01-02T05:00" });
      assert.equal(picker.payload.error, undefined);
      assert.deepEqual(ids(run.items), await expectedIds(PKG, range(24, 29)), "a date picker value without zone is UTC");
      run.items.length = 0;
      const bad = await pullOnce(run, { until: "next tuesday" });
      assert.equal(bad.payload.error.code, "BAD_REQUEST");
      assert.match(bad.payload.error.message, /to: "next tuesday" is not a date/);
    } finally {
      delete process.env.DS_PULL_FROM;
    }
  });

  it("flow control: a next node that throws instead of calling done() is written off after the stall timeout, with a warning", async () => {
    const flow = [
      cfg(sb.url),
      pullNode({ window: 5, stallTimeout: 1, order: "old", package: "landsat-c2-l2-sample" }, [["sink"], ["done"]]),
      { id: "sink", type: "throwing-sink", throwFirst: 5 },
      { id: "done", type: "helper" },
    ];
    await load([pullWithHooks, throwingSink], flow, sb.token);
    const run = collect();
    const done = await pullOnce(run);
    assert.equal(done.payload.items, 200);
    assert.equal(helper.getNode("sink").received.length, 200);
    const warnings = (helper.getNode("pull").warn as { args: unknown[][] }).args.map((a) => String(a[0]));
    assert.equal(warnings.filter((w) => w === "datasphere-dataset-pull.warnings.stalled").length, 1, warnings.join("\n"));
  });

  it("a paused read is not an idle timeout: pacing waits longer than idleTimeout without failing", async () => {
    const flow = [cfg(sb.url), pullNode({ pacing: "next", batch: 50, idleTimeout: 1, order: "old", package: "sentinel-2-l2a-1m" }), { id: "items", type: "helper" }, { id: "done", type: "helper" }];
    await load([pullWithHooks], flow, sb.token);
    const run = collect();
    const pull = helper.getNode("pull");
    pull.receive({});
    await waitFor(() => run.items.length === 50, "first batch");
    await new Promise((r) => setTimeout(r, 2500));
    pull.receive({ action: "next" });
    await waitFor(() => run.items.length === 100, "second batch after a pause of 2.5 idle timeouts");
    pull.receive({ action: "stop" });
    await waitFor(() => run.completions.length === 1, "completion");
    const summary = run.completions[0].payload;
    assert.equal(summary.error, undefined, JSON.stringify(summary.error));
    assert.equal(summary.stopped, true);
    assert.equal(summary.items, 101, "the held-back Item closes the sequence");
    assert.deepEqual(ids(run.items), await expectedIds("sentinel-2-l2a-1m", range(0, 100)));
  });

  it("flow control counts deliveries as they happen when a wired node is not running (disabled)", async () => {
    const flow = [
      cfg(sb.url),
      pullNode({ window: 20, order: "old" }, [["sink", "ghost"], ["done"]]),
      { id: "sink", type: "slow-sink", holdMs: 2 },
      { id: "ghost", type: "slow-sink", d: true },
      { id: "done", type: "helper" },
    ];
    await load([pullWithHooks, slowSink], flow, sb.token);
    const run = collect();
    const pull = helper.getNode("pull");
    pull.receive({});
    await waitFor(() => helper.getNode("sink")?.received.length > 10, "pulling");
    assert.ok(runtimeHooks.has("postDeliver.datasphereDatasetPullpull"), "postDeliver counts the deliveries");
    await waitFor(() => run.completions.length === 1, "completion");
    const sink = helper.getNode("sink");
    assert.equal(run.completions[0].payload.items, 500);
    assert.equal(sink.received.length, 500);
    assert.ok(sink.maxHeld <= 20, String(sink.maxHeld));
  });
});
