import { strict as assert } from "node:assert";
import { ItemArrays } from "../../src/nodes/shared/item-arrays";

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const unexpected = (error: unknown) => assert.fail(`send failed: ${String(error)}`);

describe("ItemArrays (subscribe-in's arrays mode): never waits for more Items", () => {
  it("sends a full array at once and the rest of what was added in the same turn right after it, in order", async () => {
    const sent: number[][] = [];
    const arrays = new ItemArrays<number>(3, (items) => sent.push(items), unexpected);
    for (let i = 0; i < 8; i++) arrays.add(i);
    assert.deepEqual(sent, [[0, 1, 2], [3, 4, 5]], "full arrays go out synchronously");
    await nextTurn();
    assert.deepEqual(sent, [[0, 1, 2], [3, 4, 5], [6, 7]], "the remainder goes out in the same turn");
    arrays.add(8);
    await nextTurn();
    assert.deepEqual(sent.at(-1), [8], "a lone Item is not held back");
    assert.equal(sent.length, 4);
  });

  it("flush() sends what is pending now (before a disconnect completes), once", async () => {
    const sent: string[][] = [];
    const arrays = new ItemArrays<string>(100, (items) => sent.push(items), unexpected);
    arrays.add("a");
    arrays.add("b");
    arrays.flush();
    assert.deepEqual(sent, [["a", "b"]]);
    arrays.flush();
    await nextTurn();
    assert.deepEqual(sent, [["a", "b"]], "nothing sent twice, no empty array");
  });

  it("an error thrown by send in the scheduled flush is reported, not thrown out of the immediate", async () => {
    const reported: unknown[] = [];
    const arrays = new ItemArrays<number>(
      10,
      () => {
        throw new Error("downstream failed");
      },
      (error) => reported.push(error),
    );
    arrays.add(1);
    await nextTurn();
    assert.equal(reported.length, 1);
    assert.match(String(reported[0]), /downstream failed/);
  });
});
