import { strict as assert } from "node:assert";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { builtNode, configNode, helper, startHelperServer, stopHelperServer, waitFor } from "../helpers/node-red";
import { makeItems, seeded, sseEventText, startSseTestServer, type SseTestServer, type SseTestServerOptions } from "../helpers/sse-test-server";
import type { NodeMessage, NodeStatus } from "../../src/nodes/shared/node-red";

const TOKEN = "fault-test-token-31415926";
const T = "datasphere-subscribe-in";

function flow(server: SseTestServer, props: Record<string, unknown> = {}, name = ""): object[] {
  return [
    { id: "cfg", type: "datasphere-config", apiUrl: server.url, publishUrl: "ws://127.0.0.1:1/publish/v1/", authMode: "header" },
    { id: "sub", type: T, name, server: "cfg", package: "test-live", wires: [["out"]], ...props },
    { id: "out", type: "helper" },
  ];
}

interface Harness {
  seqs: number[];
  msgs: NodeMessage[];
  statuses: NodeStatus[];
  texts: string[];
}

function attach(): Harness {
  const h: Harness = { seqs: [], msgs: [], statuses: [], texts: [] };
  helper.getNode("out").on("input", (msg: NodeMessage) => {
    h.seqs.push(((msg.payload as Record<string, unknown>).properties as { seq: number }).seq);
    if (h.msgs.length < 100) h.msgs.push(msg);
  });
  const node = helper.getNode("sub");
  node.on("call:status", (call: { args: [NodeStatus] }) => h.statuses.push(call.args[0]));
  for (const kind of ["error", "warn", "log"]) node.on(`call:${kind}`, (call: { args: unknown[] }) => h.texts.push(call.args.map(String).join(" ")));
  return h;
}

function assertInOrderOnce(seqs: number[], count: number): void {
  assert.equal(seqs.length, count, `expected ${count} Items, got ${seqs.length}`);
  for (let i = 0; i < count; i++) if (seqs[i] !== i) assert.fail(`Item ${i} out of place: got ${seqs[i]}`);
}

function assertNoToken(h: Harness): void {
  const text = JSON.stringify([h.msgs, h.statuses, h.texts, helper.log().args.map((a: unknown[]) => a.map(String))]);
  assert.ok(!text.includes(TOKEN), "no token in messages, status, logs or errors");
}

