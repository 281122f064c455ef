import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { request } from "undici";
import WebSocket from "ws";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { closed, getBytes, getText, openWs, SseReader, waitUntil } from "./clients";

const TOKEN = "sandbox-token";
const AUTH = { authorization: `Token ${TOKEN}` };

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

/** Reads a body until it ends or breaks; returns the bytes received and whether it broke. */
async function readAll(url: string, headers: Record<string, string> = AUTH): Promise<{ status: number; text: string; broken: boolean }> {
  const response = await request(url, { headers });
  const chunks: Buffer[] = [];
  let broken = false;
  try {
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
  } catch {
    broken = true;
  }
  return { status: response.statusCode, text: Buffer.concat(chunks).toString("utf8"), broken };
}

describe("sandbox fault injection", function () {
  let sb: Sandbox;

  before(async () => {
    sb = await startSandbox({ port: 0, token: TOKEN, seed: 7, heartbeatMs: 100, keepAliveMs: 100 });
  });
  after(async () => {
    await sb.close();
  });
  afterEach(() => sb.faults.clear());

  it("dropAfterEvents cuts a subscription after N events", async () => {
    sb.faults.set({ dropAfterEvents: 2 }, "subscription");
    const reader = await SseReader.open(`${sb.url}/subscription/v1/?package=drop-events`, AUTH);
    await waitUntil(() => sb.liveSubscriberCount("drop-events") === 1, "subscriber");
    for (let i = 0; i < 3; i++) sb.publishLive("drop-events", { type: "Feature", id: `d${i}` });
    await waitUntil(() => reader.ended, "stream cut");
    assert.equal(reader.events.length, 2);
    assert.ok(reader.error, "the cut is abrupt, not a clean end");
    assert.ok(sb.stats.faultsInjected >= 1);
  });

  it("cuts the subscription stream at 50 random byte positions; Last-Event-ID replay still delivers every Item once, in order", async () => {
    const pkg = "cut-50";
    const ids = Array.from({ length: 40 }, (_, i) => `c${i}`);
    for (const id of ids) sb.publishLive(pkg, { type: "Feature", id, pad: "x".repeat(900) });
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    sb.faults.set({ dropAfterBytes: () => 1 + Math.floor(random() * 4000) }, "subscription");
    const received: string[] = [];
    let cuts = 0;
    let lastId = "0"; // ids start at 1: "0" replays the whole ring
    for (let round = 0; round < 50; round++) {
      const reader = await SseReader.open(`${sb.url}/subscription/v1/?package=${pkg}`, { ...AUTH, "last-event-id": lastId });
      await waitUntil(() => reader.ended || received.length + reader.events.length === ids.length, `round ${round} cut`);
      if (reader.ended) cuts++;
      reader.close();
      for (const event of reader.events) {
        received.push(JSON.parse(event.data).id);
        lastId = event.id ?? lastId;
      }
    }
    sb.faults.clear();
    const rest = await SseReader.open(`${sb.url}/subscription/v1/?package=${pkg}`, { ...AUTH, "last-event-id": lastId });
    await waitUntil(() => received.length + rest.events.length === ids.length, "the rest");
    rest.close();
    received.push(...rest.events.map((e) => JSON.parse(e.data).id));
    assert.deepEqual(received, ids);
    assert.ok(cuts >= 10, `cut ${cuts} times`);
  });

  it("stall accepts the request and sends nothing, not even headers", async () => {
    sb.faults.set({ stall: true }, "subscription");
    const injectedBefore = sb.stats.faultsInjected;
    await assert.rejects(
      request(`${sb.url}/subscription/v1/?package=stalled`, { headers: AUTH, headersTimeout: 300 }),
      (e: Error & { code?: string }) => e.code === "UND_ERR_HEADERS_TIMEOUT",
    );
    assert.equal(sb.stats.faultsInjected, injectedBefore + 1, "the sandbox accepted the request and stalled it");
    assert.equal(sb.liveSubscriberCount("stalled"), 0);
  });

  it("stallAfterEvents goes silent after N events: no more events, no keep-alives", async () => {
    sb.faults.set({ stallAfterEvents: 1 }, "subscription");
    const reader = await SseReader.open(`${sb.url}/subscription/v1/?package=stall-after`, AUTH);
    await waitUntil(() => sb.liveSubscriberCount("stall-after") === 1, "subscriber");
    sb.publishLive("stall-after", { type: "Feature", id: "s0" });
    sb.publishLive("stall-after", { type: "Feature", id: "s1" });
    await waitUntil(() => reader.events.length === 1, "first event");
    const bytes = reader.bytes;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(reader.bytes, bytes, "silent (keep-alive period is 100 ms)");
    assert.equal(reader.ended, false, "socket still open");
    reader.close();
  });

  it("malformedEvery inserts malformed events and lines without losing real Items", async () => {
    sb.faults.set({ malformedEvery: 2 }, "subscription");
    const reader = await SseReader.open(`${sb.url}/subscription/v1/?package=malformed`, AUTH);
    await waitUntil(() => sb.liveSubscriberCount("malformed") === 1, "subscriber");
    for (let i = 0; i < 4; i++) sb.publishLive("malformed", { type: "Feature", id: `m${i}` });
    await waitUntil(() => reader.events.length === 6, "4 real + 2 malformed events");
    const parsed = reader.events.map((e) => {
      try {
        return JSON.parse(e.data).id as string;
      } catch {
        return "malformed";
      }
    });
    assert.deepEqual(parsed, ["m0", "malformed", "m1", "m2", "malformed", "m3"]);
    reader.close();

    sb.faults.set({ malformedEvery: 3 }, "dataset");
    const r = await getText(`${sb.url}/api/dataset/v1/landsat-c2-l2-sample/stream/`, AUTH);
    const all = lines(r.text);
    const good = all.filter((l) => {
      try {
        JSON.parse(l);
        return true;
      } catch {
        return false;
      }
    });
    assert.equal(good.length, 200);
    assert.equal(all.length - good.length, Math.floor(200 / 3));
  });

  it("dropAfterEvents and dropAfterBytes cut a dataset stream (abruptly, mid-line for bytes)", async () => {
    sb.faults.set({ dropAfterEvents: 10 }, "dataset");
    const a = await readAll(`${sb.url}/api/dataset/v1/sentinel-2-l2a-sample/stream/`);
    assert.equal(a.broken, true);
    assert.equal(lines(a.text).length, 10);
    sb.faults.set({ dropAfterBytes: 10_000 }, "dataset");
    const b = await readAll(`${sb.url}/api/dataset/v1/sentinel-2-l2a-sample/stream/`);
    assert.equal(b.broken, true);
    assert.equal(Buffer.byteLength(b.text), 10_000);
  });

  it("chunkBytes splits writes into tiny pieces; sseFraming frames dataset Items as SSE data lines", async () => {
    sb.faults.set({ chunkBytes: 7 }, "dataset");
    const response = await request(`${sb.url}/api/dataset/v1/landsat-c2-l2-sample/stream/?order=old&to=2024-01-01T08:00:00Z`, { headers: AUTH });
    const sizes: number[] = [];
    const parts: Buffer[] = [];
    for await (const chunk of response.body) {
      sizes.push((chunk as Buffer).length);
      parts.push(chunk as Buffer);
    }
    assert.equal(lines(Buffer.concat(parts).toString("utf8")).length, 3);
    assert.ok(sizes.length > 100, `${sizes.length} chunks`);
    assert.ok(Math.max(...sizes) < 4096, "chunks stay small");

    sb.faults.set({ sseFraming: true }, "dataset");
    const framed = await getText(`${sb.url}/api/dataset/v1/landsat-c2-l2-sample/stream/?order=old`, AUTH);
    const data = framed.text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)));
    assert.equal(data.length, 200);
    assert.ok(framed.text.includes("\n: still here\n"));
  });

  it("failNext answers 5xx/429 with Retry-After for the next K requests, then recovers", async () => {
    sb.faults.set({ failNext: { count: 2, status: 503, retryAfter: 7 } }, "dataset");
    const url = `${sb.url}/api/dataset/v1/sentinel-2-l2a-sample/paginate/`;
    for (let i = 0; i < 2; i++) {
      const r = await getText(url, AUTH);
      assert.equal(r.status, 503);
      assert.equal(r.headers["retry-after"], "7");
    }
    assert.equal((await getText(url, AUTH)).status, 200);
    sb.faults.set({ failNext: { count: 1, status: 429, retryAfter: 2 } }, "item");
    const limited = await getText(`${sb.url}/api/item/v1/sentinel-2-l2a-example`, AUTH);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers["retry-after"], "2");
    assert.equal((await getText(`${sb.url}/api/item/v1/sentinel-2-l2a-example`, AUTH)).status, 200);
    sb.faults.set({ failNext: { count: 1, status: 500 } }, "subscription");
    const failed = await getText(`${sb.url}/subscription/v1/?package=x`, AUTH);
    assert.equal(failed.status, 500);
    assert.equal(failed.headers["retry-after"], undefined);
  });

  it("times limits connection faults to the next N connections", async () => {
    sb.faults.set({ dropAfterEvents: 1, times: 1 }, "dataset");
    const first = await readAll(`${sb.url}/api/dataset/v1/landsat-c2-l2-sample/stream/`);
    assert.equal(lines(first.text).length, 1);
    const second = await readAll(`${sb.url}/api/dataset/v1/landsat-c2-l2-sample/stream/`);
    assert.equal(second.broken, false);
    assert.equal(lines(second.text).length, 200);
  });

  it("ignoreLastEventId replays nothing", async () => {
    for (let i = 0; i < 3; i++) sb.publishLive("no-replay", { type: "Feature", id: `n${i}` });
    sb.faults.set({ ignoreLastEventId: true }, "subscription");
    const reader = await SseReader.open(`${sb.url}/subscription/v1/?package=no-replay`, { ...AUTH, "last-event-id": "1" });
    await waitUntil(() => reader.retry !== undefined, "stream open");
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(reader.events.length, 0);
    reader.close();
  });

  describe("assets", () => {
    let item: { assets: Record<string, { href: string; "file:size": number; "file:checksum": string }> };
    before(async () => {
      item = JSON.parse((await getText(`${sb.url}/api/item/v1/sentinel-2-l2a-example`, AUTH)).text);
    });

    it("ignoreRange answers 200 with the whole body", async () => {
      sb.faults.set({ ignoreRange: true }, "asset");
      const r = await getBytes(item.assets.B04_10m.href, { ...AUTH, range: "bytes=100-199" });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, item.assets.B04_10m["file:size"]);
      assert.equal(r.headers["content-range"], undefined);
    });

    it("wrongChecksum serves bytes of the right size whose digest does not match", async () => {
      sb.faults.set({ wrongChecksum: true }, "asset");
      const asset = item.assets.thumbnail;
      const r = await getBytes(asset.href, AUTH);
      assert.equal(r.body.length, asset["file:size"]);
      const digest = `1220${createHash("sha256").update(r.body).digest("hex")}`;
      assert.notEqual(digest, asset["file:checksum"]);
      sb.faults.clear();
      const good = await getBytes(asset.href, AUTH);
      assert.equal(`1220${createHash("sha256").update(good.body).digest("hex")}`, asset["file:checksum"]);
    });

    it("redirectAssetsTo answers 302 to another origin that serves the same bytes", async () => {
      const other = await startSandbox({ port: 0, seed: 7, requireAssetAuth: false });
      try {
        sb.faults.set({ redirectAssetsTo: other.url }, "asset");
        const r = await request(item.assets.B02_10m.href, { headers: AUTH, maxRedirections: 0 } as Parameters<typeof request>[1]);
        await r.body.dump();
        assert.equal(r.statusCode, 302);
        const location = String(r.headers.location);
        assert.ok(location.startsWith(other.url));
        const followed = await getBytes(location);
        assert.equal(followed.status, 200);
        assert.equal(followed.body.length, item.assets.B02_10m["file:size"]);
        assert.equal(`1620${createHash("sha3-256").update(followed.body).digest("hex")}`, item.assets.B02_10m["file:checksum"]);
      } finally {
        await other.close();
      }
    });

    it("dropAfterBytes truncates an asset body", async () => {
      sb.faults.set({ dropAfterBytes: 5000 }, "asset");
      const r = await readAll(item.assets.B03_10m.href);
      assert.equal(r.broken, true);
    });
  });

  describe("publish", () => {
    it("failNext refuses the upgrade with the status and Retry-After", async () => {
      sb.faults.set({ failNext: { count: 1, status: 503, retryAfter: 5 } }, "publish");
      await assert.rejects(openWs(sb.publishUrl, AUTH), (e: { statusCode: number; headers: Record<string, string> }) => e.statusCode === 503 && e.headers["retry-after"] === "5");
      const ws = await openWs(sb.publishUrl, AUTH);
      ws.close();
    });

    it("stall never completes the handshake", async () => {
      sb.faults.set({ stall: true }, "publish");
      const ws = new WebSocket(sb.publishUrl, { headers: AUTH, handshakeTimeout: 300 });
      const error = await new Promise<Error>((resolve) => ws.once("error", resolve));
      assert.match(error.message, /timed out/i);
    });

    it("silent sends no heartbeat; dropAfterEvents terminates after N messages", async () => {
      sb.faults.set({ silent: true }, "publish");
      const quiet = await openWs(sb.publishUrl, AUTH);
      let pings = 0;
      quiet.on("ping", () => pings++);
      await new Promise((r) => setTimeout(r, 350));
      assert.equal(pings, 0);
      quiet.close();

      sb.faults.set({ dropAfterEvents: 2 }, "publish");
      const ws = await openWs(sb.publishUrl, AUTH);
      const end = closed(ws);
      const item = { type: "Feature", id: "p", geometry: null, properties: {}, links: [], assets: {} };
      for (let i = 0; i < 3; i++) ws.send(JSON.stringify({ active_parent: "drop", data: item }));
      assert.equal((await end).code, 1006);
    });

    it("heartbeat can be a text frame", async () => {
      const text = await startSandbox({ port: 0, heartbeatMs: 50, heartbeat: "text" });
      try {
        const ws = await openWs(text.publishUrl, AUTH);
        const message = await new Promise<string>((resolve) => ws.once("message", (m) => resolve(m.toString())));
        assert.ok(JSON.parse(message).heartbeat);
        ws.close();
      } finally {
        await text.close();
      }
    });
  });
});
