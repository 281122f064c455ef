import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { startNodeRed, type NodeRedProcess } from "../helpers/node-red-process";
import { repoRoot, waitFor } from "../helpers/node-red";

/** Receives what the flow posts back (http request nodes), one JSON body per request. */
async function startReceiver(): Promise<{ server: Server; url: string; bodies: Array<{ path: string; body: any }> }> {
  const bodies: Array<{ path: string; body: any }> = [];
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk) => (text += chunk));
    req.on("end", () => {
      bodies.push({ path: req.url ?? "", body: JSON.parse(text || "null") });
      res.end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, bodies, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe("datasphere-dataset-pull in a real Node-RED process", function () {
  this.timeout(120_000);
  let sb: Sandbox | undefined;
  let nr: NodeRedProcess | undefined;
  let userDir: string | undefined;
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;

  afterEach(async () => {
    await nr?.stop();
    await sb?.close();
    receiver?.server.close();
    if (userDir) rmSync(userDir, { recursive: true, force: true });
  });

  it("gets the runtime's message hooks (flowControl: hooks) and a slow async function node sees at most the window", async () => {
    sb = await startSandbox({ port: 0, token: "sandbox-token", seed: 1, rate: 0, heartbeatMs: 0, keepAliveMs: 0 });
    receiver = await startReceiver();
    userDir = mkdtempSync(join(tmpdir(), "ds-pull-process-"));
    const post = (id: string, path: string, wires: string[][] = []) => ({
      id, type: "http request", z: "t1", method: "POST", ret: "txt", paytoqs: "ignore", url: `${receiver!.url}/${path}`, tls: "", persist: false, proxy: "", insecureHTTPParser: false, authType: "", senderr: false, headers: [], wires,
    });
    const slowFunction = [
      "const held = (context.get('held') || 0) + 1;",
      "context.set('held', held);",
      "context.set('max', Math.max(context.get('max') || 0, held));",
      "await new Promise((r) => setTimeout(r, 2));",
      "context.set('held', context.get('held') - 1);",
      "msg.maxHeld = context.get('max');",
      "return msg;",
    ].join("\n");
    nr = await startNodeRed({
      userDir,
      settings: { nodesDir: [join(repoRoot, "nodes")], logging: { console: { level: "info", metrics: false, audit: false } } },
      flows: [
        { id: "t1", type: "tab", label: "pull" },
        { id: "cfg", type: "datasphere-config", apiUrl: sb.url, publishUrl: sb.publishUrl, authMode: "header" },
        { id: "go", type: "inject", z: "t1", props: [], repeat: "", once: true, onceDelay: 0.5, wires: [["pull"]] },
        { id: "pull", type: "datasphere-dataset-pull", z: "t1", server: "cfg", package: "landsat-c2-l2-sample", mode: "stream", order: "old", window: 10, wires: [["slow"], ["done"]] },
        { id: "slow", type: "function", z: "t1", func: slowFunction, outputs: 1, timeout: 0, noerr: 0, initialize: "", finalize: "", libs: [], wires: [["j1"]] },
        { id: "j1", type: "join", z: "t1", mode: "auto", build: "array", property: "payload", propertyType: "msg", wires: [["summary"]] },
        { id: "summary", type: "change", z: "t1", rules: [{ t: "set", p: "payload", pt: "msg", to: "{\"count\": $count(payload), \"maxHeld\": maxHeld, \"first\": payload[0].id}", tot: "jsonata" }], wires: [["postJoined"]] },
        post("postJoined", "joined"),
        post("done", "completion"),
      ],
      credentials: { cfg: { token: "sandbox-token" } },
    });
    await waitFor(() => receiver!.bodies.length >= 2, `both posts arrived; log:\n${nr.log().slice(-3000)}`, 60_000);
    const completion = receiver.bodies.find((b) => b.path === "/completion")!.body;
    const joined = receiver.bodies.find((b) => b.path === "/joined")!.body;
    if (process.env.DS_DEBUG) console.log(joined, completion);
    assert.equal(completion.flowControl, "hooks", "the real runtime hands RED.hooks to the node");
    assert.equal(completion.items, 200);
    assert.equal(completion.error, undefined);
    assert.equal(joined.count, 200);
    assert.equal(joined.first, (await sb.datasetItem("landsat-c2-l2-sample", 0)).id);
    assert.ok(joined.maxHeld <= 10 && joined.maxHeld >= 1, `the async function node held at most the window: ${joined.maxHeld}`);
  });
});