describe("datasphere-subscribe-in node under faults (test SSE server)", function () {
  this.timeout(90_000);
  let server: SseTestServer | undefined;
  before(startHelperServer);
  after(stopHelperServer);
  afterEach(async () => {
    await helper.unload();
    await server?.close();
    server = undefined;
  });

  async function run(options: SseTestServerOptions, props: Record<string, unknown> = {}): Promise<Harness> {
    server = await startSseTestServer(options);
    await helper.load([configNode(), builtNode(T)], flow(server, props), { cfg: { token: TOKEN } });
    return attach();
  }

  it("outputs every Item exactly once, in order, with the server dropping the connection 12 times during 20,000 Items (reconnects wait the 1 s floor; 50 cuts run on a fake clock in test/core)", async () => {
    const items = makeItems(20_000, 500);
    const total = Buffer.byteLength(items.map((it, i) => sseEventText(i, it, true)).join(""));
    const random = seeded(2024);
    const cuts = Array.from({ length: 12 }, () => 1 + Math.floor(random() * (total - 2)));
    const h = await run({ items, cuts, retryMs: 10, token: TOKEN });
    await waitFor(() => h.seqs.length >= 20_000, "20,000 Items", 80_000);
    await new Promise((r) => setTimeout(r, 200));
    assertInOrderOnce(h.seqs, 20_000);
    assert.equal(server?.requests.length, 13);
    assert.equal(h.msgs[0].topic, "test-live");
    assert.equal(h.msgs[0].eventId, "1");
    assert.equal(server?.requests[0].authorization, `Token ${TOKEN}`);
    const lostLogs = h.texts.filter((t) => t.includes("log.retrying")).length;
    assert.ok(lostLogs <= 13, "at most one log line per state change");
    assertNoToken(h);
  });

  it("sends no duplicates when the server ignores Last-Event-ID and replays from the start", async () => {
    const items = makeItems(3000, 500);
    const random = seeded(5);
    const cuts = Array.from({ length: 8 }, () => 1 + Math.floor(random() * 1_500_000));
    const h = await run({ items, cuts, retryMs: 10, honourLastEventId: false });
    await waitFor(() => h.seqs.length >= 3000 && (server?.requests.length ?? 0) === 9, "3000 Items over 9 connections", 60_000);
    await new Promise((r) => setTimeout(r, 300));
    assertInOrderOnce(h.seqs, 3000);
    assertNoToken(h);
  });

  it("replaces a stalled stream through the idle watchdog", async () => {
    const h = await run({ items: makeItems(50), stallAfter: 10, stallConnections: 1, retryMs: 10 }, { idleTimeout: 0.5 });
    await waitFor(() => h.seqs.length === 50, "50 Items", 20_000);
    assertInOrderOnce(h.seqs, 50);
    assert.equal(server?.requests[1].lastEventId, "10");
    assert.ok(h.statuses.some((s) => s.text === `${T}.status.retrying`), "status showed the retry");
    await waitFor(() => server?.open === 1, "the stalled socket was closed");
    assertNoToken(h);
  });

  it("hits the connect deadline on a server that accepts TCP but never answers headers", async () => {
    const h = await run({ items: makeItems(5), neverAnswer: 1, retryMs: 10 }, { connectTimeout: 0.5 });
    await waitFor(() => h.seqs.length === 5, "5 Items", 20_000);
    assert.equal(server?.requests.length, 2);
    assert.ok(h.texts.some((t) => t.includes("log.retrying")), "the timeout was logged once");
    assertNoToken(h);
  });

  it("honours Retry-After on 503 and 429", async () => {
    const h = await run({ items: makeItems(3), statuses: [{ status: 503, retryAfter: "1" }, { status: 429, retryAfter: "1" }] });
    await waitFor(() => h.seqs.length === 3, "3 Items", 20_000);
    const at = (server as SseTestServer).requests.map((r) => r.at);
    assert.ok(at[1] - at[0] >= 950 && at[2] - at[1] >= 950, `gaps ${at[1] - at[0]} / ${at[2] - at[1]} ms`);
    assertNoToken(h);
  });

  it("resumes from the last event id kept in a persistent context store after a restart: nothing lost, nothing twice", async () => {
    // A user with a file context store (settings.js contextStorage); the node picks it by itself.
    const dir = mkdtempSync(join(tmpdir(), "ds-sub-context-"));
    const context = (helper as unknown as { _context: { load(): Promise<void>; close(): Promise<void> } })._context;
    helper.settings({ contextStorage: { file: { module: "localfilesystem", config: { dir, flushInterval: 0.1 } } } });
    try {
      const items = makeItems(40);
      const h = await run({ items }, { resume: true });
      await context.load();
      await waitFor(() => h.seqs.length === 40, "40 Items");
      await helper.setFlows(flow(server as SseTestServer, { resume: true }), "full", { cfg: { token: TOKEN } });
      const again = attach();
      await waitFor(() => (server?.requests.length ?? 0) === 2, "reconnected after the restart of the flows");
      assert.equal(server?.requests[1].lastEventId, "40", "the new node started from the saved id");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(again.seqs.length, 0, "no Item sent twice");
      await waitFor(() => readdirSync(join(dir, "context"), { recursive: true }).some((f) => String(f).endsWith(".json")), "the file store holds the position");

      // Without resume, a restart starts from the live edge (no Last-Event-ID).
      await helper.setFlows(flow(server as SseTestServer, { resume: false }), "full", { cfg: { token: TOKEN } });
      await waitFor(() => (server?.requests.length ?? 0) === 3, "reconnected");
      assert.equal(server?.requests[2].lastEventId, undefined);
    } finally {
      helper.settings({ contextStorage: undefined });
      await context.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("leaves exactly one open stream and flat listener counts after 100 redeploys (full and partial)", async () => {
    server = await startSseTestServer({ items: makeItems(5), commentEveryMs: 1000 });
    const s = server;
    await helper.load([configNode(), builtNode(T)], flow(s), { cfg: { token: TOKEN } });
    await waitFor(() => s.open === 1, "first stream");
    const listeners = () => {
      const cfg = helper.getNode("cfg");
      const onCfg = cfg.eventNames().reduce((n: number, e: string | symbol) => n + cfg.listenerCount(e), 0);
      const onProcess = process.eventNames().reduce((n, e) => n + process.listenerCount(e as string), 0);
      return { onCfg, onProcess, users: cfg.users.size as number };
    };
    let baseline: ReturnType<typeof listeners> | undefined;
    for (let i = 0; i < 100; i++) {
      const type = i % 2 === 0 ? "nodes" : "full";
      await helper.setFlows(flow(s, {}, `round ${i}`), type, { cfg: { token: TOKEN } });
      if (i === 9) {
        await waitFor(() => s.open === 1, "one stream");
        baseline = listeners();
      }
    }
    await waitFor(() => s.open === 1, "exactly one open stream after 100 redeploys", 20_000);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(s.open, 1, "still exactly one");
    // Nodes closed while still connecting abort before their request reaches the server.
    assert.ok(s.requests.length >= 3 && s.requests.length <= 101, `${s.requests.length} requests`);
    assert.ok(s.maxOpen <= 3, `closing streams and their successor overlap only briefly (saw ${s.maxOpen})`);
    const after = listeners();
    assert.deepEqual(after, baseline, "listener counts stay flat");
    assert.equal(after.users, 1);
    // The last node deployed is the one streaming.
    const requests = s.requests.length;
    await helper.setFlows(flow(s, {}, "final"), "nodes", { cfg: { token: TOKEN } });
    const h = attach();
    await waitFor(() => h.seqs.length === 5, "the final node receives the Items");
    assert.equal(s.requests.length, requests + 1);
    await waitFor(() => s.open === 1, "one stream");
  });
});
