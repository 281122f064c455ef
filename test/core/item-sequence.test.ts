import { strict as assert } from "node:assert";
import type { DeliveryTracker } from "../../src/core/dataset/flow-window";
import { ItemSequence, type SequenceMessage } from "../../src/core/item-sequence";

describe("core/item-sequence", () => {
  it("without an observer: one message per Item, parts.count on the last, marks delivered in order", async () => {
    const sent: SequenceMessage[] = [];
    const marks: number[] = [];
    const seq = new ItemSequence<number>({ id: "s", window: 3, stallMs: 1000, signal: new AbortController().signal, send: (m) => sent.push(m), delivered: (m) => marks.push(...m) });
    for (let i = 0; i < 10; i++) await seq.push({ i }, i);
    assert.equal(sent.length, 9, "one message is held back");
    await seq.end(true);
    assert.deepEqual(sent.map((m) => (m.payload as { i: number }).i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(sent.map((m) => m.parts.count), [...new Array(9).fill(undefined), 10]);
    assert.deepEqual(marks, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(seq.flowControl, "yield");
  });

  it("arrays of N, the rest in a last shorter array; a failed run closes the sequence without waiting", async () => {
    const sent: SequenceMessage[] = [];
    let tracker: DeliveryTracker | undefined;
    const seq = new ItemSequence<number>({
      id: "a", arraySize: 4, window: 1, stallMs: 60_000, signal: new AbortController().signal,
      observe: (t) => ((tracker = t), { deliveries: 1, remove: () => undefined }),
      send: (m) => sent.push(m), delivered: () => undefined,
    });
    for (let i = 0; i < 8; i++) await seq.push(i, i);
    assert.equal(sent.length, 1);
    let third = false;
    const pushing = (async () => {
      for (let i = 8; i < 12; i++) await seq.push(i, i);
      third = true;
    })();
    await new Promise((r) => setImmediate(r));
    assert.equal(third, false, "the window of 1 is full: the next array waits for a release");
    tracker!.finished(sent[0].msgid);
    await pushing;
    assert.equal(sent.length, 2);
    await seq.push(12, 12);
    await seq.end(false);
    assert.deepEqual(sent.map((m) => m.payload), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12]]);
    assert.equal(sent[3].parts.count, 4, "sent at once although the window is still full");
    assert.equal(seq.flowControl, "hooks");
  });
});
