import { strict as assert } from "node:assert";
import { publishSocketSettings } from "../../src/nodes/shared/publisher-connection";
import { builtNode, configNode, helper, waitFor } from "../helpers/node-red";
import { publishRuntime } from "../helpers/publish-runtime";

const TOKEN = "config-connection-token-99";
const CONNECTED = { fill: "green", shape: "dot", text: "datasphere-publish-out.status.connected" };
const NODES = () => [configNode(), builtNode("datasphere-publish-out")];

function cfg(publishUrl: string, extra: Record<string, unknown> = {}) {
  return { id: "cfg", type: "datasphere-config", apiUrl: "http://127.0.0.1:1", publishUrl, authMode: "header", ...extra };
}

function pub(id: string) {
  return { id, type: "datasphere-publish-out", server: "cfg", activeParent: "cool-sat", provider: "", subscribable: true };
}

type Shown = { text?: string; fill?: string; shape?: string };
type StatusSpy = { status: { getCalls(): Array<{ thisValue: unknown; args: [Shown] }> } };
/** The statuses this node showed (the helper's spy is on Node.prototype: it records every node's calls). */
const shown = (node: StatusSpy) => node.status.getCalls().filter((c) => c.thisValue === node).map((c) => c.args[0]);
const texts = (node: StatusSpy) => shown(node).map((s) => s.text);
const lastShown = (node: StatusSpy) => shown(node).at(-1);
const lastText = (node: StatusSpy) => lastShown(node)?.text;

