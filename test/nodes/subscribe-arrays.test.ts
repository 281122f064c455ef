import { strict as assert } from "node:assert";
import { startSandbox, type Sandbox, type SandboxOptions } from "../../src/sandbox";
import { builtNode, configNode, helper, sleep, startHelperServer, stopHelperServer, waitFor } from "../helpers/node-red";
import { makeItems } from "../helpers/sse-test-server";
import type { NodeMessage } from "../../src/nodes/shared/node-red";

// subscribe-in's arrays mode ("Messages: arrays of up to N Items") in a real Node-RED runtime against
// the sandbox: one event per write (its default, like a live server) and batched writes.

const TOKEN = "sandbox-token-arrays-5e8f2a";
const LIVE = "sentinel-2-l2a-live";
const T = "datasphere-subscribe-in";
/** Node-RED's log level of node.warn. */
const WARN = 30;

interface Harness {
  msgs: NodeMessage[];
  /** The node's warnings so far (those logged while it was created included). */
  warns(): string[];
}

async function load(sb: Sandbox, props: Record<string, unknown>): Promise<Harness> {
  const flow = [
    { id: "cfg", type: "datasphere-config", apiUrl: sb.url, publishUrl: sb.publishUrl, authMode: "header" },
    { id: "sub", type: T, server: "cfg", package: LIVE, messages: "array", wires: [["out"]], ...props },
    { id: "out", type: "helper" },
  ];
  await helper.load([configNode(), builtNode(T)], flow, { cfg: { token: TOKEN } });
  const warns = () =>
    (helper.log().args as Array<[{ level: number; id?: string; msg: unknown }]>).filter(([e]) => e.level === WARN && e.id === "sub").map(([e]) => String(e.msg));
  const h: Harness = { msgs: [], warns };
  helper.getNode("out").on("input", (msg: NodeMessage) => h.msgs.push(msg));
  await waitFor(() => sb.liveSubscriberCount(LIVE) === 1, "subscribed");
  return h;
}

/** The Items of every array message, in the order they arrived. */
function flatten(msgs: NodeMessage[]): Array<Record<string, unknown>> {
  return msgs.flatMap((m) => {
    assert.ok(Array.isArray(m.payload), `every message carries an array (got ${typeof m.payload})`);
    return m.payload as Array<Record<string, unknown>>;
  });
}

const seqOf = (item: Record<string, unknown>) => (item.properties as { seq: number }).seq;

/** Publishes test Items seq from..to-1 in one turn of the event loop (the batched sandbox writes them together). */
function publish(sb: Sandbox, from: number, to: number, size = 600): void {
  const items = makeItems(to, size);
  for (let i = from; i < to; i++) sb.publishLive(LIVE, JSON.parse(items[i]) as object);
}

/**
 * Every Item exactly once and in order; no array longer than `max`; msg.eventId is the id of the
 * array's last Item (ids are 1, 2, … in publication order on a fresh sandbox); topic is the package.
 */
function assertArrays(msgs: NodeMessage[], count: number, max: number): void {
  const items = flatten(msgs);
  assert.deepEqual(items.map(seqOf), Array.from({ length: count }, (_, i) => i), "every Item once, in order");
  let seen = 0;
  for (const m of msgs) {
    const length = (m.payload as unknown[]).length;
    assert.ok(length >= 1 && length <= max, `array of ${length} Items (at most ${max})`);
    seen += length;
    assert.equal(m.eventId, String(seen), "eventId is the id of the array's last Item");
    assert.equal(m.topic, LIVE);
  }
}

