import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DurableOutbox } from "../../src/core/publisher/durable-outbox";

describe("core/publisher durable outbox file", function () {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "ds-outbox-"));
    file = join(dir, "sub", "node.outbox");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const msg = (i: number) => Buffer.from(JSON.stringify({ active_parent: "p", data: { id: `m${i}`, pad: "é".repeat(i % 50) } }));
  const texts = (box: DurableOutbox) => box.pending().map((r) => r.data.toString());

  it("what was added and not removed is there after a reopen, oldest first, byte for byte", () => {
    const box = DurableOutbox.open({ file });
    const ids = [0, 1, 2, 3].map((i) => box.add(msg(i)));
    box.remove(ids[1]);
    box.close();
    const again = DurableOutbox.open({ file });
    assert.deepEqual(texts(again), [msg(0), msg(2), msg(3)].map(String));
    assert.deepEqual(again.recovery, { records: 5, discardedBytes: 0 }, "4 ADD and 1 DONE records read back");
    const next = again.add(msg(4));
    assert.ok(next > ids[3], "ids keep growing across restarts");
    again.close();
    assert.deepEqual(texts(DurableOutbox.open({ file })), [msg(0), msg(2), msg(3), msg(4)].map(String));
  });

  it("a file cut at any byte recovers up to the last whole record, never throws, and stays usable", () => {
    const box = DurableOutbox.open({ file });
    for (let i = 0; i < 5; i++) box.add(msg(i));
    box.close();
    const full = readFileSync(file);
    for (let cut = full.length - 1; cut > 0; cut -= 7) {
      writeFileSync(file, full.subarray(0, cut));
      const reopened = DurableOutbox.open({ file });
      const got = texts(reopened);
      assert.deepEqual(got, [0, 1, 2, 3, 4].slice(0, got.length).map((i) => String(msg(i))), `cut at ${cut}`);
      assert.ok(got.length < 5);
      assert.equal(reopened.recovery.records, got.length, `cut at ${cut}: whole records counted`);
      reopened.add(msg(9));
      reopened.close();
      assert.deepEqual(texts(DurableOutbox.open({ file })).at(-1), String(msg(9)), `cut at ${cut}: appending after recovery works`);
      DurableOutbox.open({ file }).close();
    }
  });

  it("a corrupt byte in the middle keeps the records before it; a file that is not an outbox is recovered as empty", () => {
    const box = DurableOutbox.open({ file });
    for (let i = 0; i < 6; i++) box.add(msg(i));
    box.close();
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    writeFileSync(file, bytes);
    const reopened = DurableOutbox.open({ file });
    const got = texts(reopened);
    assert.ok(got.length >= 2 && got.length < 6, `${got.length} records kept`);
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5].slice(0, got.length).map((i) => String(msg(i))));
    reopened.close();
    writeFileSync(file, "not an outbox at all");
    const garbage = DurableOutbox.open({ file });
    assert.deepEqual(garbage.pending(), []);
    assert.equal(garbage.recovery.discardedBytes, 20);
    garbage.close();
    truncateSync(file, 0);
    assert.deepEqual(DurableOutbox.open({ file }).pending(), []);
  });

  it("finished records are compacted away: the file stays the size of what waits", async () => {
    const box = DurableOutbox.open({ file, fsync: "never" });
    const ids: number[] = [];
    for (let i = 0; i < 5000; i++) ids.push(box.add(msg(i)));
    for (const id of ids.slice(0, 4990)) box.remove(id);
    await new Promise((resolve) => setImmediate(resolve)); // DONE records are written together, then compacted
    const size = statSync(file).size;
    assert.ok(size < 40 * 1024, `file is ${size} bytes for 10 waiting messages`);
    box.close();
    assert.deepEqual(texts(DurableOutbox.open({ file })), ids.slice(4990).map((_, k) => String(msg(4990 + k))));
  });

  it("past maxBytes a new message fails with OUTBOX_FULL and is not written", () => {
    const box = DurableOutbox.open({ file, maxBytes: 300 });
    box.add(Buffer.alloc(200, 97));
    assert.throws(() => box.add(Buffer.alloc(200, 98)), (e: { code: string }) => e.code === "OUTBOX_FULL");
    box.close();
    assert.equal(DurableOutbox.open({ file }).size, 1);
  });
});