// The config node owns the publish socket, listens to it once and pushes its state to its users (as
// Node-RED's mqtt-broker node does); each publish node maps the state to its own status text.
describe("datasphere-config: the publish connection and its users", function () {
  this.timeout(60_000);
  const { server } = publishRuntime(TOKEN);
  afterEach(() => {
    delete process.env.DS_TEST_HEARTBEAT;
    delete process.env.DS_TEST_DEAD_AFTER;
  });

  it("two publish nodes on one config node both show connected, then reconnecting, then connected, from the config node's one listener", async () => {
    const s = await server();
    await helper.load(NODES(), [cfg(s.url), pub("p1"), pub("p2")], { cfg: { token: TOKEN } });
    const config = helper.getNode("cfg");
    const [p1, p2] = [helper.getNode("p1"), helper.getNode("p2")];
    await waitFor(() => lastText(p1) === CONNECTED.text && lastText(p2) === CONNECTED.text, "both connected");
    const publisher = config.publishConnection.publisher;
    assert.equal(publisher.listenerCount("state"), 1, "one listener, the config node's");
    assert.equal(config.users.size, 2);
    assert.ok([...config.users.values()].every((listener: unknown) => typeof listener === "function"), "each publish node registered how it shows the state");
    await s.kill();
    await waitFor(() => lastText(p1) === "datasphere-publish-out.status.reconnecting" && lastText(p2) === "datasphere-publish-out.status.reconnecting", "both reconnecting");
    assert.equal(lastShown(p1)?.fill, "yellow");
    await s.restart();
    await waitFor(() => lastText(p1) === CONNECTED.text && lastText(p2) === CONNECTED.text, "both connected again");
    assert.equal(publisher.listenerCount("state"), 1);
    assert.equal(s.openClients, 1, "one socket for both");

    // A node that leaves is deregistered: the state no longer reaches it.
    await helper.setFlows([cfg(s.url), pub("p1")], "nodes");
    assert.equal(config.users.size, 1);
    const p2Calls = shown(p2).length;
    await s.kill();
    await waitFor(() => lastText(p1) === "datasphere-publish-out.status.reconnecting", "p1 reconnecting");
    assert.equal(shown(p2).length, p2Calls, "the removed node got nothing more");
  });

  it("a node deployed after the connection is up shows connected at once, without a second socket", async () => {
    const s = await server();
    await helper.load(NODES(), [cfg(s.url), pub("p1")], { cfg: { token: TOKEN } });
    await waitFor(() => lastText(helper.getNode("p1")) === CONNECTED.text, "p1 connected");
    await helper.setFlows([cfg(s.url), pub("p1"), pub("p2")], "nodes");
    // No wait: registering with the config node handed p2 the socket's current state.
    const p2 = helper.getNode("p2");
    assert.deepEqual(lastShown(p2), CONNECTED);
    assert.deepEqual(texts(p2), ["datasphere-publish-out.status.connecting", CONNECTED.text], "its own first status, then the pushed state");
    assert.equal(s.connections, 1);
  });

  it("heartbeat and dead-after are the config node's, from ${VAR}: pings keep a quiet server's socket; without them it is dead after dead-after", async () => {
    const s = await server();
    process.env.DS_TEST_HEARTBEAT = "0.2";
    process.env.DS_TEST_DEAD_AFTER = "1.5";
    await helper.load(NODES(), [cfg(s.url, { heartbeatInterval: "${DS_TEST_HEARTBEAT}", heartbeatTimeout: "${DS_TEST_DEAD_AFTER}" }), pub("p1")], { cfg: { token: TOKEN } });
    const connection = helper.getNode("cfg").publishConnection;
    await waitFor(() => (connection.publisher?.stats.heartbeatPings ?? 0) >= 10, "ten pings answered in turn (2 s: more than dead-after)");
    assert.equal(connection.publisher.stats.heartbeatTimeouts, 0, "the pongs kept the quiet socket alive");
    assert.equal(s.connections, 1);
    assert.equal(helper.getNode("cfg").warn.callCount, 0);
    await helper.unload();

    await helper.load(NODES(), [cfg(s.url, { heartbeatInterval: "0", heartbeatTimeout: "0.3" }), pub("p1")], { cfg: { token: TOKEN } });
    const quiet = helper.getNode("cfg").publishConnection;
    await waitFor(() => (quiet.publisher?.stats.heartbeatTimeouts ?? 0) >= 1, "dead after 0.3 s of silence");
    assert.equal(quiet.publisher.stats.heartbeatPings, 0, "heartbeat 0: no pings");
  });

  it("unusable socket settings are a warning on the config node; the defaults apply", async () => {
    const s = await server();
    await helper.load(NODES(), [cfg(s.url, { heartbeatInterval: "soon", heartbeatTimeout: "-1" }), pub("p1")], { cfg: { token: TOKEN } });
    const warned = (helper.getNode("cfg").warn as { args: unknown[][] }).args.map((a) => String(a[0]));
    assert.deepEqual(warned, ["datasphere-config.errors.socketSettings"]);
    await waitFor(() => lastText(helper.getNode("p1")) === CONNECTED.text, "connected with the defaults");
  });

  it("the settings are read with defaults documented in the dialog, and each problem names its setting", () => {
    assert.deepEqual(publishSocketSettings("", ""), { heartbeatMs: 25_000, deadAfterMs: undefined, problems: [] });
    assert.deepEqual(publishSocketSettings("0", "90"), { heartbeatMs: 0, deadAfterMs: 90_000, problems: [] });
    assert.deepEqual(publishSocketSettings(" 2.5 ", "10"), { heartbeatMs: 2_500, deadAfterMs: 10_000, problems: [] });
    const bad = publishSocketSettings("soon", "-1");
    assert.equal(bad.heartbeatMs, 25_000);
    assert.equal(bad.deadAfterMs, undefined);
    assert.match(bad.problems[0], /^heartbeat "soon" is not a number of seconds/);
    assert.match(bad.problems[1], /^dead after "-1" is not a number of seconds \(at least 0\.05\)/);
    assert.deepEqual(publishSocketSettings("30", "30").problems, ["the heartbeat should be shorter than dead after, or its pings come too late to keep a quiet socket alive"]);
    assert.equal(publishSocketSettings("x".repeat(10_000), "").problems[0].length < 120, true, "a long value is shown cut");
  });
});
