import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Auth } from "../../src/core/auth";
import { Endpoints } from "../../src/core/endpoints";
import { Publisher, preparePublishMessage } from "../../src/core/publisher";
import { DurableOutbox } from "../../src/core/publisher/durable-outbox";
import { replayRecorded } from "../../src/core/publisher/durable-publish";
import { FakeClock } from "../helpers/fake-clock";
import { waitFor } from "../helpers/wait";
import { startWsTestServer } from "../helpers/ws-test-server";

const TOKEN = "durable-replay-token-31";

function wire(id: string): Buffer {
  const item = { type: "Feature", stac_version: "1.0.0", id, geometry: null, properties: { datetime: "2024-01-01T00:00:00Z" }, links: [], assets: {} };
  return preparePublishMessage(item, { activeParent: "cool-sat", subscribable: true }).data;
}

describe("core/publisher durable outbox replay after a restart", function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "ds-replay-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("messages older than the age limit are dropped, counted and removed from the file; the rest keep only their remaining age and reach the server as possible duplicates", async () => {
    const file = join(dir, "pub.outbox");
    const clock = new FakeClock();
    const before = DurableOutbox.open({ file, clock, fsync: "never" });
    before.add(wire("old")); // t = 0
    await clock.advance(5_000);
    before.add(wire("young")); // t = 5 s
    await clock.advance(4_000);
    before.add(wire("youngest")); // t = 9 s
    before.close(); // the process stops here; the records stay

    await clock.advance(1_000); // restarted at t = 10 s, age limit 6 s
    const after = DurableOutbox.open({ file, clock, fsync: "never" });
    assert.equal(after.size, 3);
    const server = await startWsTestServer({ token: TOKEN, authMode: "header", heartbeatMs: 0 });
    const endpoints = new Endpoints({ apiUrl: "http://127.0.0.1:1", publishUrl: server.url });
    const publisher = new Publisher({ url: server.url, authMode: "header", auth: new Auth(endpoints, TOKEN), clock });
    try {
      const settled: Array<{ code?: string; duplicate: boolean }> = [];
      const limits = { maxMessages: 1000, maxAgeMs: 6_000, overflow: "reject-newest" as const };
      const result = replayRecorded(after, publisher, {}, limits, "at-most-once", clock.now(), (err, info) => settled.push({ code: err?.code, duplicate: info?.possibleDuplicate === true }));
      assert.deepEqual(result, { replayed: 2, expired: 1 });
      // Not connected yet: "young" has 1 s of its age left, "youngest" 5 s.
      await clock.advance(1_500);
      await waitFor(() => settled.length === 1, "the young message expired after its remaining second");
      assert.equal(settled[0].duplicate, false);
      assert.equal(settled[0].code, "EXPIRED");
      publisher.start();
      await waitFor(() => server.messages.length === 1 && settled.length === 2, "the youngest message at the server");
      assert.deepEqual(server.messages.map((m) => m.json.data.id), ["youngest"]);
      assert.deepEqual(settled[1], { code: undefined, duplicate: true });
      await waitFor(() => after.size === 0, "the file ends every record");
      after.close();
      assert.equal(DurableOutbox.open({ file }).size, 0, "nothing is replayed a second time");
    } finally {
      await publisher.close();
      await server.kill();
    }
  });
});
