import { strict as assert } from "node:assert";
import { dirname } from "node:path";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import type { NodeMessage, NodeStatus } from "../../src/nodes/shared/node-red";
import { STATUS_INTERVAL_MS, ThrottledStatus } from "../../src/nodes/shared/status";
import { FakeClock } from "../helpers/fake-clock";
import { builtNode, configNode, helper, nodeRedPath, startHelperServer, stopHelperServer, waitFor } from "../helpers/node-red";

const TOKEN = "status-test-token-55aa";
const LIVE = "sentinel-2-l2a-live";

function recorder(): { node: { status(s: NodeStatus): void }; shown: NodeStatus[] } {
  const shown: NodeStatus[] = [];
  return { node: { status: (s: NodeStatus) => shown.push(s) }, shown };
}

describe("node status: states at once, counts and rates at most every 5 s", () => {
  describe("ThrottledStatus (FakeClock)", () => {
    it("shows every state change at once, however close together", () => {
      const clock = new FakeClock();
      const { node, shown } = recorder();
      const status = new ThrottledStatus(node, STATUS_INTERVAL_MS, clock);
      status.set({ fill: "yellow", shape: "ring", text: "connecting" });
      status.set({ fill: "yellow", shape: "ring", text: "retrying in 2 s" });
      status.set({ fill: "green", shape: "dot", text: "connected" });
      status.set({ fill: "green", shape: "dot", text: "connected" }); // the same again: not repeated
      assert.deepEqual(shown.map((s) => s.text), ["connecting", "retrying in 2 s", "connected"]);
      assert.deepEqual(clock.pendingDelays(), []);
    });

    it("600 count updates over 60 s (then 5 s quiet) reach the node at most once per 5 s, the last count included", async () => {
      const clock = new FakeClock();
      const { node, shown } = recorder();
      const status = new ThrottledStatus(node, STATUS_INTERVAL_MS, clock);
      status.set({ fill: "green", shape: "dot", text: "connected, 0 Items" });
      for (let i = 1; i <= 600; i++) {
        await clock.advance(100);
        status.progress({ fill: "green", shape: "dot", text: `connected, ${i} Items` });
      }
      await clock.advance(STATUS_INTERVAL_MS);
      // 65 s of fake time: the first state, then at most one update per interval.
      assert.ok(shown.length <= 1 + 65_000 / STATUS_INTERVAL_MS, `${shown.length} updates`);
      assert.ok(shown.length >= 10, `counts still shown: ${shown.length}`);
      assert.equal(shown.at(-1)?.text, "connected, 600 Items");
    });

    it("a state change drops a pending count update (the count never overwrites the new state)", async () => {
      const clock = new FakeClock();
      const { node, shown } = recorder();
      const status = new ThrottledStatus(node, STATUS_INTERVAL_MS, clock);
      status.progress({ fill: "green", shape: "dot", text: "1 Item" });
      await clock.advance(1000);
      status.progress({ fill: "green", shape: "dot", text: "2 Items" }); // pending
      status.set({ fill: "grey", shape: "ring", text: "disconnected" });
      await clock.advance(2 * STATUS_INTERVAL_MS);
      assert.deepEqual(shown.map((s) => s.text), ["1 Item", "disconnected"]);
    });
  });

  describe("subscribe-in seen by a core Status node (real runtime, sandbox)", function () {
    this.timeout(60_000);
    let sb: Sandbox;
    before(startHelperServer);
    after(stopHelperServer);
    beforeEach(async () => {
      sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 20, heartbeatMs: 0, keepAliveMs: 1000 });
    });
    afterEach(async () => {
      await helper.unload();
      await sb.close();
    });

    it("N Items over a measured window give at most 2 + window/5 s status messages; disconnect shows at once", async () => {
      const statusNode = require(require.resolve("@node-red/nodes/core/common/25-status.js", { paths: [dirname(nodeRedPath)] }));
      const flow = [
        { id: "cfg", type: "datasphere-config", apiUrl: sb.url, publishUrl: sb.publishUrl, authMode: "header" },
        { id: "sub", type: "datasphere-subscribe-in", server: "cfg", package: LIVE, wires: [["items"]] },
        { id: "items", type: "helper" },
        { id: "watch", type: "status", scope: ["sub"], wires: [["seen"]] },
        { id: "seen", type: "helper" },
      ];
      await helper.load([configNode(), builtNode("datasphere-subscribe-in"), statusNode], flow, { cfg: { token: TOKEN } });
      const items: NodeMessage[] = [];
      const seen: Array<{ at: number; fill?: string; text?: string }> = [];
      helper.getNode("items").on("input", (m: NodeMessage) => items.push(m));
      helper.getNode("seen").on("input", (m: { status: NodeStatus }) => seen.push({ at: Date.now(), fill: m.status.fill, text: m.status.text }));

      await waitFor(() => seen.some((s) => s.fill === "green"), "connected status", 20_000);
      const start = seen.find((s) => s.fill === "green")!.at;
      const itemsAtStart = items.length;
      await waitFor(() => items.length >= itemsAtStart + 120, "120 more Items", 45_000);
      const end = Date.now();
      const window = end - start;
      const inWindow = seen.filter((s) => s.at >= start && s.at <= end);
      // The connected state itself, then one count update per full interval, plus one for a boundary.
      const bound = 2 + Math.floor(window / STATUS_INTERVAL_MS);
      assert.ok(inWindow.length <= bound, `${inWindow.length} status messages for ${items.length - itemsAtStart} Items in a ${window} ms window (at most ${bound})`);

      const before = seen.length;
      helper.getNode("sub").receive({ action: "disconnect" });
      await waitFor(() => seen.slice(before).some((s) => s.fill === "grey"), "disconnected status");
      assert.equal(seen.slice(before).find((s) => s.fill !== "green")?.fill, "grey", "the state change is the next non-count status");
    });
  });
});
