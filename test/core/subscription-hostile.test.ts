// Streams a friendly server never sends: abrupt drops with a slow consumer and no replay, overlong
// lines, retry: 0, huge ids, floods of malformed events. Each must end in a clean error on that
// connection (never an uncaught exception: mocha fails the test on one), bounded memory, and no
// complete event lost.
import { strict as assert } from "node:assert";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { Subscription, type MalformedEvent, type SubscriptionNotice, type SubscriptionOptions, type SubscriptionStateChange } from "../../src/core/subscription";
import { RecentSet } from "../../src/core/subscription/dedup";
import { FakeClock } from "../helpers/fake-clock";
import { makeItems, scriptedServerPool } from "../helpers/sse-test-server";
import { waitFor } from "../helpers/wait";

const TOKEN = "hostile-test-token-31c9";

interface Client {
  sub: Subscription;
  clock: FakeClock;
  seqs: number[];
  ids: string[];
  states: SubscriptionStateChange[];
  malformed: MalformedEvent[];
  notices: SubscriptionNotice[];
  /** Items delivered when each state change happened. */
  deliveredAtState: number[];
}

function rssMb(): number {
  return process.memoryUsage.rss() / 1048576;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

describe("core/subscription against hostile streams", function () {
  this.timeout(60_000);
  const servers = scriptedServerPool();
  const server = servers.start;
  const clients: Client[] = [];
  let sandbox: Sandbox | undefined;
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.sub.close()));
    await servers.closeAll();
    await sandbox?.close();
    sandbox = undefined;
  });
  function client(url: string, extra: Partial<SubscriptionOptions> = {}): Client {
    const clock = new FakeClock();
    const c: Client = { clock, seqs: [], ids: [], states: [], malformed: [], notices: [], deliveredAtState: [], sub: undefined as unknown as Subscription };
    c.sub = new Subscription({
      url,
      clock,
      auth: { headersFor: () => ({ authorization: `Token ${TOKEN}` }) },
      onItem: ({ item, eventId }) => {
        c.seqs.push((item.properties as { seq: number }).seq);
        if (eventId !== undefined) c.ids.push(eventId);
      },
      onState: (s) => {
        c.states.push(s);
        c.deliveredAtState.push(c.seqs.length);
      },
      onMalformed: (m) => c.malformed.push(m),
      onNotice: (n) => c.notices.push(n),
      ...extra,
    });
    c.sub.start();
    clients.push(c);
    return c;
  }

  it("600 complete events, half an event, then a reset; slow consumer, no replay: all 600 delivered, in order", async () => {
    const items = makeItems(600, 2000);
    const events = items.map((item, i) => `id: ${i + 1}\ndata: ${item}\n\n`);
    const total = Buffer.byteLength(events.join("")) + 700;
    const current: { c?: Client } = {};
    // The reset comes once the client process has received every byte (a reset racing data still in
    // the kernel's receive queue loses it in any client): what it received must all be delivered.
    const received = waitFor(() => current.c?.sub.stats.bytes === total, "the client received every byte");
    const s = await server((r) =>
      r.n === 0 ? { writes: [...events, events[0].slice(0, 700)], hold: received, then: "reset" } : { writes: [], then: "open" },
    );
    // The consumer takes one Item per millisecond: far slower than the socket.
    let taken = 0;
    const c = client(s.url, { maxUntaken: 10 });
    current.c = c;
    const taker = setInterval(() => {
      if (c.sub.untaken > 0) {
        taken++;
        c.sub.release(1);
      }
    }, 1);
    try {
      await waitFor(() => c.sub.state === "backing-off", "the reset ends the connection");
      assert.equal(c.sub.stateChange.error?.code, "NETWORK");
      await waitFor(() => c.seqs.length === 600, "every complete event, delivered after the reset");
      assert.deepEqual(c.seqs, items.map((_, i) => i));
      assert.ok(c.seqs.length - taken <= 10, "the consumer took them one by one");
      const atReset = c.deliveredAtState[c.states.findIndex((x) => x.state === "backing-off")];
      assert.ok(atReset < 600, `${600 - atReset} Items were still waiting for the consumer when the connection failed`);
    } finally {
      clearInterval(taker);
    }
  });

  it("a consumer that takes nothing: the backlog stops at maxBacklogChars, reading pauses (the server blocks), releasing delivers the rest", async () => {
    const items = makeItems(2000, 10_000);
    let written = 0;
    let blocked = false;
    let finished = false;
    const http = createServer(async (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (let i = 0; i < items.length; i++) {
        const frame = `id: ${i + 1}\ndata: ${items[i]}\n\n`;
        written += frame.length;
        if (!res.write(frame)) {
          blocked = true;
          await new Promise((resolve) => res.once("drain", resolve));
          blocked = false;
        }
      }
      finished = true;
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    try {
      const total = items.reduce((n, x) => n + x.length, 0);
      const c = client(`http://127.0.0.1:${(http.address() as AddressInfo).port}/`, { maxUntaken: 1, maxBacklogChars: 1024 * 1024 });
      const size = Math.min(...items.map((x) => x.length));
      // Past maxBacklogChars the reading pauses; the server blocks once the socket buffers are full.
      await waitFor(() => c.sub.waiting * size > 1024 * 1024 && blocked, "the backlog full and the server blocked");
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(blocked && !finished, "the server is still blocked: reading stays paused");
      // At most the backlog limit plus the chunk that crossed it.
      assert.ok(c.sub.waiting * size <= 1024 * 1024 + 64 * 1024 + size, `${c.sub.waiting} Items waiting`);
      assert.ok(written < total / 2, `only part of the ${total} characters was written: ${written}`);
      assert.deepEqual(c.seqs, [0]);
      // The consumer takes everything from now on.
      const taker = setInterval(() => c.sub.release(c.sub.untaken), 1);
      try {
        await waitFor(() => c.seqs.length === 2000, "every Item after the consumer caught up", 30_000);
      } finally {
        clearInterval(taker);
      }
      assert.deepEqual(c.seqs, Array.from({ length: 2000 }, (_, i) => i));
    } finally {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    }
  });

  it("sandbox with ignoreLastEventId, a slow consumer and an abrupt drop: every event written before the drop is delivered", async () => {
    sandbox = await startSandbox({ token: TOKEN, keepAliveMs: 0, retryMs: 5, defaultPackages: false });
    sandbox.faults.set({ ignoreLastEventId: true, dropAfterEvents: 400, times: 1 }, "subscription");
    const pkg = "hostile-drop";
    const seen: number[] = [];
    const clock = new FakeClock();
    const sub = new Subscription({
      url: `${sandbox.url}/subscription/v1/?package=${pkg}`,
      clock,
      auth: { headersFor: () => ({ authorization: `Token ${TOKEN}` }) },
      maxUntaken: 5,
      onItem: ({ eventId }) => seen.push(Number(eventId)),
    });
    clients.push({ sub, clock, seqs: [], ids: [], states: [], malformed: [], notices: [], deliveredAtState: [] });
    sub.start();
    await waitFor(() => sandbox!.liveSubscriberCount(pkg) === 1, "subscribed");
    for (let i = 0; i < 600; i++) sandbox.publishLive(pkg, { type: "Feature", id: `drop-${i}`, properties: { seq: i } });
    const taker = setInterval(() => sub.release(1), 1);
    try {
      await waitFor(() => sub.state === "backing-off", "dropped after 400 events");
      await waitFor(() => seen.length === 400, "the 400 events written before the drop");
      assert.deepEqual(seen, Array.from({ length: 400 }, (_, i) => i + 1));
      await clock.advance(sub.stateChange.retryInMs ?? 0);
      await waitFor(() => sandbox!.liveSubscriberCount(pkg) === 1, "reconnected");
      for (let i = 600; i < 650; i++) sandbox.publishLive(pkg, { type: "Feature", id: `drop-${i}`, properties: { seq: i } });
      await waitFor(() => seen.length === 450, "the events published after the reconnect");
      assert.deepEqual(seen.slice(400), Array.from({ length: 50 }, (_, i) => 601 + i), "nothing replayed (the fault), nothing lost");
    } finally {
      clearInterval(taker);
    }
  });

  it("a line over 32 MiB (the default limit) is a PROTOCOL error on that connection: events before it delivered, reconnect, memory bounded", async () => {
    const items = makeItems(3);
    const mib = Buffer.alloc(1024 * 1024, "x");
    const s = await server((r) =>
      r.n === 0
        ? { writes: [`id: 1\ndata: ${items[0]}\n\nid: 2\ndata: ${items[1]}\n\ndata: `, ...Array.from({ length: 40 }, () => mib)], then: "open" }
        : { writes: [`id: 3\ndata: ${items[2]}\n\n`], then: "open" },
    );
    gc();
    const before = rssMb();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb())), 10);
    try {
      const c = client(s.url);
      await waitFor(() => c.sub.state === "backing-off", "the overlong line ends the connection", 30_000);
      const error = c.sub.stateChange.error;
      assert.equal(error?.code, "PROTOCOL");
      assert.match(error?.message ?? "", /line longer than 33554432 characters/);
      assert.deepEqual(c.seqs, [0, 1]);
      await c.clock.advance(c.sub.stateChange.retryInMs ?? 0);
      await waitFor(() => c.seqs.length === 3, "reconnected and went on");
      assert.equal(s.requests[1].lastEventId, "2");
      // Held: at most the 32 Mi limit in one-byte characters plus chunks in flight.
      assert.ok(peak - before < 200, `RSS grew by ${Math.round(peak - before)} MB`);
    } finally {
      clearInterval(sampler);
    }
  });

  it("retry: 0 with one event per connection: the reconnect delay never goes below the floor (10 s of time: at most 11 connections)", async () => {
    let n = 0;
    const s = await server(() => ({ writes: [`retry: 0\nid: ${++n}\ndata: {"properties":{"seq":${n}}}\n\n`] }));
    const c = client(s.url);
    const backoffs = () => c.states.filter((x) => x.state === "backing-off");
    let waited = 0;
    let handled = 0;
    while (waited < 10_000) {
      await waitFor(() => backoffs().length > handled, "the connection ended");
      const delay = backoffs()[handled++].retryInMs ?? 0;
      assert.ok(delay >= 1000, `delay ${delay} ms`);
      await c.clock.advance(delay);
      waited += delay;
    }
    assert.ok(s.requests.length <= 11, `${s.requests.length} connections`);
  });

  it("huge ids: not used to resume or de-duplicate, one notice, de-dup memory bounded; a 20 KB id is never sent", async () => {
    const items = makeItems(60, 300);
    const big = (i: number) => `${i}-${"i".repeat(256 * 1024)}`;
    const s = await server((r) =>
      r.n === 0
        ? { writes: [`id: short-1\ndata: ${items[0]}\n\n`, ...items.slice(1, 50).map((it, i) => `id: ${big(i)}\ndata: ${it}\n\n`), `id: ${"k".repeat(20_000)}\ndata: ${items[50]}\n\n`] }
        : { writes: [`data: ${items[51]}\n\n`], then: "open" },
    );
    const c = client(s.url);
    await waitFor(() => c.sub.state === "backing-off", "first connection ended");
    assert.equal(c.seqs.length, 51, "every event delivered");
    assert.deepEqual(c.ids, ["short-1"], "only the short id is passed on as eventId");
    assert.deepEqual(c.notices.map((n) => n.code), ["ID_TOO_LONG"], "one notice");
    assert.ok(!c.notices[0].message.includes("iiii"), "the notice does not carry the id");
    await c.clock.advance(c.sub.stateChange.retryInMs ?? 0);
    await waitFor(() => c.seqs.length === 52, "reconnected");
    assert.equal(s.requests[1].lastEventId, "short-1", "resumes from the last usable id; the 20 KB one is not sent");
  });

  it("a server that answers 431 to our Last-Event-ID: reconnect without it (not forever)", async () => {
    const s = await server((r) =>
      r.n === 0
        ? { writes: [`id: ${"q".repeat(9000)}\ndata: {"properties":{"seq":0}}\n\n`] }
        : (r.lastEventId?.length ?? 0) > 8000
          ? { status: 431, headers: { "content-type": "text/plain" }, writes: ["Request Header Fields Too Large"] }
          : { writes: ['data: {"properties":{"seq":1}}\n\n'], then: "open" },
    );
    const c = client(s.url, { maxIdLength: 100_000 });
    await waitFor(() => c.sub.state === "backing-off", "first connection ended");
    await c.clock.advance(c.sub.stateChange.retryInMs ?? 0);
    await waitFor(() => c.notices.some((n) => n.code === "ID_REFUSED"), "431 seen");
    await waitFor(() => c.sub.state === "backing-off", "backing off after 431");
    await c.clock.advance(c.sub.stateChange.retryInMs ?? 0);
    await waitFor(() => c.seqs.length === 2, "connected without the id");
    assert.deepEqual(s.requests.map((r) => r.lastEventId?.length), [undefined, 9000, undefined]);
  });

  it("3 MB of malformed events: the first 10 reported, the rest counted; good Items still delivered", async () => {
    const bad = "data: not-json-at-all-xxxxxxxxxxxxxxxxxxxx\n\n";
    const count = Math.ceil((3 * 1024 * 1024) / bad.length);
    const flood = bad.repeat(count);
    const s = await server(() => ({ writes: ['data: {"properties":{"seq":0}}\n\n', flood, 'data: {"properties":{"seq":1}}\n\n'], then: "open" }));
    const c = client(s.url);
    await waitFor(() => c.seqs.length === 2, "the good Items on both sides of the flood");
    assert.equal(c.sub.stats.malformed, count);
    assert.equal(c.malformed.length, 10);
    assert.deepEqual(c.malformed.map((m) => m.last), [...Array(9).fill(false), true]);
  });

  it("de-dup memory is bounded in characters as well as in count", () => {
    const set = new RecentSet(10_000, 1_000_000);
    for (let i = 0; i < 1500; i++) set.add(`${i}:${"z".repeat(100_000)}`);
    assert.ok(set.heldChars <= 1_000_000, `${set.heldChars} characters held`);
    assert.ok(set.size <= 10);
    assert.ok(set.has(`1499:${"z".repeat(100_000)}`), "the newest is kept");
    assert.equal(set.addIfNew("y".repeat(2_000_000)), true, "a key over the bound is not kept (never a duplicate)");
    assert.equal(set.has("y".repeat(2_000_000)), false);
  });
});
