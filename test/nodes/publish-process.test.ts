import { strict as assert } from "node:assert";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { DurableOutbox } from "../../src/core/publisher/durable-outbox";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isAlive, startNodeRed, type NodeRedProcess } from "../helpers/node-red-process";
import { repoRoot, waitFor } from "../helpers/node-red";
import { startWsTestServer, type WsTestServer } from "../helpers/ws-test-server";

const TOKEN = "durable-outbox-token-77";

function item(i: number): Record<string, unknown> {
  return { type: "Feature", stac_version: "1.0.0", id: `d${i}`, collection: "durable", geometry: null, properties: { datetime: "2024-01-01T00:00:00Z" }, links: [], assets: {} };
}

describe("datasphere-publish-out durable outbox in a real Node-RED process", function () {
  this.timeout(240_000);
  let nr: NodeRedProcess | undefined;
  let ws: WsTestServer | undefined;
  let userDir: string | undefined;
  afterEach(async () => {
    await nr?.stop();
    await ws?.kill();
    if (userDir && !process.env.DS_KEEP) rmSync(userDir, { recursive: true, force: true });
  });

  it("killed with SIGKILL mid-stream and restarted: every message offered before the kill reaches the server", async () => {
    ws = await startWsTestServer({ token: TOKEN, authMode: "header", heartbeatMs: 0 });
    const port = ws.port;
    userDir = mkdtempSync(join(tmpdir(), "ds-durable-"));
    const flows = [
      { id: "t1", type: "tab", label: "publish" },
      { id: "cfg", type: "datasphere-config", apiUrl: "http://127.0.0.1:1", publishUrl: ws.url, authMode: "header" },
      { id: "in", type: "http in", z: "t1", url: "/offer", method: "post", upload: false, swaggerDoc: "", wires: [["pub", "resp"]] },
      { id: "pub", type: "datasphere-publish-out", z: "t1", server: "cfg", activeParent: "durable-parent", provider: "", subscribable: true, delivery: "at-least-once", durable: true, fsync: "interval", outboxSize: 100000, outboxAge: 0, wires: [] },
      { id: "resp", type: "http response", z: "t1", statusCode: "200", headers: {}, wires: [] },
    ];
    const start = () =>
      startNodeRed({
        userDir: userDir!,
        settings: { nodesDir: [join(repoRoot, "nodes")], datasphereReconnectMs: 50, datasphereReconnectMaxMs: 200 },
        flows,
        credentials: { cfg: { token: TOKEN } },
      });
    nr = await start();
    const offered: number[] = [];
    let stopOffering = false;
    const offering = (async () => {
      for (let i = 0; !stopOffering; i++) {
        try {
          const res = await fetch(`${nr!.url}offer`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(item(i)) });
          if (res.status === 200) offered.push(i);
          await res.arrayBuffer();
        } catch {
          return; // Node-RED is gone
        }
      }
    })();
    await waitFor(() => ws!.messages.length >= 100, `the first messages arrive; log:\n${nr.log().slice(-2000)}`, 60_000);
    await ws.kill(); // the service goes away abruptly: what follows waits in the outbox, some written and unproven
    const atKill = offered.length;
    await waitFor(() => offered.length >= atKill + 150, "more messages offered while the service is down", 60_000);
    process.kill(nr.pid, "SIGKILL");
    await waitFor(() => !isAlive(nr!.pid), "Node-RED killed", 10_000);
    stopOffering = true;
    await offering;
    const offeredBeforeKill = [...offered];
    if (process.env.DS_DEBUG) {
      copyFileSync(join(userDir, "datasphere-outbox", "pub.outbox"), join(userDir, "copy.outbox"));
      const copy = DurableOutbox.open({ file: join(userDir, "copy.outbox") });
      console.log(`offered ${offeredBeforeKill.length}, first server got ${ws.messages.length}, file holds ${copy.size}`, copy.recovery);
      copy.close();
    }
    assert.ok(existsSync(join(userDir, "datasphere-outbox", "pub.outbox")), "the outbox file is there");

    const firstServer = ws.messages.map((m) => m.json.data.id as string);
    ws = await startWsTestServer({ token: TOKEN, authMode: "header", heartbeatMs: 0, port });
    nr = await start();
    const want = new Set(offeredBeforeKill.map((i) => `d${i}`));
    const all = () => [...firstServer, ...ws!.messages.map((m) => m.json.data.id as string)];
    const missing = () => {
      const got = new Set(all());
      return [...want].filter((id) => !got.has(id));
    };
    await waitFor(() => missing().length === 0, "every offered message after the restart", 60_000).catch((error) => {
      throw new Error(`${(error as Error).message}: ${missing().length} missing; log:\n${nr!.log().slice(-3000)}`);
    });
    const received = all();
    const repeats = received.length - new Set(received).size;
    assert.ok(ws.messages.length > 0, "the rest went out after the restart");
    console.log(`      durable outbox: ${offeredBeforeKill.length} offered before SIGKILL (${atKill} before the service went away); received ${firstServer.length} before and ${ws.messages.length} after the restart, ${repeats} repeated`);
    assert.match(nr.log(), /\[datasphere-publish-out:pub\] (durable outbox: \d+ message\(s\) from before the restart queued again|datasphere-publish-out\.log\.replayed)/);
  });
});
