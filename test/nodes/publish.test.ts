import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { corpusDocuments, corpusIndex, corpusRoot, requireCorpus, STAC_TYPES, type CorpusIndexEntry } from "../helpers/corpus";
import { builtNode, configNode, helper, nodeRedPath, sleep, waitFor } from "../helpers/node-red";
import { publishRuntime } from "../helpers/publish-runtime";
import { startWsTestServer } from "../helpers/ws-test-server";

const TOKEN = "publish-node-token-123";

/** Node-RED's own catch and complete nodes, from the runtime under test. */
function coreNode(file: string): unknown {
  return require(require.resolve(`@node-red/nodes/core/common/${file}`, { paths: [dirname(nodeRedPath)] }));
}
const NODES = () => [configNode(), builtNode("datasphere-publish-out"), coreNode("25-catch.js"), coreNode("24-complete.js")];

function cfg(publishUrl: string, authMode: "header" | "message" = "header") {
  return { id: "cfg", type: "datasphere-config", apiUrl: "http://127.0.0.1:1", publishUrl, authMode };
}

function pub(id: string, extra: Record<string, unknown> = {}) {
  return { id, type: "datasphere-publish-out", server: "cfg", activeParent: "cool-sat", provider: "", subscribable: true, ...extra };
}

/** A publish node with a catch and a complete node feeding two helper nodes. */
function flowFor(publishUrl: string, authMode: "header" | "message" = "header", pubExtra: Record<string, unknown> = {}) {
  return [
    cfg(publishUrl, authMode),
    pub("pub1", pubExtra),
    { id: "catch1", type: "catch", scope: ["pub1"], uncaught: false, wires: [["errors"]] },
    { id: "complete1", type: "complete", scope: ["pub1"], uncaught: false, wires: [["oks"]] },
    { id: "errors", type: "helper" },
    { id: "oks", type: "helper" },
  ];
}

function outcomes() {
  const ok: any[] = [];
  const err: any[] = [];
  helper.getNode("oks").on("input", (msg: any) => ok.push(msg));
  helper.getNode("errors").on("input", (msg: any) => err.push(msg));
  return { ok, err };
}

function item(id: string): Record<string, unknown> {
  return { type: "Feature", stac_version: "1.0.0", id, geometry: null, properties: { datetime: "2024-01-01T00:00:00Z" }, links: [], assets: {} };
}


