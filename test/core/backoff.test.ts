import { strict as assert } from "node:assert";
import { Backoff, parseRetryAfter } from "../../src/core/backoff";
import { SharedResource } from "../../src/core/shared-resource";

describe("core/backoff", () => {
  it("grows exponentially to the cap, with jitter below the nominal delay, and resets", () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5, random: () => 0 });
    assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000]);
    b.reset();
    assert.equal(b.next(), 100);
    const j = new Backoff({ initialMs: 1000, maxMs: 1000, jitter: 0.5, random: () => 1 });
    assert.equal(j.next(), 500);
    assert.equal(j.next(3000), 3000, "a server's Retry-After wins over a shorter backoff");
  });

  it("parses Retry-After in seconds and as an HTTP date", () => {
    assert.equal(parseRetryAfter("3"), 3000);
    assert.equal(parseRetryAfter("0.5"), 500);
    const now = Date.parse("2026-01-01T00:00:00Z");
    assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:10 GMT", now), 10_000);
    assert.equal(parseRetryAfter("soon"), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });
});

describe("core/shared-resource", () => {
  class Conn {
    closed = false;
    constructor(readonly n: number) {}
    async close() {
      await new Promise((r) => setTimeout(r, 30));
      this.closed = true;
    }
  }

  it("creates one resource for many users and closes it after the last leaves", async () => {
    let made = 0;
    const shared = new SharedResource(() => new Conn(++made));
    const a = await shared.acquire({});
    const b = await shared.acquire({});
    assert.equal(a.resource, b.resource);
    assert.equal(made, 1);
    await a.release();
    assert.equal(a.resource.closed, false);
    await b.release();
    assert.equal(b.resource.closed, true);
    assert.equal(shared.userCount, 0);
  });

  it("makes a new user wait for a teardown in progress (no race on redeploy)", async () => {
    let made = 0;
    const shared = new SharedResource(() => new Conn(++made));
    const a = await shared.acquire({});
    const releasing = a.release();
    const b = await shared.acquire({});
    assert.equal(a.resource.closed, true, "old connection closed before the new one is made");
    assert.equal(b.resource.n, 2);
    await releasing;
    await a.release();
    assert.equal(b.resource.closed, false, "a second release of an old lease touches nothing");
  });
});
