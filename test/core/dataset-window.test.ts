import { strict as assert } from "node:assert";
import { DeliveryTracker, FlowWindow } from "../../src/core/dataset";

describe("core/dataset flow window", () => {
  it("blocks at the size and wakes the producer at the low-water mark, not at the first release", async () => {
    const window = new FlowWindow(4);
    for (let i = 0; i < 4; i++) window.add();
    assert.equal(window.hasRoom, false);
    let woken = false;
    const waiting = window.waitForRoom().then(() => (woken = true));
    window.release();
    await Promise.resolve();
    assert.equal(woken, false, "one release is not enough");
    window.release();
    await waiting;
    assert.equal(woken, true);
    assert.equal(window.inFlight, 2);
  });

  it("an abort rejects the waiter with ABORTED", async () => {
    const window = new FlowWindow(1);
    window.add();
    const controller = new AbortController();
    const waiting = window.waitForRoom(controller.signal);
    controller.abort();
    await assert.rejects(waiting, (e: { code?: string }) => e.code === "ABORTED");
  });

  it("reports a stall only when nothing at all was released for the whole period", async () => {
    const window = new FlowWindow(10);
    for (let i = 0; i < 10; i++) window.add();
    const slow = setInterval(() => window.release(), 15);
    const progressing = await window.waitForRoomOrStall(undefined, 40);
    clearInterval(slow);
    assert.equal(progressing, true, "slow releases are progress, not a stall");
    for (let i = window.inFlight; i < 10; i++) window.add();
    assert.equal(await window.waitForRoomOrStall(undefined, 30), false);
  });

  it("the tracker keeps a message until every delivery of it finished; undelivered ones leave at once", () => {
    const window = new FlowWindow(10);
    const tracker = new DeliveryTracker(window);
    tracker.sent("a");
    tracker.delivered("a");
    tracker.delivered("a");
    tracker.sent("b");
    tracker.settleUndelivered("b");
    tracker.settleUndelivered("a");
    assert.equal(window.inFlight, 1);
    tracker.finished("a");
    assert.equal(window.inFlight, 1, "one of two deliveries");
    tracker.finished("a");
    assert.equal(window.inFlight, 0);
    assert.equal(tracker.isTracked("a"), false);
    tracker.finished("a");
    assert.equal(window.inFlight, 0, "late or unknown completions are ignored");
  });

  it("with the number of deliveries known up front, the message leaves after that many finishes", () => {
    const window = new FlowWindow(10);
    const tracker = new DeliveryTracker(window);
    tracker.sent("m", 2);
    tracker.settleUndelivered("m");
    assert.equal(window.inFlight, 1, "known deliveries are not settled as undelivered");
    tracker.finished("m");
    tracker.finished("m");
    assert.equal(window.inFlight, 0);
    tracker.sent("x", 0);
    tracker.settleUndelivered("x");
    assert.equal(window.inFlight, 0, "no wire: leaves at once");
  });
});