describe("datasphere-publish-out node", function () {
  this.timeout(120_000);
  const { cleanup, server } = publishRuntime(TOKEN);
  async function sandbox(heartbeatMs = 1_000): Promise<Sandbox> {
    const sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs });
    cleanup.push(() => sb.close());
    return sb;
  }

  it("sends exactly the documented message; msg.activeParent, msg.provider and msg.subscribable override", async () => {
    const s = await server();
    await helper.load(NODES(), flowFor(s.url, "header", { provider: "node-provider" }), { cfg: { token: TOKEN } });
    const { ok, err } = outcomes();
    const node = helper.getNode("pub1");
    node.receive({ payload: item("a") });
    node.receive({ payload: JSON.stringify(item("b")), activeParent: "other-parent", provider: "astro_dynamic", subscribable: false });
    node.receive({ payload: item("c"), provider: "" });
    await waitFor(() => ok.length === 3, "three done()");
    // done() means flushed to the socket, not yet read by the server: wait for the server's side.
    await waitFor(() => s.messages.length >= 3, "the server read three messages");
    assert.equal(err.length, 0);
    // done() means flushed to our socket; the server reads it a moment later.
    await waitFor(() => s.messages.length === 3, "three messages at the server");
    assert.deepEqual(s.messages.map((m) => m.json), [
      { active_parent: "cool-sat", data: item("a"), provider: "node-provider", subscribable: true },
      { active_parent: "other-parent", data: item("b"), provider: "astro_dynamic", subscribable: false },
      { active_parent: "cool-sat", data: item("c"), subscribable: true },
    ]);
    assert.deepEqual(Object.keys(s.messages[2].json), ["active_parent", "data", "subscribable"]);
    // A JSON-text payload goes on the wire as given.
    assert.ok(s.messages[1].text.includes(`"data":${JSON.stringify(item("b"))}`));
  });

  it("rejects a bad payload or empty active parent with done(err) naming the problem, and sends nothing", async () => {
    const s = await server();
    await helper.load(NODES(), flowFor(s.url, "header", { activeParent: "" }), { cfg: { token: TOKEN } });
    const { ok, err } = outcomes();
    const node = helper.getNode("pub1");
    await waitFor(() => s.openClients === 1, "connected");
    node.receive({ payload: item("no-parent") });
    node.receive({ payload: "{not json", activeParent: "p" });
    node.receive({ payload: { type: "Feature", id: "x", links: [] }, activeParent: "p" });
    node.receive({ payload: item("bad-flag"), activeParent: "p", subscribable: "maybe" });
    await waitFor(() => err.length === 4, "four errors at the catch node");
    assert.equal(ok.length, 0);
    const errors = (node.error as { args: unknown[][] }).args.map((a) => a[0] as { code: string; details: { detail: string } });
    assert.deepEqual(errors.map((e) => e.code), ["BAD_REQUEST", "INVALID_STAC", "INVALID_STAC", "BAD_REQUEST"]);
    assert.match(errors[0].details.detail, /active_parent is empty/);
    assert.match(errors[1].details.detail, /payload is not JSON/);
    assert.match(errors[2].details.detail, /stac_version: missing/);
    assert.match(errors[2].details.detail, /geometry: missing/);
    assert.match(errors[3].details.detail, /msg\.subscribable must be true or false/);
    assert.equal(err[1].error.message, "DatasphereError: datasphere-publish-out.errors.invalidStac");
    assert.deepEqual(err.map((m) => m.error.code), ["BAD_REQUEST", "INVALID_STAC", "INVALID_STAC", "BAD_REQUEST"]);
    await sleep(100);
    assert.equal(s.messages.length, 0);
  });

  for (const authMode of ["header", "message"] as const) {
    it(`every valid corpus Item, Collection and Catalog arrives at the sandbox with data deep-equal (${authMode} auth)`, async function () {
      requireCorpus(this);
      const sb = await sandbox();
      await helper.load(NODES(), flowFor(sb.publishUrl, authMode), { cfg: { token: TOKEN } });
      const { ok, err } = outcomes();
      const docs = corpusDocuments("valid").filter((d) => STAC_TYPES.has((d.json as any).type));
      assert.ok(docs.length >= 30, `corpus has ${docs.length} STAC objects`);
      const node = helper.getNode("pub1");
      // Half as objects, half as JSON text.
      docs.forEach((d, i) => node.receive({ payload: i % 2 === 0 ? d.json : d.text, activeParent: `parent-${i}` }));
      await waitFor(() => ok.length + err.length === docs.length, "every message settled", 30_000);
      assert.deepEqual(err.map((m) => m.error?.message), []);
      const published = await sb.waitForPublished(docs.length, 10_000);
      assert.equal(published.length, docs.length);
      for (let i = 0; i < docs.length; i++) {
        const record = published.find((p) => p.activeParent === `parent-${i}`);
        assert.ok(record, `${docs[i].file} arrived`);
        assert.deepEqual(record.data, JSON.parse(docs[i].text), docs[i].file);
        assert.equal(record.authMode, authMode);
        assert.equal(record.subscribable, true);
      }
      assert.equal(sb.rejected.length, 0);
    });
  }

  it("invalid corpus documents: structural failures rejected before sending; schemaCheck=warn sends and warns; schemaCheck=reject rejects core failures, sends extension-only failures with a warning", async function () {
    requireCorpus(this);
    const index = corpusIndex();
    const invalid = corpusDocuments("invalid");
    const entry = (file: string) => index.find((e) => e.file === `invalid/${file}`) as CorpusIndexEntry;
    for (const schemaCheck of ["off", "warn", "reject"] as const) {
      const s = await server();
      await helper.load(NODES(), flowFor(s.url, "header", { schemaCheck, schemaDir: join(corpusRoot, "schemas") }), { cfg: { token: TOKEN } });
      const { ok, err } = outcomes();
      const node = helper.getNode("pub1");
      invalid.forEach((d) => node.receive({ payload: d.json, _file: d.file }));
      await waitFor(() => ok.length + err.length === invalid.length, "every message settled", 30_000);
      const sent = new Set(ok.map((m) => m._file as string));
      const warned = (node.warn as { args: unknown[][] }).args.map((a) => String(a[0]));
      const lightMissed: string[] = [];
      const schemaWarned: string[] = [];
      for (const d of invalid) {
        const e = entry(d.file);
        const isStacObject = STAC_TYPES.has((d.json as any).type);
        const coreInvalid = e.core.some((c) => c !== "valid");
        if (!isStacObject) assert.ok(!sent.has(d.file), `${d.file}: not an Item/Collection/Catalog, rejected`);
        else if (schemaCheck === "reject") assert.equal(sent.has(d.file), !coreInvalid, `${d.file}: core ${e.core}, sent=${sent.has(d.file)}`);
        else if (coreInvalid && sent.has(d.file)) lightMissed.push(d.file);
        if (schemaCheck === "warn" && isStacObject && coreInvalid && sent.has(d.file)) schemaWarned.push(d.file);
        if (schemaCheck === "reject" && isStacObject && !coreInvalid && e.extension_invalid.length > 0) {
          assert.ok(sent.has(d.file), `${d.file}: extension-only failure is sent`);
        }
      }
      const extensionOnly = invalid.filter((d) => {
        const e = entry(d.file);
        return STAC_TYPES.has((d.json as any).type) && !e.core.some((c) => c !== "valid") && e.extension_invalid.length > 0;
      });
      assert.ok(extensionOnly.length >= 2);
      if (schemaCheck === "reject") assert.equal(warned.filter((w) => w === "datasphere-publish-out.errors.extensionWarning").length, extensionOnly.length, warned.join("\n"));
      if (schemaCheck === "warn") {
        // warn sends what the structural check lets through, and logs each core-schema failure.
        assert.equal(schemaWarned.length, 4);
        assert.equal(warned.filter((w) => w === "datasphere-publish-out.errors.schemaWarning").length, 4, warned.join("\n"));
      }
      // What the structural check alone cannot see (it needs the JSON Schemas): recorded, not hidden.
      if (schemaCheck !== "reject") {
        assert.deepEqual(lightMissed.sort(), [
          "rustac__item_blacksky_naive-datetime.json",
          "rustac__item_rcm-ard_naive-datetimes.json",
          "stac-js__cdse-item_S2B_MSIL2A_20240110T100309_T33UVR_collection-without-link.json",
          "stac-server__item_badGeometryItem.json",
        ]);
      }
      await waitFor(() => s.messages.length === ok.length, "server received exactly the sent ones");
      assert.deepEqual(new Set(s.messages.map((m) => m.json.data.id)), new Set(ok.map((m) => (m.payload as any).id)));
      await helper.unload();
    }
  });

  it("two publish nodes on one config share one socket; 100 partial redeploys keep one socket and flat listeners; the last node leaving closes it", async () => {
    const s = await server();
    const flowAt = (a: number, b: number) => [cfg(s.url), pub("p1", { provider: `v${a}` }), pub("p2", { activeParent: `x${b}` })];
    const base = flowAt(0, 0);
    await helper.load(NODES(), base, { cfg: { token: TOKEN } });
    await waitFor(() => s.openClients === 1, "one socket");
    const config = helper.getNode("cfg");
    const publisher = config.publishConnection.publisher;
    const firstP1 = helper.getNode("p1");
    const firstP2 = helper.getNode("p2");
    assert.equal(config.publishConnection.userCount, 2, "both nodes hold the one publisher");
    // The config node listens to its publisher once, whatever the number of publish nodes.
    assert.equal(publisher.listenerCount("state"), 1);
    const configListeners = config.eventNames().map((n: string | symbol) => config.listenerCount(n)).reduce((a: number, b: number) => a + b, 0);
    let a = 0;
    let b = 0;
    for (let i = 0; i < 100; i++) {
      // Each deploy restarts one of the two nodes (the other keeps the socket).
      if (i % 2 === 0) a++;
      else b++;
      await helper.setFlows(flowAt(a, b), "nodes");
    }
    await waitFor(() => helper.getNode("cfg").publishConnection.userCount === 2, "publisher attached after the last deploy");
    assert.notEqual(helper.getNode("p1"), firstP1, "p1 was restarted");
    assert.notEqual(helper.getNode("p2"), firstP2, "p2 was restarted");
    const now = helper.getNode("cfg").publishConnection.publisher;
    assert.equal(now, publisher, "the shared publisher survived 100 partial deploys");
    assert.equal(now.listenerCount("state"), 1, "listener count is flat");
    const configNow = helper.getNode("cfg");
    assert.equal(configNow.users.size, 2);
    assert.equal(configNow.eventNames().map((n: string | symbol) => configNow.listenerCount(n)).reduce((a: number, b: number) => a + b, 0), configListeners);
    assert.equal(s.connections, 1, "never reconnected");
    assert.equal(s.openClients, 1);
    helper.getNode("p2").receive({ payload: item("still-works") });
    await waitFor(() => s.messages.length === 1, "a message after the deploys");
    // Both nodes restarting in one deploy: the old socket is torn down before the new one opens.
    for (let i = 0; i < 10; i++) {
      a++;
      b++;
      await helper.setFlows(flowAt(a, b), "nodes");
      await waitFor(() => s.openClients === 1 && helper.getNode("cfg").publishConnection.publisher?.status.state === "connected", `one socket after full restart ${i}`);
    }
    assert.equal(s.connections, 11);
    assert.equal(publisher.status.state, "closed");
    const last = helper.getNode("cfg").publishConnection.publisher;
    assert.equal(last.listenerCount("state"), 1);
    await helper.setFlows([cfg(s.url)], "nodes");
    await waitFor(() => s.openClients === 0, "the last node leaving closed the socket");
    assert.equal(last.status.state, "closed");
  });

  it("a wrong token shows 'token rejected' and does not reconnect in a hot loop", async () => {
    for (const authMode of ["header", "message"] as const) {
      const s = await server({ authMode });
      await helper.load(NODES(), flowFor(s.url, authMode), { cfg: { token: "wrong-token-xyz" } });
      const node = helper.getNode("pub1");
      await waitFor(() => node.status.args.some((a: any[]) => a[0].text === "datasphere-publish-out.status.tokenRejected"), "token rejected status", 10_000);
      const last = node.status.lastCall.args[0];
      assert.equal(last.fill, "red");
      await sleep(1_500);
      assert.equal(s.upgrades, 1, `${authMode}: one attempt, no hot loop (${s.upgrades})`);
      assert.equal(s.authRejections, 1);
      const publisher = helper.getNode("cfg").publishConnection.publisher;
      const seen = JSON.stringify([node.status.args, node.error.args, node.warn.args, publisher.status, publisher.lastReason]);
      assert.ok(!seen.includes("wrong-token-xyz"), "the token appears in no status, log or reason");
      assert.match(String(publisher.lastReason), authMode === "header" ? /HTTP 403 on upgrade/ : /1008: invalid token/);
      await helper.unload();
    }
  });

  it("a sandbox that stalls the handshake, then one that goes silent, are detected and replaced; the message waits and arrives", async () => {
    const sb = await sandbox(200);
    sb.faults.set({ stall: true, times: 1 }, "publish");
    await helper.load(NODES(), flowFor(sb.publishUrl, "header", { heartbeatTimeout: 2 }), { cfg: { token: TOKEN } });
    const { ok, err } = outcomes();
    const node = helper.getNode("pub1");
    node.receive({ payload: item("through-faults") });
    await waitFor(() => ok.length === 1, "sent after the stalled handshake was replaced", 15_000);
    const publisher = helper.getNode("cfg").publishConnection.publisher;
    assert.equal(publisher.stats.handshakeTimeouts, 1);
    // ok means the publisher flushed the message; the sandbox records it when it has read it.
    await waitFor(() => sb.published.length >= 1, "the sandbox received the message");
    assert.equal(sb.published.length, 1);
    sb.faults.set({ silent: true }, "publish");
    // Replace the healthy socket (msg.action-style disconnect/connect); the new one is silent.
    await publisher.disconnect();
    publisher.connect();
    await waitFor(() => publisher.stats.heartbeatTimeouts >= 1, "silent socket detected", 15_000);
    // A socket the sandbox accepted before the clear is silent; one it accepts after is healthy. (The
    // publisher counts an attempt when it starts connecting, so an attempt begun before the clear may
    // still get a healthy socket: count the sandbox's accepted connections, not the attempts.)
    const acceptedBeforeClear = sb.stats.publishConnections;
    sb.faults.clear("publish");
    // Up to one more silent socket (~2 s to detect) and its backoff (1-2 s, +50% jitter) on real
    // timers: a few seconds on a quiet machine, more when the CPU is starved.
    await waitFor(() => publisher.status.state === "connected" && sb.stats.publishConnections > acceptedBeforeClear, "reconnected", 40_000).catch((error: Error) => {
      throw new Error(`${error.message}; publisher ${JSON.stringify(publisher.status)}, stats ${JSON.stringify(publisher.stats)}, sandbox accepted ${sb.stats.publishConnections} (${acceptedBeforeClear} before the clear)`);
    });
    const detected = publisher.stats.heartbeatTimeouts;
    await sleep(2_500);
    assert.equal(publisher.stats.heartbeatTimeouts, detected, "heartbeats keep the new socket alive");
    node.receive({ payload: item("after-silence") });
    await waitFor(() => sb.published.length === 2, "message after the silent socket");
    assert.deepEqual(sb.published.map((p) => p.data.id), ["through-faults", "after-silence"]);
    assert.equal(err.length, 0);
  });

  it("the socket's heartbeat deadline is the config node's; a flow saved before keeps its publish node's value", async () => {
    // The server sends no heartbeats: a short deadline replaces the socket, the 60 s one does not.
    const s = await server();
    const silentFor = (config: Record<string, unknown>, node: Record<string, unknown>) => [{ ...cfg(s.url), ...config }, pub("pub1", node)];
    await helper.load(NODES(), silentFor({ heartbeatTimeout: 0.3 }, { heartbeatTimeout: 60 }), { cfg: { token: TOKEN } });
    await waitFor(() => (helper.getNode("cfg").publishConnection.publisher?.stats.heartbeatTimeouts ?? 0) >= 1, "the config node's 0.3 s deadline is in force");
    await helper.unload();
    await helper.load(NODES(), silentFor({}, { heartbeatTimeout: 0.3 }), { cfg: { token: TOKEN } });
    await waitFor(() => (helper.getNode("cfg").publishConnection.publisher?.stats.heartbeatTimeouts ?? 0) >= 1, "the publish node's legacy 0.3 s deadline is in force");
    await helper.unload();
    await helper.load(NODES(), silentFor({ heartbeatTimeout: 60 }, { heartbeatTimeout: 0.3 }), { cfg: { token: TOKEN } });
    const connection = helper.getNode("cfg").publishConnection;
    await waitFor(() => connection.publisher?.status.state === "connected", "connected");
    await sleep(1_000);
    assert.equal(connection.publisher.stats.heartbeatTimeouts, 0, "the config node's 60 s wins over the node's 0.3 s");
  });

  it("without a usable configuration: red status, and each message ends in done(err)", async () => {
    const flow = flowFor("ws://127.0.0.1:1/publish/v1").map((n: any) => (n.id === "cfg" ? { ...n, publishUrl: "ws://127.0.0.1:1/publish/v1" } : n));
    await helper.load(NODES(), flow, { cfg: { token: TOKEN } });
    const { ok, err } = outcomes();
    const node = helper.getNode("pub1");
    assert.deepEqual(node.status.lastCall.args[0], { fill: "red", shape: "ring", text: "datasphere-publish-out.status.invalidConfig" });
    node.receive({ payload: item("nowhere") });
    await waitFor(() => err.length === 1, "error at the catch node");
    assert.equal(err[0].error.code, "INVALID_CONFIG");
    assert.equal(ok.length, 0);
  });

  it("msg.action disconnect / connect; an unknown action is an error", async () => {
    const s = await server();
    await helper.load(NODES(), flowFor(s.url), { cfg: { token: TOKEN } });
    const { ok, err } = outcomes();
    const node = helper.getNode("pub1");
    await waitFor(() => s.openClients === 1, "connected");
    node.receive({ action: "disconnect" });
    await waitFor(() => ok.length === 1 && s.openClients === 0, "disconnected");
    await waitFor(() => node.status.lastCall?.args[0].text === "datasphere-publish-out.status.disconnected", "grey status");
    node.receive({ payload: item("queued") });
    await sleep(200);
    assert.equal(s.messages.length, 0, "nothing sent while disconnected");
    node.receive({ action: "connect" });
    await waitFor(() => s.messages.length === 1, "queued message sent after connect");
    node.receive({ action: "explode" });
    await waitFor(() => err.length === 1, "unknown action");
    assert.equal(err[0].error.message, "DatasphereError: datasphere-publish-out.errors.unknownAction");
  });

  it("at-least-once: messages written to a connection killed before it proved them are sent again, done with msg.possibleDuplicate, counted in the status", async () => {
    const s = await server();
    const port = s.port;
    await helper.load(NODES(), flowFor(s.url, "header", { delivery: "at-least-once" }), { cfg: { token: TOKEN } });
    const { ok, err } = outcomes();
    const node = helper.getNode("pub1");
    const connection = helper.getNode("cfg").publishConnection;
    await waitFor(() => s.openClients === 1 && connection.publisher?.status.state === "connected", "connected");
    const serverSocket = ([...((s as any).clients as Set<any>)][0] as any)._socket;
    serverSocket.pause(); // the service stops reading: what is written stays unproven
    for (let i = 0; i < 5; i++) node.receive({ payload: item(`u${i}`) });
    await waitFor(() => connection.publisher.stats.flushed === 5, "five written to the socket");
    assert.equal(ok.length, 0, "not done before proof");
    await s.kill(); // destroyed without reading
    const again = await startWsTestServer({ token: TOKEN, authMode: "header", heartbeatMs: 0, port });
    cleanup.push(() => again.kill());
    await waitFor(() => ok.length === 5, "all five done after the reconnect", 20_000);
    assert.equal(err.length, 0);
    assert.deepEqual(again.messages.map((m) => m.json.data.id), ["u0", "u1", "u2", "u3", "u4"], "sent again, in order");
    assert.deepEqual(ok.map((m) => m.possibleDuplicate), [true, true, true, true, true]);
    assert.equal(connection.publisher.stats.resent, 5);
    await waitFor(() => node.status.args.some((a: any[]) => String(a[0].text).includes("datasphere-publish-out.status.resent")), "the status counts the resent messages");
  });

  it("the example flow publishes its Collection and Item to the sandbox", async () => {
    const sb = await sandbox();
    process.env.DATASPHERE_API_URL = sb.url;
    process.env.DATASPHERE_PUBLISH_URL = sb.publishUrl;
    // The examples' shared config node reads its token from DATASPHERE_TOKEN.
    process.env.DATASPHERE_TOKEN = TOKEN;
    try {
      const flow = JSON.parse(readFileSync(join(__dirname, "..", "..", "..", "examples", "publish-from-inject.json"), "utf8"));
      await helper.load([...NODES(), coreNode("20-inject.js"), coreNode("21-debug.js"), coreNode("90-comment.js")], flow, { "dsx-pfi-config": { token: TOKEN } });
      const sent: string[] = [];
      helper.getNode("dsx-pfi-debug-sent").on("input", (msg: any) => sent.push(msg.payload.id));
      helper.getNode("dsx-pfi-inject-collection").receive({});
      helper.getNode("dsx-pfi-inject-item").receive({});
      const published = await sb.waitForPublished(2, 10_000);
      assert.deepEqual(published.map((p) => [p.data.type, p.data.id, p.activeParent, p.subscribable]), [
        ["Collection", "cool-sat", "cool-sat", true],
        ["Feature", "cool-sat-example-0001", "cool-sat", true],
      ]);
      await waitFor(() => sent.length === 2, "the complete node saw both");
    } finally {
      delete process.env.DATASPHERE_API_URL;
      delete process.env.DATASPHERE_PUBLISH_URL;
      delete process.env.DATASPHERE_TOKEN;
    }
  });

  it("fault test through the node: 10,000 messages while the server restarts 20 times: received + done(err) = 10,000, none twice", async () => {
    const s = await server();
    await helper.load(NODES(), flowFor(s.url, "header", { outboxSize: 300, overflow: "drop-oldest" }), { cfg: { token: TOKEN } });
    const { ok, err } = outcomes();
    const node = helper.getNode("pub1");
    await waitFor(() => s.openClients === 1, "connected");
    const total = 10_000;
    let publishing = true;
    let restartsWhilePublishing = 0;
    const restarts = (async () => {
      for (let i = 0; i < 20; i++) {
        await sleep(50 + Math.floor(Math.random() * 80));
        if (publishing) restartsWhilePublishing++;
        await s.stop();
        await sleep(20 + Math.floor(Math.random() * 40));
        await s.restart();
      }
    })();
    for (let i = 0; i < total; i++) {
      node.receive({ payload: item(`n${i}`) });
      if (i % 5 === 4) await sleep(1);
    }
    publishing = false;
    await restarts;
    await waitFor(() => ok.length + err.length >= total, `all settled (${ok.length}+${err.length})`, 60_000);
    await sleep(200);
    await waitFor(() => s.messages.length === ok.length, `server read every flushed message (${s.messages.length}/${ok.length})`, 10_000);
    const received = s.messages.map((m) => m.json.data.id as string);
    assert.equal(new Set(received).size, received.length, "none received twice");
    assert.equal(ok.length + err.length, total, "each message ended exactly once");
    assert.equal(received.length + err.length, total);
    const failedIds = new Set(err.map((m) => m.payload.id));
    for (const id of received) assert.ok(!failedIds.has(id), `${id} both received and failed`);
    assert.deepEqual([...new Set(err.map((m) => m.error.code))], err.length ? ["OUTBOX_FULL"] : []);
    assert.ok(restartsWhilePublishing >= 10, `restarts while publishing: ${restartsWhilePublishing}`);
    assert.ok(received.length > 1_000, `messages got through between the restarts (${received.length})`);
    console.log(`      node fault test: received ${received.length}, done(err) ${err.length}, restarts while publishing ${restartsWhilePublishing}`);
  });
});
