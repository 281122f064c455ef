import { strict as assert } from "node:assert";
import { startSandbox, type Sandbox, type SandboxOptions } from "../../src/sandbox";
import { builtNode, configNode, helper, sleep, startHelperServer, stopHelperServer, waitFor } from "../helpers/node-red";
import { withRuntimeHooks, type NodeModule } from "../helpers/node-red-core";
import { makeItems } from "../helpers/sse-test-server";
import { slowSink } from "../helpers/slow-sink";
import { throwingSink } from "../helpers/throwing-sink";

// subscribe-in's flow control in a Node-RED runtime with its message hooks, against the sandbox
// writing one event per write (like a live server): a slow or stuck next node holds at most the
// window, the rest waits in the node, and nothing received is lost when the server drops meanwhile.

type Msg = Record<string, any>;
const TOKEN = "sandbox-token-flow-8c1d4e";
const LIVE = "sentinel-2-l2a-live";
const T = "datasphere-subscribe-in";
const subscribeWithHooks = withRuntimeHooks(builtNode(T));

/** `gate-sink`: keeps every message without calling done() until the test calls `open()`; from then on completes at once. */
const gateSink: NodeModule = (RED) => {
  RED.nodes.registerType("gate-sink", function (this: any, def: object) {
    RED.nodes.createNode(this, def);
    const node = this;
    const waiting: Array<() => void> = [];
    let open = false;
    node.received = [] as Msg[];
    node.open = () => {
      open = true;
      for (const done of waiting.splice(0)) done();
    };
    node.on("input", (msg: Msg, _send: unknown, done: () => void) => {
      node.received.push(msg);
      if (open) done();
      else waiting.push(done);
    });
  });
};

const seqOf = (item: Msg) => (item.properties as { seq: number }).seq;
const seqs = (msgs: Msg[]) => msgs.flatMap((m) => (Array.isArray(m.payload) ? m.payload : [m.payload])).map(seqOf);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe("datasphere-subscribe-in flow control (runtime message hooks, sandbox)", function () {
  this.timeout(30_000);
  let sb: Sandbox | undefined;
  before(startHelperServer);
  after(stopHelperServer);
  afterEach(async () => {
    await helper.unload();
    await sb?.close();
    sb = undefined;
  });

  /** `faults`: set on the sandbox before the node connects (a connection takes its faults when it opens). */
  async function load(sink: Msg, props: Record<string, unknown>, modules: NodeModule[], options: Partial<SandboxOptions> = {}, faults?: (s: Sandbox) => void) {
    sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs: 0, keepAliveMs: 0, retryMs: 10, ...options });
    faults?.(sb);
    const flow = [
      { id: "cfg", type: "datasphere-config", apiUrl: sb.url, publishUrl: sb.publishUrl, authMode: "header" },
      { id: "sub", type: T, server: "cfg", package: LIVE, wires: [["sink"]], ...props },
      { id: "sink", ...sink },
    ];
    await helper.load([configNode(), subscribeWithHooks, ...modules], flow, { cfg: { token: TOKEN } });
    const s = sb;
    await waitFor(() => s.liveSubscriberCount(LIVE) === 1, "subscribed");
    return { s, sink: helper.getNode("sink"), sub: helper.getNode("sub") };
  }

  function publish(s: Sandbox, from: number, to: number): void {
    const items = makeItems(to, 600);
    for (let i = from; i < to; i++) s.publishLive(LIVE, JSON.parse(items[i]) as object);
  }

  const warnings = (sub: Msg) => (sub.warn as { args: unknown[][] }).args.map((a) => String(a[0]));

  it("a slow next node holds at most In flight Items; every Item arrives once, in order", async () => {
    const { s, sink } = await load({ type: "slow-sink", holdMs: 2 }, { window: 20 }, [slowSink]);
    publish(s, 0, 300);
    await waitFor(() => sink.count === 300, "300 Items", 20_000);
    await sleep(100);
    assert.equal(sink.count, 300, "nothing twice");
    assert.deepEqual(seqs(sink.received), range(0, 300));
    assert.ok(sink.maxHeld <= 20 && sink.maxHeld >= 2, `held at most the window: ${sink.maxHeld}`);
  });

  it("arrays mode: the window counts Items, so no array is larger than In flight", async () => {
    const { s, sink } = await load({ type: "slow-sink", holdMs: 2 }, { window: 30, messages: "array", arraySize: 100 }, [slowSink], { subscriptionWrites: "batched" });
    publish(s, 0, 300);
    await waitFor(() => seqs(sink.received).length === 300, "300 Items", 20_000);
    assert.deepEqual(seqs(sink.received), range(0, 300));
    const lengths = sink.received.map((m: Msg) => (m.payload as unknown[]).length);
    assert.ok(Math.max(...lengths) <= 30, `arrays of at most 30 Items: ${lengths.join(",")}`);
    assert.ok(lengths.some((n: number) => n > 1), `arrays of several Items: ${lengths.join(",")}`);
  });

  it("a stuck next node and an abrupt drop by a server that does not replay: the next node gets the window, then every Item received, none lost", async () => {
    const { s, sink } = await load({ type: "gate-sink" }, { window: 10 }, [gateSink], {}, (s) => s.faults.set({ ignoreLastEventId: true, dropAfterEvents: 300, times: 1 }, "subscription"));
    publish(s, 0, 400);
    await waitFor(() => s.stats.subscriptionConnections === 2 && s.liveSubscriberCount(LIVE) === 1, "dropped after 300 events, reconnected", 15_000);
    await waitFor(() => sink.received.length === 10, "the window's 10 Items");
    await sleep(200);
    assert.equal(sink.received.length, 10, "nothing beyond the window while the next node is stuck");
    sink.open();
    await waitFor(() => sink.received.length === 300, "the 290 Items that waited in the node");
    publish(s, 400, 450);
    await waitFor(() => sink.received.length === 350, "the 50 Items published after the reconnect");
    await sleep(100);
    // Items 300-399 were written after the drop's cut and the server does not replay them.
    assert.deepEqual(seqs(sink.received), [...range(0, 300), ...range(400, 450)]);
  });

  it("Resume with Items still waiting at a disconnect: the next connection starts after the last Item sent, so none is skipped", async () => {
    const { s, sink, sub } = await load({ type: "gate-sink" }, { window: 10, resume: true }, [gateSink]);
    publish(s, 0, 100);
    await waitFor(() => sink.received.length === 10, "the window's 10 Items");
    sub.receive({ action: "disconnect" });
    await waitFor(() => s.liveSubscriberCount(LIVE) === 0, "disconnected");
    sub.receive({ action: "connect" });
    await waitFor(() => s.liveSubscriberCount(LIVE) === 1, "connected again");
    sink.open();
    await waitFor(() => sink.received.length === 100, "the 90 Items that were waiting, replayed by the server");
    await sleep(100);
    assert.deepEqual(seqs(sink.received), range(0, 100), "every Item once, in order");
  });

  it("a next node that throws instead of calling done(): the window is written off after Stall write-off, with one warning", async () => {
    const { s, sink, sub } = await load({ type: "throwing-sink", throwFirst: 5 }, { window: 5, stallTimeout: 0.5 }, [throwingSink]);
    publish(s, 0, 50);
    await waitFor(() => sink.received.length === 50, "every Item despite the stuck window", 20_000);
    assert.deepEqual(seqs(sink.received), range(0, 50));
    const stalled = warnings(sub).filter((w) => w === "datasphere-subscribe-in.warnings.stalled");
    assert.equal(stalled.length, 1, warnings(sub).join("\n"));
  });
});
