// The publish node's outbox limits as a user sets them in the dialog, `${VAR}` included: messages
// past a limit end with OUTBOX_FULL (Catch), the others wait; the durable file keeps only those.
import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DurableOutbox } from "../../src/core/publisher/durable-outbox";
import { builtNode, configNode, helper, nodeRedPath, startHelperServer, stopHelperServer, waitFor } from "../helpers/node-red";

const TOKEN = "outbox-limits-token-58";
/** A publish URL where nothing listens: every message waits in the outbox. */
const NOWHERE = "ws://127.0.0.1:1/publish/v1/";

function coreNode(file: string): unknown {
  return require(require.resolve(`@node-red/nodes/core/common/${file}`, { paths: [dirname(nodeRedPath)] }));
}

function flow(pubExtra: Record<string, unknown>) {
  return [
    { id: "cfg", type: "datasphere-config", apiUrl: "http://127.0.0.1:1", publishUrl: NOWHERE, authMode: "header" },
    { id: "pub1", type: "datasphere-publish-out", server: "cfg", activeParent: "cool-sat", provider: "", subscribable: true, ...pubExtra },
    { id: "catch1", type: "catch", scope: ["pub1"], uncaught: false, wires: [["errors"]] },
    { id: "errors", type: "helper" },
  ];
}

function item(id: string, padBytes = 0): Record<string, unknown> {
  return { type: "Feature", stac_version: "1.0.0", id, geometry: null, properties: { datetime: "2024-01-01T00:00:00Z", pad: "x".repeat(padBytes) }, links: [], assets: {} };
}

describe("datasphere-publish-out outbox limits from the dialog", function () {
  this.timeout(60_000);
  let userDir: string;
  before(async () => {
    userDir = mkdtempSync(join(tmpdir(), "ds-outbox-limits-"));
    helper.settings({ userDir, datasphereReconnectMs: 20, datasphereReconnectMaxMs: 200 });
    await startHelperServer();
  });
  after(async () => {
    await stopHelperServer();
    helper.settings({});
    rmSync(userDir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await helper.unload();
    delete process.env.DS_TEST_OUTBOX_SIZE;
    delete process.env.DS_TEST_FILE_MB;
  });

  async function publishAndCollect(ids: string[], padBytes = 0): Promise<any[]> {
    const errors: any[] = [];
    helper.getNode("errors").on("input", (msg: any) => errors.push(msg));
    for (const id of ids) helper.getNode("pub1").receive({ payload: item(id, padBytes) });
    await waitFor(() => errors.length >= 1, "the message past the limit is reported");
    return errors;
  }

  it("Outbox size from ${VAR}: past it the newest message fails with OUTBOX_FULL, the others wait", async () => {
    process.env.DS_TEST_OUTBOX_SIZE = "2";
    await helper.load([configNode(), builtNode("datasphere-publish-out"), coreNode("25-catch.js")], flow({ outboxSize: "${DS_TEST_OUTBOX_SIZE}", outboxAge: 0 }), { cfg: { token: TOKEN } });
    const errors = await publishAndCollect(["a", "b", "c"]);
    assert.deepEqual(
      errors.map((m) => [m.payload.id, m.error.code]),
      [["c", "OUTBOX_FULL"]],
    );
  });

  it("File limit (MB) from ${VAR}: a durable message past it fails with OUTBOX_FULL and is not written; the file keeps the others", async () => {
    process.env.DS_TEST_FILE_MB = "0.004"; // 4,194 bytes: two 1.5 KB messages fit, not three
    await helper.load([configNode(), builtNode("datasphere-publish-out"), coreNode("25-catch.js")], flow({ durable: true, fsync: "never", outboxFileMb: "${DS_TEST_FILE_MB}", outboxAge: 0 }), { cfg: { token: TOKEN } });
    const errors = await publishAndCollect(["f1", "f2", "f3"], 1_400);
    assert.deepEqual(
      errors.map((m) => [m.payload.id, m.error.code]),
      [["f3", "OUTBOX_FULL"]],
    );
    await helper.unload(); // a redeploy: the waiting messages stay in the file
    const file = join(userDir, "datasphere-outbox", "pub1.outbox");
    assert.ok(existsSync(file), file);
    const box = DurableOutbox.open({ file });
    assert.deepEqual(
      box.pending().map((r) => (JSON.parse(r.data.toString("utf8")) as { data: { id: string } }).data.id),
      ["f1", "f2"],
    );
    box.destroy();
  });
});
