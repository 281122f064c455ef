import { strict as assert } from "node:assert";
import { Agent } from "undici";
import { Subscription, type MalformedEvent, type SubscriptionOptions, type SubscriptionStateChange } from "../../src/core/subscription";
import { itemVersionKey, RecentSet } from "../../src/core/subscription/dedup";
import { FakeClock } from "../helpers/fake-clock";
import { sleep, waitFor } from "../helpers/wait";
import { makeItems, seeded, startSseTestServer, type SseTestServer } from "../helpers/sse-test-server";

const TOKEN = "sub-test-token-5f1e2d3c";
/** What the test server writes first on each connection with `retryMs: 5`. */
const RETRY_5 = "retry: 5\n\n";

interface Run {
  sub: Subscription;
  clock: FakeClock;
  ids: string[];
  seqs: number[];
  states: SubscriptionStateChange[];
  malformed: MalformedEvent[];
}

function subscribe(server: SseTestServer, extra: Partial<SubscriptionOptions> = {}): Run {
  const clock = new FakeClock();
  const run: Run = { ids: [], seqs: [], states: [], malformed: [], sub: undefined as unknown as Subscription, clock };
  run.sub = new Subscription({
    clock,
    url: `${server.url}/subscription/v1/?package=test`,
    auth: { headersFor: () => ({ authorization: `Token ${TOKEN}` }) },
    what: 'subscription "test"',
    redact: (t) => t.split(TOKEN).join("***"),
    onItem: ({ item, eventId }) => {
      run.seqs.push((item.properties as { seq: number }).seq);
      if (eventId !== undefined) run.ids.push(eventId);
    },
    onMalformed: (m) => run.malformed.push(m),
    onState: (s) => run.states.push(s),
    ...extra,
  });
  run.sub.start();
  return run;
}

/**
 * Waits (real time, for sockets) until the predicate holds; whenever the subscription waits to
 * reconnect, moves its fake clock by exactly the delay it asked for. No real timer decides anything.
 */
export async function until(run: Run, predicate: () => boolean, message: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    async () => {
      if (predicate()) return true;
      const change = run.sub.stateChange;
      if ((change.state === "backing-off" || change.state === "failed") && run.clock.pendingDelays().length > 0) {
        await run.clock.advance(Math.min(...run.clock.pendingDelays()));
      }
      return predicate();
    },
    message,
    timeoutMs,
    5,
  );
}

function assertInOrderOnce(seqs: number[], count: number): void {
  assert.equal(seqs.length, count, `expected ${count} Items, got ${seqs.length}`);
  for (let i = 0; i < count; i++) if (seqs[i] !== i) assert.fail(`Item ${i} out of place: got ${seqs[i]}`);
}

function noToken(run: Run): void {
  const text = JSON.stringify(run.states.map((s) => ({ ...s, message: s.error?.message }))) + JSON.stringify(run.malformed);
  assert.ok(!text.includes(TOKEN), "no token in states, errors or reports");
}