describe("datasphere-subscribe-in arrays mode (sandbox)", function () {
  this.timeout(30_000);
  let sb: Sandbox | undefined;
  before(startHelperServer);
  after(stopHelperServer);
  afterEach(async () => {
    await helper.unload();
    await sb?.close();
    sb = undefined;
    delete process.env.DS_TEST_ARRAY_SIZE;
  });

  const start = async (options: Partial<SandboxOptions> = {}) => {
    sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs: 0, keepAliveMs: 0, retryMs: 10, ...options });
    return sb;
  };

  it("one event per write: 500 Items arrive exactly once, in order, in arrays of at most 7, eventId = last Item's id", async () => {
    const s = await start();
    const h = await load(s, { arraySize: 7 });
    publish(s, 0, 250);
    await waitFor(() => flatten(h.msgs).length === 250, "250 Items");
    // A lone Item is not held back waiting for company.
    publish(s, 250, 251);
    await waitFor(() => flatten(h.msgs).length === 251, "the lone Item");
    publish(s, 251, 500);
    await waitFor(() => flatten(h.msgs).length === 500, "500 Items");
    await sleep(200);
    assertArrays(h.msgs, 500, 7);
  });

  it("batched server: arrays of several Items do occur, never more than N (`${VAR}`), strings with the string output", async () => {
    const s = await start({ subscriptionWrites: "batched" });
    process.env.DS_TEST_ARRAY_SIZE = "10";
    const h = await load(s, { arraySize: "${DS_TEST_ARRAY_SIZE}" });
    publish(s, 0, 300);
    await waitFor(() => flatten(h.msgs).length === 300, "300 Items");
    await sleep(200);
    assertArrays(h.msgs, 300, 10);
    const lengths = h.msgs.map((m) => (m.payload as unknown[]).length);
    assert.ok(lengths.filter((n) => n > 1).length >= 10, `arrays of more than one Item (lengths: ${lengths.join(",")})`);
    assert.ok(lengths.includes(10), "full arrays of N");
    assert.deepEqual(h.warns(), [], "a valid size gives no warning");
    await helper.unload();
    await waitFor(() => s.liveSubscriberCount(LIVE) === 0, "the first node's stream closed");

    const strings = await load(s, { arraySize: 10, output: "string" });
    publish(s, 0, 40);
    await waitFor(() => strings.msgs.reduce((n, m) => n + (m.payload as unknown[]).length, 0) === 40, "40 Items as strings");
    const texts = strings.msgs.flatMap((m) => m.payload as unknown[]);
    assert.ok(texts.every((t) => typeof t === "string"), "arrays of JSON strings");
    assert.deepEqual(texts.map((t) => seqOf(JSON.parse(t as string) as Record<string, unknown>)), Array.from({ length: 40 }, (_, i) => i));
    assert.ok(strings.msgs.some((m) => (m.payload as unknown[]).length > 1), "arrays of several strings");
  });

  it("STAC check 'drop' drops single Items out of an array", async () => {
    const s = await start({ subscriptionWrites: "batched" });
    const h = await load(s, { arraySize: 50, stacCheck: "drop" });
    s.publishLive(LIVE);
    s.publishLive(LIVE, { type: "Feature", id: "broken", links: [] });
    s.publishLive(LIVE);
    await waitFor(() => flatten(h.msgs).length === 2, "the 2 valid Items");
    await sleep(200);
    const items = flatten(h.msgs);
    assert.equal(items.length, 2);
    assert.ok(items.every((item) => item.id !== "broken" && item.type === "Feature"));
    assert.equal(h.msgs.at(-1)?.eventId, "3");
    assert.ok(h.warns().some((w) => w.includes("errors.invalidStac")), "the broken Item was reported");
  });

  for (const writes of ["event", "batched"] as const) {
    it(`abrupt drop mid-event, server that does not replay (${writes} writes): every complete event is delivered, then the stream goes on`, async () => {
      const s = await start({ subscriptionWrites: writes });
      const items = makeItems(400, 600);
      // The body so far: the `retry:` advice, then one frame per event; the cut falls in the middle of event 251.
      const frames = items.map((data, i) => `id: ${i + 1}\ndata: ${data}\n\n`);
      const before = Buffer.byteLength("retry: 10\n\n") + frames.slice(0, 250).reduce((n, f) => n + Buffer.byteLength(f), 0);
      s.faults.set({ ignoreLastEventId: true, dropAfterBytes: before + 300, times: 1 }, "subscription");
      const h = await load(s, { arraySize: 100 });
      publish(s, 0, 400);
      await waitFor(() => s.stats.subscriptionConnections === 2 && s.liveSubscriberCount(LIVE) === 1, "reconnected after the cut", 15_000);
      await sleep(200);
      assertArrays(h.msgs, 250, 100);
      // Events 251-400 were cut off and the server does not replay them; later ones arrive.
      const delivered = h.msgs.length;
      const more = makeItems(450, 600);
      for (let i = 400; i < 450; i++) s.publishLive(LIVE, JSON.parse(more[i]) as object);
      await waitFor(() => flatten(h.msgs).length === 300, "the 50 Items published after the reconnect");
      await sleep(200);
      const after = flatten(h.msgs.slice(delivered));
      assert.deepEqual(after.map(seqOf), Array.from({ length: 50 }, (_, i) => 400 + i), "nothing lost after the reconnect, nothing twice");
      assert.equal(h.msgs.at(-1)?.eventId, "450");
    });
  }

  for (const bad of [0, -1, "abc", "2.5"]) {
    it(`Items per message ${JSON.stringify(bad)}: one warning, arrays of at most 100 (the default)`, async () => {
      const s = await start({ subscriptionWrites: "batched" });
      const h = await load(s, { arraySize: bad });
      assert.equal(h.warns().length, 1, `one warning: ${h.warns().join(" | ")}`);
      assert.match(h.warns()[0], /warnings\.setting/);
      // 250 small Items (~25 KB) in one write, read in one turn on loopback: arrays of 100, 100 and 50.
      publish(s, 0, 250, 100);
      await waitFor(() => flatten(h.msgs).length === 250, "250 Items");
      assertArrays(h.msgs, 250, 100);
      assert.equal(Math.max(...h.msgs.map((m) => (m.payload as unknown[]).length)), 100, "full arrays of 100");
    });
  }

  it("an empty Items per message means the default (100) without a warning; the default mode still sends one message per Item", async () => {
    const s = await start({ subscriptionWrites: "batched" });
    let h = await load(s, { arraySize: "" });
    publish(s, 0, 250, 100);
    await waitFor(() => flatten(h.msgs).length === 250, "250 Items");
    assert.deepEqual(h.warns(), []);
    assert.equal(Math.max(...h.msgs.map((m) => (m.payload as unknown[]).length)), 100);
    await helper.unload();
    await waitFor(() => s.liveSubscriberCount(LIVE) === 0, "the first node's stream closed");

    h = await load(s, { messages: undefined, arraySize: 10 });
    publish(s, 0, 20);
    await waitFor(() => h.msgs.length === 20, "20 messages");
    assert.ok(h.msgs.every((m) => !Array.isArray(m.payload) && (m.payload as { type: string }).type === "Feature"), "one Item per message");
  });
});
