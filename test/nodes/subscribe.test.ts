import { strict as assert } from "node:assert";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { builtNode, configNode, helper, startHelperServer, stopHelperServer, waitFor } from "../helpers/node-red";
import type { NodeMessage, NodeStatus } from "../../src/nodes/shared/node-red";
import { startScriptedServer } from "../helpers/sse-test-server";

const TOKEN = "sandbox-token-sub-7c1d9e";
const WRONG = "wrong-token-4a5b6c7d";
const LIVE = "sentinel-2-l2a-live";
const T = "datasphere-subscribe-in";

interface Harness {
  msgs: NodeMessage[];
  statuses: NodeStatus[];
  errors: unknown[][];
  warns: unknown[][];
  logs: unknown[][];
  node: any;
}

function flow(sb: Sandbox, props: Record<string, unknown> = {}): object[] {
  return [
    { id: "cfg", type: "datasphere-config", apiUrl: sb.url, publishUrl: sb.publishUrl, authMode: "header" },
    { id: "sub", type: T, server: "cfg", package: LIVE, wires: [["out"]], ...props },
    { id: "out", type: "helper" },
  ];
}

async function load(sb: Sandbox, props: Record<string, unknown> = {}, token = TOKEN): Promise<Harness> {
  await helper.load([configNode(), builtNode(T)], flow(sb, props), { cfg: { token } });
  const node = helper.getNode("sub");
  const h: Harness = { msgs: [], statuses: [], errors: [], warns: [], logs: [], node };
  helper.getNode("out").on("input", (msg: NodeMessage) => h.msgs.push(msg));
  node.on("call:status", (call: { args: [NodeStatus] }) => h.statuses.push(call.args[0]));
  node.on("call:error", (call: { args: unknown[] }) => h.errors.push(call.args));
  node.on("call:warn", (call: { args: unknown[] }) => h.warns.push(call.args));
  node.on("call:log", (call: { args: unknown[] }) => h.logs.push(call.args));
  return h;
}

/** The token (right or wrong) is in no message, status, log line or error of the test. */
function assertNoToken(h: Harness): void {
  const text = JSON.stringify([h.msgs, h.statuses, h.errors.map((a) => a.map(String)), h.warns, h.logs, helper.log().args.map((a: unknown[]) => a.map(String))]);
  assert.ok(!text.includes(TOKEN) && !text.includes(WRONG), "no token anywhere");
}

function lastStatus(h: Harness): NodeStatus | undefined {
  return h.statuses.at(-1);
}