describe("core/subscription reader", function () {
  this.timeout(60_000);
  const servers: SseTestServer[] = [];
  const runs: Run[] = [];
  async function server(options: Parameters<typeof startSseTestServer>[0]): Promise<SseTestServer> {
    const s = await startSseTestServer(options);
    servers.push(s);
    return s;
  }
  function start(s: SseTestServer, extra?: Partial<SubscriptionOptions>): Run {
    const run = subscribe(s, extra);
    runs.push(run);
    return run;
  }
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((r) => r.sub.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it("delivers every Item in order with the auth, accept and no Last-Event-ID on the first request", async () => {
    const s = await server({ items: makeItems(500) });
    const run = start(s);
    await waitFor(() => run.seqs.length === 500, "500 Items");
    assertInOrderOnce(run.seqs, 500);
    assert.equal(run.ids[499], "500");
    assert.equal(run.sub.lastEventId, "500");
    assert.deepEqual(run.states.map((x) => x.state), ["connecting", "connected"]);
    assert.equal(s.requests[0].authorization, `Token ${TOKEN}`);
    assert.equal(s.requests[0].accept, "text/event-stream");
    assert.equal(s.requests[0].lastEventId, undefined);
    await run.sub.close();
    assert.equal(run.sub.state, "closed");
    await waitFor(() => s.open === 0, "server sees the stream closed");
  });

  it("survives 50 cuts at random points of a 20,000-Item stream: every Item once, in order, resuming with Last-Event-ID", async () => {
    const items = makeItems(20_000, 300);
    const random = seeded(7);
    const total = Buffer.byteLength(items.map((it, i) => `id: ${i + 1}\ndata: ${it}\n\n`).join(""));
    const cuts = Array.from({ length: 50 }, () => 1 + Math.floor(random() * (total - 2)));
    const s = await server({ items, cuts, retryMs: 5 });
    const run = start(s);
    // retry: 5 is below the floor: every reconnect waits at least the floor (1 s), jitter only lengthens.
    await until(run, () => run.seqs.length >= 20_000, "20,000 Items", 45_000);
    assertInOrderOnce(run.seqs, 20_000);
    assert.equal(s.requests.length, 51, "one request per cut, plus the first");
    assert.ok(s.requests.slice(1).every((r) => r.lastEventId !== undefined), "every reconnect sends Last-Event-ID");
    const attempts = run.states.filter((x) => x.state === "backing-off").map((x) => x.attempt ?? 0);
    assert.ok(attempts.filter((a) => a === 1).length >= 45 && attempts.every((a) => a <= 2), `a healthy connection resets the backoff: ${attempts.join(",")}`);
    const waits = run.states.filter((x) => x.state === "backing-off").map((x) => x.retryInMs ?? 0);
    assert.ok(waits.every((w) => w >= 1000 && w <= 2500), `floor 1 s, at most doubled and +25% jitter: ${waits.join(",")}`);
    noToken(run);
  });

  it("drops the replay of a server that ignores Last-Event-ID", async () => {
    const items = makeItems(3000, 300);
    const random = seeded(11);
    const cuts = Array.from({ length: 10 }, () => 1 + Math.floor(random() * 900_000));
    const s = await server({ items, cuts, retryMs: 5, honourLastEventId: false });
    const run = start(s);
    await until(run, () => run.sub.stats.bytes === cuts.reduce((a, b) => a + b, 0) + s.body.length + 11 * RETRY_5.length, "3000 Items over 11 connections", 45_000);
    assertInOrderOnce(run.seqs, 3000);
    assert.ok(run.sub.stats.duplicates > 0, "the replays were seen and dropped");
  });

  it("without event ids, de-duplicates a replay by collection/id but keeps distinct Items", async () => {
    const base = makeItems(200, 300);
    const sameIdOtherCollection = makeItems(1, 300, "other")[0].replace('"seq":0', '"seq":200');
    const updated = JSON.parse(base[5]);
    updated.properties.seq = 201;
    updated.properties.updated = "2024-05-01T00:00:00Z";
    const items = [...base, sameIdOtherCollection, JSON.stringify(updated)];
    const s = await server({ items, ids: false, cuts: [40_000], retryMs: 5 });
    const run = start(s);
    await until(run, () => run.sub.stats.bytes === 40_000 + s.body.length + 2 * RETRY_5.length, "202 Items, 2 connections, the whole replay read");
    assertInOrderOnce(run.seqs, 202);
    assert.equal(s.requests[1].lastEventId, undefined, "no id to resume from");
    assert.ok(run.sub.stats.duplicates > 100);
    assert.equal(itemVersionKey({ id: "a" }, "x"), itemVersionKey({ id: "a" }, "y"));
    assert.notEqual(itemVersionKey({ id: "a", collection: "c1" }, "x"), itemVersionKey({ id: "a", collection: "c2" }, "x"));
    assert.equal(itemVersionKey({ type: "Feature" }, "x"), undefined, "no id: never de-duplicated");
  });

  it("replaces a stalled stream (socket open, silent) through the idle watchdog (fake clock)", async () => {
    const s = await server({ items: makeItems(100), stallAfter: 5, stallConnections: 1, retryMs: 5 });
    const run = start(s, { idleTimeoutMs: 400 });
    await waitFor(() => run.seqs.length === 5, "5 Items, then silence");
    await run.clock.advance(399);
    assert.equal(run.sub.state, "connected", "not replaced before the idle timeout");
    await run.clock.advance(1);
    await until(run, () => run.seqs.length === 100, "100 Items");
    assertInOrderOnce(run.seqs, 100);
    const lost = run.states.find((x) => x.state === "backing-off");
    assert.equal(lost?.error?.code, "TIMEOUT");
    assert.match(lost?.error?.message ?? "", /no data for 0\.4 s/);
    assert.equal(s.requests[1].lastEventId, "5");
    await waitFor(() => s.open === 1, "the stalled stream was closed");
  });

  it("counts comments as life (fake clock), and undici's body timeout does not kill a quiet stream", async () => {
    const s = await server({ items: makeItems(3), commentEveryMs: 20 });
    const run = start(s, { idleTimeoutMs: 400, dispatcher: new Agent({ bodyTimeout: 100 }) });
    await waitFor(() => run.seqs.length === 3, "3 Items");
    for (let i = 0; i < 4; i++) {
      await run.clock.advance(300);
      const bytes = run.sub.stats.bytes;
      await waitFor(() => run.sub.stats.bytes > bytes, "a comment arrives");
    }
    await run.clock.advance(300);
    assert.equal(s.requests.length, 1, "no reconnect while comments arrive (1.5 s of fake time, idle timeout 0.4 s)");
    assert.equal(run.sub.state, "connected");

    const quiet = await server({ items: makeItems(3) });
    const run2 = start(quiet, { idleTimeoutMs: 5000, dispatcher: new Agent({ bodyTimeout: 100 }) });
    await waitFor(() => run2.seqs.length === 3, "3 Items");
    await sleep(800); // real time: undici's own 100 ms body timeout must not fire
    assert.equal(quiet.requests.length, 1, "a silent stream inside the idle timeout stays");
    assert.equal(run2.sub.state, "connected");
    await run2.clock.advance(5000);
    await waitFor(() => run2.sub.state === "backing-off", "the idle watchdog replaces it after 5 s of fake time");
    assert.equal(run2.sub.stateChange.error?.code, "TIMEOUT");
  });

  it("hits the connect deadline (fake clock) on a server that never answers headers, then connects", async () => {
    const s = await server({ items: makeItems(10), neverAnswer: 1, retryMs: 5 });
    const run = start(s, { connectTimeoutMs: 300, initialRetryMs: 10 });
    await waitFor(() => s.requests.length === 1, "first request");
    await run.clock.advance(299);
    assert.equal(run.sub.state, "connecting");
    await run.clock.advance(1);
    await until(run, () => run.seqs.length === 10, "10 Items after the deadline");
    const lost = run.states.find((x) => x.state === "backing-off");
    assert.equal(lost?.error?.code, "TIMEOUT");
    assert.match(lost?.error?.message ?? "", /no response within 0\.3 s/);
    assert.equal(s.requests.length, 2);
  });

  it("honours Retry-After on 503 and 429", async () => {
    const s = await server({ items: makeItems(5), statuses: [{ status: 503, retryAfter: "7" }, { status: 429, retryAfter: "9" }] });
    const run = start(s, { initialRetryMs: 10 });
    await until(run, () => run.seqs.length === 5, "5 Items");
    assert.equal(s.requests.length, 3);
    const waits = run.states.filter((x) => x.state === "backing-off").map((x) => [x.error?.code, x.retryInMs]);
    assert.deepEqual(waits, [["SERVER", 7000], ["RATE_LIMITED", 9000]]);
  });

  it("grows the backoff over failed attempts, up to the cap", async () => {
    const s = await server({ items: makeItems(2), statuses: Array.from({ length: 5 }, () => ({ status: 500 })) });
    const run = start(s, { initialRetryMs: 20, minRetryMs: 1, maxRetryMs: 100, random: () => 0 });
    await until(run, () => run.seqs.length === 2, "2 Items");
    const waits = run.states.filter((x) => x.state === "backing-off").map((x) => [x.attempt, x.retryInMs]);
    assert.deepEqual(waits, [[1, 20], [2, 40], [3, 80], [4, 100], [5, 100]]);
  });

  it("401/403 and 404: failed state with a slow retry, the reason, and no token", async () => {
    const s = await server({ items: makeItems(1), token: "another-token" });
    const run = start(s, { slowRetryMs: 30_000 });
    await waitFor(() => run.sub.state === "failed", "failed");
    const failed = run.sub.stateChange;
    assert.equal(failed.error?.code, "AUTH");
    assert.match(failed.error?.message ?? "", /token missing or invalid \(HTTP 403\)/);
    assert.ok((failed.retryInMs ?? 0) >= 30_000, "slow retry: never below slowRetryMs");
    assert.deepEqual(run.clock.pendingDelays(), [failed.retryInMs], "the only timer is the slow retry");
    await run.clock.advance((failed.retryInMs ?? 0) - 1);
    assert.equal(s.requests.length, 1, "no hot retry");
    noToken(run);

    const missing = await server({ items: [], statuses: [{ status: 404, body: `no package; your header was Token ${TOKEN}` }] });
    const run2 = start(missing, { slowRetryMs: 30_000 });
    await waitFor(() => run2.sub.state === "failed", "failed");
    assert.equal(run2.sub.stateChange.error?.code, "NOT_FOUND");
    noToken(run2);
  });

  it("reports malformed data with the event id and the first 200 characters, and goes on", async () => {
    const items = makeItems(3);
    const bad = ["not json at all " + "y".repeat(300), "[1,2,3]", '"a string"'];
    const s = await server({ items: [items[0], bad[0], items[1], bad[1], bad[2], items[2]] });
    const run = start(s);
    await waitFor(() => run.seqs.length === 3, "3 good Items");
    assert.deepEqual(run.seqs, [0, 1, 2]);
    assert.deepEqual(run.malformed.map((m) => [m.eventId, m.reason, m.last]), [["2", "not JSON", false], ["4", "not a JSON object", false], ["5", "not a JSON object", false]]);
    assert.equal(run.malformed[0].preview.length, 201, "200 characters and an ellipsis");
    assert.equal(run.sub.stats.malformed, 3);
  });

  it("closes within moments while connecting, backing off, or streaming, and the server sees no stream left", async () => {
    const hanging = await server({ items: [], neverAnswer: 5 });
    const a = start(hanging);
    await waitFor(() => hanging.requests.length === 1, "request sent");
    await a.sub.close();
    assert.equal(a.sub.state, "closed");

    const failing = await server({ items: [], statuses: [{ status: 500 }] });
    const b = start(failing, { initialRetryMs: 60_000 });
    await waitFor(() => b.sub.state === "backing-off", "backing off");
    await b.sub.close();
    assert.equal(b.sub.state, "closed");

    const live = await server({ items: makeItems(50) });
    const c = start(live);
    await waitFor(() => c.seqs.length === 50, "streaming");
    await c.sub.close();
    await waitFor(() => live.open === 0, "server-side stream closed");
    assert.equal(c.states.at(-1)?.state, "closed");
  });
});

describe("core/subscription de-dup memory", () => {
  it("is bounded: the oldest keys leave first", () => {
    const set = new RecentSet(3);
    for (const k of ["a", "b", "c", "a", "d"]) set.add(k);
    assert.equal(set.size, 3);
    assert.deepEqual(["a", "b", "c", "d"].map((k) => set.has(k)), [false, true, true, true]);
    for (let i = 0; i < 10_000; i++) set.add(`k${i}`);
    assert.equal(set.size, 3);
    assert.ok(set.has("k9999") && !set.has("k9996"));
  });
});
