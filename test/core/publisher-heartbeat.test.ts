import { strict as assert } from "node:assert";
import { Auth } from "../../src/core/auth";
import { Endpoints } from "../../src/core/endpoints";
import { Publisher } from "../../src/core/publisher";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { FakeClock } from "../helpers/fake-clock";
import { waitFor } from "../helpers/wait";
import { startWsTestServer } from "../helpers/ws-test-server";

const TOKEN = "heartbeat-test-token-77";

// The publish socket's two settings on a controlled clock: the heartbeat (a ping after that long
// without a frame from the server) and dead-after (silence, or an unanswered ping, that long).
describe("core/publisher heartbeat and dead-after", function () {
  this.timeout(60_000);
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  /** A sandbox that sends no heartbeat of its own: quiet, but it reads and answers pings. */
  async function quietSandbox(): Promise<Sandbox> {
    const sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs: 0 });
    cleanup.push(() => sb.close());
    return sb;
  }

  /** A publisher on a FakeClock with the two settings (in ms), connected to `url`. */
  async function connected(url: string, heartbeatIntervalMs: number, heartbeatTimeoutMs: number): Promise<{ p: Publisher; clock: FakeClock }> {
    const clock = new FakeClock();
    const endpoints = new Endpoints({ apiUrl: "http://127.0.0.1:1", publishUrl: url });
    const backoff = { initialMs: 1_000, maxMs: 1_000, jitter: 0 };
    const p = new Publisher({ url, authMode: "header", auth: new Auth(endpoints, TOKEN), backoff, heartbeatIntervalMs, heartbeatTimeoutMs, clock });
    cleanup.push(() => p.close());
    p.start();
    await waitFor(() => p.status.state === "connected", "connected");
    return { p, clock };
  }

  /** Moves the clock `ms` more: not dead a millisecond before, dead (and backing off) at `ms`. */
  async function deadAfterExactly(p: Publisher, clock: FakeClock, ms: number): Promise<void> {
    await clock.advance(ms - 1);
    assert.equal(p.stats.heartbeatTimeouts, 0, `not before ${ms} ms`);
    await clock.advance(1);
    await waitFor(() => p.status.state === "backing-off", "the dead socket is replaced");
    assert.equal(p.stats.heartbeatTimeouts, 1);
  }

  /** When the publisher last heard a frame on its socket (a pong included). */
  const lastHeard = (p: Publisher) => (p as unknown as { conn?: { lastHeard: number } }).conn?.lastHeard;

  it("a quiet but healthy sandbox: a ping every heartbeat interval, answered, keeps the socket past dead-after", async () => {
    const sb = await quietSandbox();
    const { p, clock } = await connected(sb.publishUrl, 20_000, 60_000);
    await clock.advance(19_999);
    assert.equal(p.stats.heartbeatPings, 0, "no ping before the interval");
    for (let round = 1; round <= 10; round++) {
      await clock.advance(round === 1 ? 1 : 20_000);
      assert.equal(p.stats.heartbeatPings, round, `ping ${round} after 20 s of quiet`);
      // The sandbox answers in real time while the clock stands still.
      await waitFor(() => lastHeard(p) === clock.now(), `pong ${round} heard`);
    }
    // 200 s of a server that never speaks first: never 60 s without a frame.
    assert.equal(p.stats.heartbeatTimeouts, 0);
    assert.equal(p.stats.opened, 1);
    assert.equal(sb.stats.publishConnections, 1);
    assert.equal(p.status.state, "connected");
  });

  it("without pings (heartbeat 0) the same quiet sandbox is dead after exactly dead-after, and replaced", async () => {
    const sb = await quietSandbox();
    const { p, clock } = await connected(sb.publishUrl, 0, 45_000);
    await deadAfterExactly(p, clock, 45_000);
    assert.equal(p.lastReason, "no heartbeat for 45 s");
    assert.equal(p.stats.heartbeatPings, 0, "no ping was sent");
    await clock.advance(1_000);
    await waitFor(() => p.status.state === "connected" && sb.stats.publishConnections === 2, "replaced");
  });

  it("a sandbox that sends heartbeats needs no ping: frames heard within the interval postpone it", async () => {
    const sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs: 20 });
    cleanup.push(() => sb.close());
    const { p, clock } = await connected(sb.publishUrl, 20_000, 60_000);
    for (let i = 0; i < 5; i++) {
      await clock.advance(15_000);
      // The sandbox's heartbeat (real time) arrives before the next 15 s pass on the clock.
      await waitFor(() => lastHeard(p) === clock.now(), `heartbeat ${i + 1} heard`);
    }
    assert.equal(p.stats.heartbeatPings, 0, "heard every 15 s: no ping in 75 s");
    assert.equal(p.stats.heartbeatTimeouts, 0);
  });

  it("a ping left unanswered: the socket is dead after dead-after counted from the last frame, not replaced earlier", async () => {
    const s = await startWsTestServer({ token: TOKEN, authMode: "header", heartbeatMs: 0 });
    cleanup.push(() => s.kill());
    const { p, clock } = await connected(s.url, 20_000, 60_000);
    await waitFor(() => s.openClients === 1 && p.status.state === "connected", "connected");
    // The server stops reading: it answers no ping.
    ([...(s as unknown as { clients: Set<{ _socket: { pause(): void } }> }).clients][0])._socket.pause();
    await clock.advance(20_000);
    assert.equal(p.stats.heartbeatPings, 1);
    await clock.advance(20_000);
    assert.equal(p.stats.heartbeatPings, 1, "one ping out at a time");
    // 60 s after the last frame heard (the open), whatever the ping.
    await deadAfterExactly(p, clock, 20_000);
    assert.equal(p.lastReason, "no heartbeat for 60 s");
  });
});