describe("datasphere-subscribe-in node (sandbox)", function () {
  this.timeout(30_000);
  let sb: Sandbox;
  before(startHelperServer);
  after(stopHelperServer);
  beforeEach(async () => {
    sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs: 0, keepAliveMs: 1000, strictPackages: true });
  });
  afterEach(async () => {
    await helper.unload();
    await sb.close();
  });

  it("emits one message per live Item: payload = Item, topic = package, eventId; status green with count", async () => {
    const h = await load(sb);
    await waitFor(() => sb.liveSubscriberCount(LIVE) === 1, "subscribed");
    for (let i = 0; i < 20; i++) sb.publishLive(LIVE);
    await waitFor(() => h.msgs.length === 20, "20 messages");
    assert.deepEqual(h.msgs.map((m) => m.eventId), Array.from({ length: 20 }, (_, i) => String(i + 1)));
    for (const m of h.msgs) {
      assert.equal(m.topic, LIVE);
      const item = m.payload as Record<string, unknown>;
      assert.equal(item.type, "Feature");
      assert.equal(typeof item.id, "string");
    }
    assert.equal(new Set(h.msgs.map((m) => (m.payload as { id: string }).id)).size, 20, "20 distinct Items");
    const ids = h.msgs.map((m) => String(m._msgid));
    assert.ok(ids.every((id) => /^[0-9a-f]{16}$/.test(id)), `_msgid: 16 hex digits like Node-RED's own: ${ids[0]}`);
    assert.equal(new Set(ids).size, 20, "a distinct _msgid per message");
    await waitFor(() => lastStatus(h)?.fill === "green" && lastStatus(h)?.text === `${T}.status.connected`, "green status");
    assert.deepEqual(
      h.statuses.map((s) => s.fill).filter((f, i, a) => f !== a[i - 1]),
      ["yellow", "green"],
      "connecting, then connected",
    );
    assert.equal(h.logs.filter((a) => String(a[0]).includes("log.connected")).length, 1, "one log line for the connection");
    assertNoToken(h);
  });

  it("outputs the raw JSON text when asked (pass-through)", async () => {
    const h = await load(sb, { output: "string" });
    await waitFor(() => sb.liveSubscriberCount(LIVE) === 1, "subscribed");
    sb.publishLive(LIVE);
    await waitFor(() => h.msgs.length === 1, "1 message");
    assert.equal(typeof h.msgs[0].payload, "string");
    assert.equal(JSON.parse(h.msgs[0].payload as string).type, "Feature");
  });

  it("401/403: red status 'token missing or invalid', slow retry, one log line, no token anywhere", async () => {
    const h = await load(sb, {}, WRONG);
    await waitFor(() => lastStatus(h)?.fill === "red", "red status");
    assert.equal(lastStatus(h)?.text, `${T}.status.failed`);
    assert.equal(lastStatus(h)?.shape, "ring");
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(sb.stats.forbidden + sb.stats.unauthorized, 1, "no hot retry");
    assert.equal(h.warns.length, 1, "one warning");
    assert.match(String(h.warns[0][0]), /log\.failed/);
    assert.equal(h.msgs.length, 0);
    assertNoToken(h);
  });

  it("404: red status for an unknown package", async () => {
    const h = await load(sb, { package: "no-such-package" });
    await waitFor(() => lastStatus(h)?.fill === "red", "red status");
    assert.equal(sb.stats.notFound, 1);
    assert.equal(h.warns.length, 1);
    assertNoToken(h);
  });

  it("reports malformed events through node.error with the event id and a preview, counts them, and goes on", async () => {
    sb.faults.set({ malformedEvery: 3 }, "subscription");
    const h = await load(sb);
    await waitFor(() => sb.liveSubscriberCount(LIVE) === 1, "subscribed");
    for (let i = 0; i < 9; i++) sb.publishLive(LIVE);
    await waitFor(() => h.msgs.length === 9, "9 good Items");
    await waitFor(() => h.errors.length >= 1, "errors reported");
    assert.match(String(h.errors[0][0]), /errors\.malformed/);
    const errMsg = h.errors[0][1] as NodeMessage;
    assert.equal(errMsg.topic, LIVE);
    assert.ok(String(errMsg.payload).includes("truncated-by-fault-injection"));
    // Counts are shown at most every 5 s (STATUS_INTERVAL_MS).
    await waitFor(() => lastStatus(h)?.text === `${T}.status.connectedWithProblems`, "status counts the bad events", 15_000);
    assertNoToken(h);
  });

  it("STAC check 'drop' drops Items that fail the structural check, 'warn' sends them with a warning", async () => {
    let h = await load(sb, { stacCheck: "drop" });
    await waitFor(() => sb.liveSubscriberCount(LIVE) === 1, "subscribed");
    sb.publishLive(LIVE, { type: "Feature", id: "broken", links: [] });
    sb.publishLive(LIVE);
    await waitFor(() => h.msgs.length === 1, "1 message");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(h.msgs.length, 1);
    assert.equal(h.msgs[0].eventId, "2");
    assert.equal(h.warns.length, 1);
    assert.match(String(h.warns[0][0]), /errors\.invalidStac/);
    await helper.unload();

    h = await load(sb, { stacCheck: "warn" });
    await waitFor(() => sb.liveSubscriberCount(LIVE) === 1, "subscribed");
    sb.publishLive(LIVE, { type: "Feature", id: "broken-2", links: [] });
    await waitFor(() => h.msgs.length === 1 && h.warns.length === 1, "sent with a warning");
  });

  it("msg.action: starts disconnected, connect, subscribe switches package, disconnect, unknown action is an error", async () => {
    const h = await load(sb, { autoConnect: false });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sb.stats.subscriptionConnections, 0, "no connection before connect");
    assert.equal(lastStatus(h)?.fill, "grey");

    h.node.receive({ action: "connect" });
    await waitFor(() => sb.liveSubscriberCount(LIVE) === 1, "connected");
    sb.publishLive(LIVE);
    await waitFor(() => h.msgs.length === 1, "1 Item");

    h.node.receive({ action: "subscribe", package: "landsat-c2-l2-live" });
    await waitFor(() => sb.liveSubscriberCount("landsat-c2-l2-live") === 1 && sb.liveSubscriberCount(LIVE) === 0, "switched");
    sb.publishLive("landsat-c2-l2-live");
    sb.publishLive(LIVE);
    await waitFor(() => h.msgs.length === 2, "2 Items");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(h.msgs.length, 2);
    assert.equal(h.msgs[1].topic, "landsat-c2-l2-live");

    h.node.receive({ action: "disconnect" });
    await waitFor(() => sb.liveSubscriberCount("landsat-c2-l2-live") === 0, "disconnected");
    await waitFor(() => lastStatus(h)?.fill === "grey", "grey status");

    h.node.receive({ action: "launch" });
    await waitFor(() => h.errors.some((a) => String(a[0]).includes("errors.unknownAction")), "unknown action reported");
    h.node.receive({ action: "subscribe" });
    await waitFor(() => h.errors.some((a) => String(a[0]).includes("errors.noPackageInMessage")), "missing package reported");
    assert.equal(sb.stats.subscriptionConnections, 2);
    assertNoToken(h);
  });

  it("msg.package is taken literally: \"${DATASPHERE_TOKEN}\" is not expanded (token never in the log, msg.topic or Debug)", async () => {
    const open = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs: 0, keepAliveMs: 0 });
    const literal = "${DATASPHERE_TOKEN}";
    process.env.DATASPHERE_TOKEN = TOKEN;
    try {
      const h = await load(open, { autoConnect: false });
      h.node.receive({ action: "subscribe", package: literal });
      await waitFor(() => open.liveSubscriberCount(literal) === 1, "subscribed to the literal name");
      assert.equal(open.liveSubscriberCount(TOKEN), 0, "never to the expanded value");
      open.publishLive(literal);
      await waitFor(() => h.msgs.length === 1, "1 Item");
      assert.equal(h.msgs[0].topic, literal);
      await waitFor(() => h.logs.length >= 1, "the subscription is logged");
      assertNoToken(h);
    } finally {
      delete process.env.DATASPHERE_TOKEN;
      await helper.unload();
      await open.close();
    }
  });

  it("malformed events: the first 10 through node.error, then one warning; the status keeps counting", async () => {
    sb.faults.set({ malformedEvery: 1 }, "subscription");
    const h = await load(sb);
    await waitFor(() => sb.liveSubscriberCount(LIVE) === 1, "subscribed");
    for (let i = 0; i < 30; i++) sb.publishLive(LIVE);
    await waitFor(() => h.msgs.length === 30, "30 good Items");
    await waitFor(() => h.warns.some((w) => String(w[0]).includes("errors.malformedMore")), "the warning that the rest are only counted");
    assert.equal(h.errors.filter((a) => String(a[0]).includes("errors.malformed")).length, 10);
    await waitFor(() => lastStatus(h)?.text === `${T}.status.connectedWithProblems`, "status counts the bad events", 5000);
    assertNoToken(h);
  });

  it("HTTP 204: the server asks to stop: red status, one warning, no reconnect", async () => {
    const stopper = await startScriptedServer(() => ({ status: 204, headers: {}, writes: [] }));
    try {
      await helper.load([configNode(), builtNode(T)], [
        { id: "cfg", type: "datasphere-config", apiUrl: stopper.url, publishUrl: sb.publishUrl, authMode: "header" },
        { id: "sub", type: T, server: "cfg", package: LIVE, wires: [[]] },
      ], { cfg: { token: TOKEN } });
      const node = helper.getNode("sub");
      const statuses: NodeStatus[] = [];
      const warns: unknown[][] = [];
      node.on("call:status", (call: { args: [NodeStatus] }) => statuses.push(call.args[0]));
      node.on("call:warn", (call: { args: unknown[] }) => warns.push(call.args));
      await waitFor(() => statuses.at(-1)?.text === `${T}.status.stopped`, "stopped status");
      assert.equal(statuses.at(-1)?.fill, "red");
      assert.equal(warns.length, 1);
      assert.match(String(warns[0][0]), /log\.stopped/);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(stopper.requests.length, 1, "no reconnect");
    } finally {
      await helper.unload();
      await stopper.close();
    }
  });

  it("msg.package is taken as it is: a ${VAR} in a message is not expanded (no token leak); errors reach Catch typed", async () => {
    const seen: string[] = [];
    const recorder = createServer((req, res) => {
      seen.push(decodeURIComponent(req.url ?? ""));
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((resolve) => recorder.listen(0, "127.0.0.1", resolve));
    process.env.DS_SUB_SECRET = TOKEN;
    try {
      const apiUrl = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
      const h = await load({ url: apiUrl, publishUrl: sb.publishUrl } as Sandbox, { autoConnect: false });
      h.node.receive({ action: "subscribe", package: "${DS_SUB_SECRET}" });
      await waitFor(() => seen.length >= 1, "the subscription request");
      assert.ok(seen[0].includes("${DS_SUB_SECRET}"), seen[0]);
      assert.ok(!seen.some((u) => u.includes(TOKEN)), "the token is not in any URL");
      h.node.receive({ action: "launch" });
      await waitFor(() => h.errors.some((a) => String(a[0]).includes("errors.unknownAction")), "unknown action reported");
      const error = h.errors.find((a) => String(a[0]).includes("errors.unknownAction"))![0] as { code?: string; name?: string };
      assert.equal(error.code, "BAD_REQUEST");
      assert.equal(error.name, "DatasphereError");
      assertNoToken(h);
    } finally {
      delete process.env.DS_SUB_SECRET;
      await helper.unload();
      await new Promise((resolve) => recorder.close(resolve));
    }
  });
});
