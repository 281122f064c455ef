import { strict as assert } from "node:assert";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { requireMosquitto, startMosquitto, type Mosquitto } from "../helpers/mosquitto";
import { isAlive } from "../helpers/node-red-process";
import { waitFor } from "../helpers/wait";
import { downloadedIds, startFleet, WorkObserver, type Fleet } from "./scale-out-fleet";

const LIVE = "sentinel-2-l2a-live";

/** Counts of each value. */
function tally(values: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

describe("e2e: scale-out over Mosquitto (examples scale-out-publisher + 3 x scale-out-worker, MQTT 5 shared subscription)", function () {
  this.timeout(300_000);
  let sandbox: Sandbox | undefined;
  let broker: Mosquitto | undefined;
  let observer: WorkObserver | undefined;
  let fleet: Fleet | undefined;

  before(async function () {
    requireMosquitto(this);
    sandbox = await startSandbox({ port: 0, token: "scale-out-token", seed: 7, rate: 0 });
    broker = await startMosquitto();
    observer = await WorkObserver.connect(broker.port);
    // A 10 s idle timeout (the example has 30 s): the kill test holds downloads, then lets them go.
    fleet = await startFleet({
      sandbox,
      broker,
      workers: 3,
      workerPatch: (node) => {
        if (node.type === "datasphere-asset-fetch") node.idleTimeout = 10;
      },
    });
    await waitFor(() => sandbox!.liveSubscriberCount(LIVE) >= 1, "the publisher's subscription", 60_000);
  });

  after(async () => {
    await fleet?.stop();
    await observer?.close();
    await broker?.close();
    await sandbox?.close();
  });

  /** Publishes n live Items and returns their ids, once the publisher handed all of them to MQTT. */
  async function publishItems(n: number): Promise<string[]> {
    const before = new Set(observer!.handedOut.keys());
    for (let i = 0; i < n; i++) sandbox!.publishLive(LIVE);
    const fresh = () => [...observer!.handedOut.keys()].filter((id) => !before.has(id));
    await waitFor(() => fresh().length === n, `${n} Items handed out on datasphere/work/items`, 60_000);
    return fresh();
  }

  it("downloads every Item exactly once across the three workers, each taking a share", async () => {
    const assetRequests = sandbox!.stats.assetRequests;
    const ids = await publishItems(24);
    await waitFor(() => ids.every((id) => observer!.doneIds().has(id)), "every Item reported done", 120_000);

    const taken = observer!.taken.filter((t) => ids.includes(t.id));
    const done = observer!.done.filter((d) => ids.includes(d.id));
    assert.deepEqual([...tally(taken.map((t) => t.id)).values()].filter((c) => c !== 1), [], "each Item taken by exactly one worker");
    assert.deepEqual([...tally(done.map((d) => d.id)).values()].filter((c) => c !== 1), [], "each Item done exactly once");
    const perWorker = tally(done.map((d) => d.worker));
    assert.deepEqual([...perWorker.keys()].sort(), fleet!.workers.map((w) => w.name).sort(), "every worker took a share");
    console.log(`      shares: ${[...perWorker].map(([w, c]) => `${w} ${c}`).join(", ")}`);

    // On disk: each Item's file in exactly one worker's folder, the one that reported it done.
    const owners = new Map<string, string[]>();
    for (const w of fleet!.workers) for (const id of downloadedIds(w.userDir)) owners.set(id, [...(owners.get(id) ?? []), w.name]);
    for (const d of done) assert.deepEqual(owners.get(d.id), [d.worker], `${d.id} downloaded once, by ${d.worker}`);
    // At the source: one download request per Item (the example fetches one asset).
    assert.equal(sandbox!.stats.assetRequests - assetRequests, ids.length, "one asset request per Item");
    for (const id of ids) assert.equal(observer!.handedOut.get(id), 1, `${id} handed out once`);
    for (const nr of [fleet!.publisher, ...fleet!.workers.map((w) => w.nr)]) assert.doesNotMatch(nr.log(), /\[(warn|error)\] \[/, "no node warned or failed");
  });

  it("hands the unfinished Items of a worker killed mid-download (SIGKILL) to the others: no Item lost", async () => {
    // Hold every download, so the Items a worker took are still in its hands when it is killed.
    sandbox!.faults.set({ stall: true }, "asset");
    const ids = await publishItems(9);
    await waitFor(() => ids.every((id) => observer!.taken.some((t) => t.id === id)), "every Item taken by a worker", 60_000);
    assert.equal(ids.filter((id) => observer!.doneIds().has(id)).length, 0, "no Item is done while downloads are held");

    const victim = fleet!.workers[1];
    const inHand = observer!.taken.filter((t) => ids.includes(t.id) && t.worker === victim.name).map((t) => t.id);
    assert.ok(inHand.length > 0, `${victim.name} holds Items when it is killed`);
    process.kill(-victim.nr.pid, "SIGKILL");
    await waitFor(() => !isAlive(victim.nr.pid), `${victim.name} is gone`);
    // Mosquitto publishes the will; the publisher's ledger hands the Items out again.
    await waitFor(() => observer!.gone.includes(victim.name), `the will of ${victim.name} on datasphere/work/gone`, 30_000);
    sandbox!.faults.clear("asset");
    await waitFor(() => ids.every((id) => observer!.doneIds().has(id)), "every Item done after the kill", 90_000).catch((error: Error) => {
      const logs = fleet!.workers.map((w) => `--- ${w.name}\n${w.nr.log().split("\n").slice(-15).join("\n")}`).join("\n");
      throw new Error(`${error.message}\n${observer!.describe(ids)}\ngone: ${observer!.gone}\n${logs}`);
    });

    const survivors = fleet!.workers.filter((w) => w !== victim).map((w) => w.name);
    for (const id of inHand) {
      assert.ok((observer!.handedOut.get(id) ?? 0) >= 2, `${id} (in ${victim.name}'s hands) was handed out again`);
      const by = observer!.done.filter((d) => d.id === id).map((d) => d.worker);
      assert.ok(by.length > 0 && by.every((w) => survivors.includes(w)), `${id} was downloaded by a surviving worker, not ${by.join(", ")}`);
    }
    // Only the victim's Items were handed out again: the others' stayed with their workers.
    for (const id of ids.filter((i) => !inHand.includes(i))) assert.equal(observer!.handedOut.get(id), 1, `${id} handed out once`);
    // And the files are there: every Item of the run is in a surviving worker's folder.
    const onDisk = new Set(fleet!.workers.filter((w) => w !== victim).flatMap((w) => downloadedIds(w.userDir)));
    assert.deepEqual(ids.filter((id) => !onDisk.has(id)), [], "no Item lost");
  });

  it("keeps the Items published while no worker is connected, and hands them to the first worker that comes", async () => {
    // The two survivors stop as a user stops Node-RED (their close message says they went away).
    const survivors = fleet!.workers.filter((w) => isAlive(w.nr.pid));
    await Promise.all(survivors.map((w) => w.nr.stop()));
    await waitFor(() => survivors.every((w) => observer!.gone.includes(w.name)), "the survivors' close messages", 30_000);
    // No member in the shared subscription: the broker keeps nothing; the ledger does.
    const ids = await publishItems(3);
    const late = await fleet!.addWorker("worker-4");
    await waitFor(() => ids.every((id) => observer!.doneIds().has(id)), "every Item done by the new worker", 90_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${observer!.describe(ids)}\n${late.nr.log().split("\n").slice(-15).join("\n")}`);
    });
    for (const id of ids) {
      assert.deepEqual(observer!.done.filter((d) => d.id === id).map((d) => d.worker), ["worker-4"], `${id} downloaded once, by worker-4`);
      assert.equal(observer!.handedOut.get(id), 2, `${id} handed out when published, and again when worker-4 came`);
    }
    assert.deepEqual(ids.filter((id) => !downloadedIds(late.userDir).includes(id)), [], "the files are in worker-4's folder");
  });
});
