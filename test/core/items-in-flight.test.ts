import { strict as assert } from "node:assert";
import { ItemsInFlight } from "../../src/core/subscription/items-in-flight";
import { FakeClock } from "../helpers/fake-clock";

// subscribe-in's flow window, without Node-RED: the tracker is driven as the message hooks drive it.

function harness(maxItems = 10, stallMs = 1000) {
  const clock = new FakeClock();
  const released: number[] = [];
  const stalls: number[] = [];
  const w = new ItemsInFlight({ maxItems, stallMs, clock, release: (n) => released.push(n), onStall: (n) => stalls.push(n) });
  /** Sends one message of `items` Items to `deliveries` known nodes. */
  const send = (msgid: string, items: number, deliveries = 1) => {
    w.sent(msgid, items, deliveries);
    w.afterSend(msgid);
  };
  return { clock, released, stalls, w, send };
}

describe("ItemsInFlight (subscribe-in flow control)", () => {
  it("counts the Items of each message until its last delivery finishes, then releases exactly those Items", () => {
    const { w, send, released } = harness();
    send("a", 3, 2);
    send("b", 1);
    assert.equal(w.items, 4);
    w.tracker.finished("a");
    assert.deepEqual(released, [], "one of the two deliveries of a is still running");
    w.tracker.finished("b");
    w.tracker.finished("a");
    assert.deepEqual(released, [1, 3]);
    assert.equal(w.items, 0);
    w.tracker.finished("a");
    assert.deepEqual(released, [1, 3], "a late completion of a finished message releases nothing");
  });

  it("a message nobody was given leaves at once; deliveries counted as they happen when not known", () => {
    const { w, send, released } = harness();
    send("nobody", 5, 0);
    assert.deepEqual(released, [5]);
    w.sent("counted", 2);
    w.tracker.delivered("counted");
    w.tracker.delivered("counted");
    w.afterSend("counted");
    w.tracker.finished("counted");
    assert.deepEqual(released, [5]);
    w.tracker.finished("counted");
    assert.deepEqual(released, [5, 2]);
  });

  it("full and nothing finishing for stallMs: everything in flight is written off, reported once", async () => {
    const { w, send, released, stalls, clock } = harness(4, 1000);
    send("a", 2);
    assert.deepEqual(clock.pendingDelays(), [], "not full: no stall watch");
    send("b", 2);
    assert.deepEqual(clock.pendingDelays(), [1000]);
    await clock.advance(999);
    assert.deepEqual(stalls, []);
    await clock.advance(1);
    assert.deepEqual(stalls, [4]);
    assert.deepEqual(released, [4]);
    assert.equal(w.items, 0);
    w.tracker.finished("a");
    assert.deepEqual(released, [4], "written-off messages release nothing when they complete after all");
    send("c", 4);
    await clock.advance(1000);
    assert.deepEqual(stalls, [4], "the warning is given once");
    assert.deepEqual(released, [4, 4], "a second stall is written off too");
  });

  it("progress while full restarts the stall watch; room in the window ends it", async () => {
    const { w, send, stalls, clock } = harness(4, 1000);
    send("a", 2);
    send("b", 2);
    await clock.advance(600);
    w.tracker.finished("a");
    send("c", 2);
    await clock.advance(400);
    assert.deepEqual(stalls, [], "a finished message in the last stallMs");
    assert.deepEqual(clock.pendingDelays(), [1000], "watching again");
    w.tracker.finished("b");
    await clock.advance(1000);
    assert.deepEqual(stalls, []);
    assert.deepEqual(clock.pendingDelays(), [], "not full: the watch ended");
    assert.equal(w.items, 2);
  });

  it("reset forgets what is in flight: later completions of earlier messages are ignored", async () => {
    const { w, send, released, clock } = harness(2, 1000);
    send("old", 2);
    w.reset();
    assert.equal(w.items, 0);
    assert.deepEqual(clock.pendingDelays(), []);
    w.tracker.finished("old");
    assert.deepEqual(released, []);
    send("new", 1);
    w.tracker.finished("new");
    assert.deepEqual(released, [1]);
  });
});
