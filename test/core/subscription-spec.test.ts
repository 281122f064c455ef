// Port of the client-behaviour cases of web-platform-tests `eventsource/` to our Subscription, on
// real loopback sockets and a FakeClock. Items must be JSON objects, so where a wpt resource sends
// `data: hello` the port sends `data: {"v":"hello"}`; the bytes of ids, retry fields, statuses,
// MIME types and redirects are the tests' own. Source files are named in each case.
import { strict as assert } from "node:assert";
import { Subscription, type SubscriptionOptions, type SubscriptionStateChange } from "../../src/core/subscription";
import { FakeClock } from "../helpers/fake-clock";
import { scriptedServerPool } from "../helpers/sse-test-server";
import { waitFor } from "../helpers/wait";

const TOKEN = "spec-test-token-77aa";
const STREAM = { "content-type": "text/event-stream" };

interface Client {
  sub: Subscription;
  clock: FakeClock;
  values: unknown[];
  states: SubscriptionStateChange[];
}

describe("core/subscription: web-platform-tests eventsource client cases", function () {
  this.timeout(30_000);
  const servers = scriptedServerPool();
  const server = servers.start;
  const clients: Client[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.sub.close()));
    await servers.closeAll();
  });
  function client(url: string, extra: Partial<SubscriptionOptions> = {}): Client {
    const clock = new FakeClock();
    const c: Client = { clock, values: [], states: [], sub: undefined as unknown as Subscription };
    c.sub = new Subscription({
      url,
      clock,
      auth: { headersFor: () => ({ authorization: `Token ${TOKEN}` }) },
      random: () => 0,
      onItem: ({ item }) => c.values.push(item.v),
      onState: (s) => c.states.push(s),
      ...extra,
    });
    c.sub.start();
    clients.push(c);
    return c;
  }
  /** Moves the fake clock by the reconnect delay the client asked for; returns that delay. */
  async function nextReconnect(c: Client): Promise<number> {
    await waitFor(() => c.sub.state === "backing-off" || c.sub.state === "failed", "waiting to reconnect");
    const delay = c.sub.stateChange.retryInMs ?? -1;
    await c.clock.advance(delay);
    return delay;
  }

  it("request-accept.htm, request-cache-control: Accept text/event-stream, Cache-Control no-cache, no Last-Event-ID at first", async () => {
    const s = await server(() => ({ writes: ['data: {"v":1}\n\n'], then: "open" }));
    const c = client(s.url);
    await waitFor(() => c.values.length === 1, "one event");
    assert.equal(s.requests[0].accept, "text/event-stream");
    assert.equal(s.requests[0].cacheControl, "no-cache");
    assert.equal(s.requests[0].lastEventId, undefined);
  });

  for (const id of ["…", "é…", "🛰️ sentinel-2 état"]) {
    it(`format-field-id.htm / format-field-id-2.any.js (last-event-id.php): id ${JSON.stringify(id)} is sent back as its UTF-8 bytes, on every reconnect`, async () => {
      const s = await server((r) =>
        r.lastEventId
          ? { writes: [`data: ${JSON.stringify({ v: r.lastEventId })}\n\n`] }
          : { writes: [`id: ${id}\nretry: 200\ndata: {"v":"hello"}\n\n`] },
      );
      const c = client(s.url, { minRetryMs: 1 });
      await waitFor(() => c.values.length === 1, "hello");
      assert.equal(await nextReconnect(c), 200, "retry: 200, exactly (random 0), above the 1 ms floor");
      await waitFor(() => c.values.length === 2, "the echoed id");
      await nextReconnect(c);
      await waitFor(() => c.values.length === 3, "again after another reconnect");
      assert.deepEqual(c.values, ["hello", id, id]);
      assert.deepEqual(s.requests.map((r) => r.lastEventId), [undefined, id, id]);
      assert.equal(c.sub.lastEventId, id);
    });
  }

  it("format-field-id-3.htm resets (last-event-id2.py type 3): after an empty id:, no Last-Event-ID is sent", async () => {
    const s = await server(() => ({ writes: ['id: 1\ndata: {"v":1}\n\nid:\ndata: {"v":2}\n\ndata: {"v":3}\n\n'] }));
    const c = client(s.url);
    await waitFor(() => c.values.length === 3, "three events");
    await nextReconnect(c);
    await waitFor(() => s.requests.length === 2, "reconnected");
    assert.equal(s.requests[1].lastEventId, undefined);
  });

  it("format-field-id-null.htm: an id holding U+0000 is never sent", async () => {
    const s = await server(() => ({ writes: ['id: 7\ndata: {"v":1}\n\nid: \0\0\ndata: {"v":2}\n\n'] }));
    const c = client(s.url);
    await waitFor(() => c.values.length === 2, "two events");
    await nextReconnect(c);
    await waitFor(() => s.requests.length === 2, "reconnected");
    assert.equal(s.requests[1].lastEventId, "7", "the id before it stays in effect");
  });

  it("format-data-before-final-empty-line.js: an unfinished last event is dropped and its id not used", async () => {
    const s = await server(() => ({ writes: ['retry:1000\ndata: {"v":"test1"}\n\nid:test\ndata: {"v":"test2"}'] }));
    const c = client(s.url);
    await waitFor(() => c.sub.state === "backing-off", "stream ended");
    assert.deepEqual(c.values, ["test1"]);
    await nextReconnect(c);
    await waitFor(() => s.requests.length === 2, "reconnected");
    assert.equal(s.requests[1].lastEventId, undefined);
  });

  for (const [source, body, retry] of [
    ["format-field-retry.htm (retry:02000)", "retry:02000\ndata: {}\n\n", 2000],
    ["format-field-retry-bogus.htm (retry:2000 then retry:1000x)", "retry:2000\nretry:1000x\ndata: {}\n\n", 2000],
  ] as const) {
    it(`${source}: reconnects after at least ${retry} ms; jitter only lengthens`, async () => {
      for (const random of [0, 0.5, 1]) {
        const s = await server(() => ({ writes: [body] }));
        const c = client(s.url, { random: () => random });
        await waitFor(() => c.sub.state === "backing-off", "stream ended");
        const delay = c.sub.stateChange.retryInMs ?? 0;
        assert.ok(delay >= retry && delay <= retry * 1.25, `delay ${delay} for random ${random}`);
        await c.clock.advance(delay - 1);
        assert.equal(s.requests.length, 1, "not before the delay");
        await c.clock.advance(1);
        await waitFor(() => s.requests.length === 2, "reconnects at the delay");
      }
    });
  }

  it("eventsource-reconnect.htm (status-reconnect.py ok_first): a stream that ends is reopened and the next event arrives", async () => {
    const s = await server((r) => ({ writes: [r.n === 0 ? 'retry: 2\ndata: {"v":"ok"}\n\n' : 'data: {"v":"data"}\n\n'] }));
    const c = client(s.url);
    await waitFor(() => c.values.length === 1, "ok");
    assert.equal(await nextReconnect(c), 1000, "retry: 2 is below the floor (1 s, a documented deviation)");
    await waitFor(() => c.values.length === 2, "data");
    assert.deepEqual(c.values, ["ok", "data"]);
    assert.deepEqual(c.states.map((x) => x.state).slice(0, 4), ["connecting", "connected", "backing-off", "connecting"]);
  });

  it("request-status-error.htm (204): the server asks us to stop: state stopped, no reconnect", async () => {
    const s = await server(() => ({ status: 204, headers: STREAM, writes: [] }));
    const c = client(s.url);
    await waitFor(() => c.sub.state === "stopped", "stopped");
    assert.equal(c.sub.stateChange.error?.code, "CLOSED");
    assert.match(c.sub.stateChange.error?.message ?? "", /HTTP 204 No Content.*not reconnecting/);
    assert.deepEqual(c.clock.pendingDelays(), [], "no timer left");
    await c.clock.advance(3_600_000);
    assert.equal(s.requests.length, 1);
  });

  for (const status of [205, 210, 299, 404, 410, 503]) {
    it(`request-status-error.htm (${status}): the connection fails with a clear error; no event from its body`, async () => {
      const s = await server(() => ({ status, headers: STREAM, writes: ['data: {"v":"must not be seen"}\n\n'] }));
      const c = client(s.url);
      await waitFor(() => c.sub.state === "failed" || c.sub.state === "backing-off", "failed");
      assert.deepEqual(c.values, []);
      const change = c.sub.stateChange;
      assert.equal(change.error?.status, status);
      // Deviation (docs/protocol-notes.md): 5xx backs off, the rest retry slowly, instead of closing for good.
      if (status === 503) assert.equal(change.state, "backing-off");
      else {
        assert.equal(change.state, "failed");
        assert.ok((change.retryInMs ?? 0) >= 60_000, "slow retry");
      }
      assert.match(change.error?.message ?? "", new RegExp(`HTTP ${status}`));
    });
  }

  for (const type of ["text/x-bogus", "text/html; charset=utf-8", "application/json", ""]) {
    it(`format-mime-valid-bogus.htm: 200 with Content-Type ${JSON.stringify(type)} fails the connection, nothing parsed`, async () => {
      const headers: Record<string, string> = type ? { "content-type": type } : {};
      const s = await server(() => ({ headers, writes: ['data: {"v":"must not be seen"}\n\n'] }));
      const c = client(s.url);
      await waitFor(() => c.sub.state === "failed", "failed");
      assert.deepEqual(c.values, []);
      assert.equal(c.sub.stateChange.error?.code, "PROTOCOL");
      assert.match(c.sub.stateChange.error?.message ?? "", /not text\/event-stream/);
    });
  }

  it("format-utf-8.any.js: text/event-stream;charset=windows-1252 is still read as UTF-8", async () => {
    const s = await server(() => ({ headers: { "content-type": "text/event-stream;charset=windows-1252" }, writes: [Buffer.from('data: {"v":"ok\xE2\x80\xA6"}\n\n', "latin1")], then: "open" }));
    const c = client(s.url);
    await waitFor(() => c.values.length === 1, "one event");
    assert.deepEqual(c.values, ["ok…"]);
  });

  for (const status of [301, 302, 303, 307, 308]) {
    it(`request-redirect.htm (${status}): a same-origin redirect is followed, with the token`, async () => {
      const s = await server((r) =>
        r.url.startsWith("/moved") ? { writes: ['data: {"v":"here"}\n\n'], then: "open" } : { status, headers: { location: "/moved?x=1" }, writes: [] },
      );
      const c = client(`${s.url}/start`);
      await waitFor(() => c.values.length === 1, "event after the redirect");
      assert.deepEqual(s.requests.map((r) => [r.url, r.authorization]), [["/start", `Token ${TOKEN}`], ["/moved?x=1", `Token ${TOKEN}`]]);
    });
  }

  it("a cross-origin redirect is refused (nothing sent there, the connection fails and retries slowly); more than 5 redirects fail the connection", async () => {
    const other = await server(() => ({ writes: ['data: {"v":"elsewhere"}\n\n'], then: "open" }));
    const s = await server(() => ({ status: 302, headers: { location: `${other.url.replace("127.0.0.1", "localhost")}/x` }, writes: [] }));
    const c = client(s.url);
    await waitFor(() => c.sub.stateChange.error !== undefined, "the refused redirect");
    assert.equal(c.sub.stateChange.error?.code, "UNSUPPORTED");
    assert.match(c.sub.stateChange.error?.message ?? "", /redirected \(HTTP 302\) to http:\/\/localhost:\d+, which is not the configured origin/);
    assert.equal(s.requests[0].authorization, `Token ${TOKEN}`);
    assert.equal(other.requests.length, 0, "nothing sent to another origin");
    assert.deepEqual(c.values, []);

    const loop = await server((r) => ({ status: 307, headers: { location: `/r${r.n + 1}` }, writes: [] }));
    const c2 = client(loop.url);
    await waitFor(() => c2.sub.state === "failed", "failed");
    assert.match(c2.sub.stateChange.error?.message ?? "", /more than 5 redirects/);
    assert.equal(loop.requests.length, 6, "the first request and 5 redirects");
  });
});
