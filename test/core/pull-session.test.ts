import { strict as assert } from "node:assert";
import { Auth } from "../../src/core/auth";
import type { PullSpec } from "../../src/core/dataset";
import type { DeliveryTracker } from "../../src/core/dataset/flow-window";
import { PullSession, type PullMessage, type PullSessionOptions } from "../../src/core/dataset/pull-session";
import { Endpoints } from "../../src/core/endpoints";
import { startDatasetTestServer, type DatasetTestServer } from "../helpers/dataset-test-server";
import { FakeClock } from "../helpers/fake-clock";
import { waitFor } from "../helpers/wait";

const TOKEN = "test-token-123456";

function session(server: DatasetTestServer, spec: PullSpec, extra: Partial<PullSessionOptions> = {}): { session: PullSession; sent: PullMessage[] } {
  const endpoints = new Endpoints({ apiUrl: server.url, publishUrl: "ws://127.0.0.1:1/publish/v1/" });
  const auth = new Auth(endpoints, TOKEN);
  const sent: PullMessage[] = [];
  const s = new PullSession({
    spec: () => spec,
    endpoints,
    reader: { auth, isApiOrigin: (u) => endpoints.isApiOrigin(u), idleTimeoutMs: 5000, backoffInitialMs: 20 },
    pullId: "pull-1",
    window: 1000,
    stallMs: 60_000,
    send: (m) => sent.push(m),
    ...extra,
  });
  return { session: s, sent };
}

const idsOf = (messages: PullMessage[]) => messages.flatMap((m) => (Array.isArray(m.payload) ? m.payload : [m.payload])).map((i) => (i as { id: string }).id);

describe("core/dataset pull session", function () {
  let server: DatasetTestServer;
  beforeEach(async () => {
    server = await startDatasetTestServer({ count: 173, tieEvery: 4, token: TOKEN });
  });
  afterEach(() => server.close());

  it("sends every Item in arrays as one sequence; only the last message carries parts.count", async () => {
    const { session: s, sent } = session(server, { mode: "stream", package: "test-pkg", order: "old" }, { arraySize: 50 });
    const summary = await s.run();
    assert.deepEqual(sent.map((m) => (m.payload as unknown[]).length), [50, 50, 50, 23]);
    assert.deepEqual(sent.map((m) => m.parts.index), [0, 1, 2, 3]);
    assert.deepEqual(sent.map((m) => m.parts.count), [undefined, undefined, undefined, 4]);
    assert.deepEqual(sent.map((m) => m.msgid), ["pull-1-0", "pull-1-1", "pull-1-2", "pull-1-3"]);
    assert.deepEqual(idsOf(sent), server.select("old").map((i) => i.id));
    assert.equal(sent[0].package, "test-pkg");
    assert.deepEqual({ items: summary.items, messages: summary.messages, stopped: summary.stopped, flowControl: summary.flowControl, error: summary.error }, { items: 173, messages: 4, stopped: false, flowControl: "yield", error: undefined });
    assert.equal(s.failure, undefined);
  });

  it("a bad spec ends the pull with a BAD_REQUEST summary and sends nothing", async () => {
    const { session: s, sent } = session(server, { mode: "stream", package: " " });
    const summary = await s.run();
    assert.equal(sent.length, 0);
    assert.equal(summary.error?.code, "BAD_REQUEST");
    assert.match(summary.error!.message, /no package/);
    assert.equal(s.failure?.code, "BAD_REQUEST");
  });

  it("with an observer, the window bounds the messages in flight; releases let more go; a stall on the clock writes them off once", async () => {
    const clock = new FakeClock();
    let tracker: DeliveryTracker | undefined;
    let removed = false;
    const stalls: number[] = [];
    const { session: s, sent } = session(server, { mode: "stream", package: "test-pkg" }, {
      window: 5,
      stallMs: 30_000,
      clock,
      observe: (t) => {
        tracker = t;
        return { deliveries: 1, remove: () => (removed = true) };
      },
      onStall: (inFlight) => stalls.push(inFlight),
    });
    const running = s.run();
    await waitFor(() => clock.pendingDelays().includes(30_000), "the session waits for room");
    assert.equal(sent.length, 5);
    assert.equal(s.window.inFlight, 5);
    for (const m of sent.slice(0, 3)) tracker!.finished(m.msgid);
    await waitFor(() => sent.length === 8 && clock.pendingDelays().includes(30_000), "three more went after the low-water mark");
    await clock.advance(30_000);
    assert.deepEqual(stalls, [5]);
    await waitFor(() => sent.length === 13 && clock.pendingDelays().includes(30_000), "the written-off window refilled");
    s.stop();
    const summary = await running;
    assert.equal(summary.stopped, true);
    assert.equal(summary.flowControl, "hooks");
    assert.equal(summary.messages, 14, "the held message closes the sequence after a stop");
    assert.equal(sent.at(-1)!.parts.count, 14);
    assert.equal(stalls.length, 1, "said once per pull");
    assert.equal(removed, true, "the observer is removed at the end");
  });

  it("'next' pacing sends one batch per credit, and a stop's cursor resumes after the last message", async () => {
    const { session: s, sent } = session(server, { mode: "stream", package: "test-pkg", order: "old" }, { creditBatch: 3 });
    const running = s.run();
    await waitFor(() => sent.length === 3, "the first batch");
    s.credit();
    await waitFor(() => sent.length === 6, "the second batch");
    s.stop();
    const summary = await running;
    assert.equal(summary.messages, 7);
    assert.deepEqual(idsOf(sent), server.select("old").slice(0, 7).map((i) => i.id));
    assert.equal(summary.cursor?.kind, "stream");
    const resumed = session(server, { mode: "stream", resume: summary.cursor! });
    await resumed.session.run();
    assert.deepEqual(idsOf(resumed.sent), server.select("old").slice(7).map((i) => i.id));
  });
});
