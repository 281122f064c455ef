import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { startSandbox, PUBLISH_CLOSE, type Sandbox } from "../../src/sandbox";
import { closed, getBytes, getText, openWs, SseReader, waitUntil } from "./clients";

const TOKEN = "sandbox-token";
const AUTH = { authorization: `Token ${TOKEN}` };

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

function datetimeOf(item: { properties: { datetime: string } }): number {
  return Date.parse(item.properties.datetime);
}

function multihash(body: Buffer, checksum: string): string {
  const algorithm = checksum.startsWith("1220") ? "sha256" : checksum.startsWith("1620") ? "sha3-256" : "?";
  return checksum.slice(0, 4) + createHash(algorithm).update(body).digest("hex");
}

describe("sandbox conformance", function () {
  let sb: Sandbox;

  before(async () => {
    sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs: 100, keepAliveMs: 100, retryMs: 1500 });
  });
  after(async () => {
    await sb.close();
  });
  afterEach(() => sb.faults.clear());

  describe("auth and routing", () => {
    const paths = [
      "/subscription/v1/?package=sentinel-2-l2a-live",
      "/api/dataset/v1/sentinel-2-l2a-sample/stream/",
      "/api/dataset/v1/sentinel-2-l2a-sample/paginate/",
      "/api/item/v1/sentinel-2-l2a-example",
      "/assets/sentinel-2-l2a-example/0/B02_10m/x.jp2",
    ];

    it("answers 401 without a token and 403 with a wrong one on every endpoint", async () => {
      for (const path of paths) {
        const none = await getText(sb.url + path);
        assert.equal(none.status, 401, path);
        assert.match(JSON.parse(none.text).detail, /credentials/);
        const wrong = await getText(sb.url + path, { authorization: "Token nope" });
        assert.equal(wrong.status, 403, path);
        const bearer = await getText(sb.url + path, { authorization: `Bearer ${TOKEN}` });
        assert.equal(bearer.status, 401, `${path} (Bearer is not the documented scheme)`);
      }
      assert.ok(sb.stats.unauthorized >= 10);
      assert.ok(sb.stats.forbidden >= 5);
    });

    it("answers 404 for unknown paths and packages, and for URLs without their documented slash", async () => {
      for (const path of [
        "/nothing",
        "/api/dataset/v1/sentinel-2-l2a-sample/stream",
        "/api/dataset/v1/no-such-package/stream/",
        "/api/dataset/v1/sentinel-2-l2a-sample/other/",
        "/api/item/v1/no-such-item",
        "/api/item/v1/sentinel-2-l2a-example/",
        "/subscription/v1?package=x",
      ]) {
        const r = await getText(sb.url + path, AUTH);
        assert.equal(r.status, 404, path);
      }
    });

    it("answers 400 for a subscription without package", async () => {
      const r = await getText(`${sb.url}/subscription/v1/`, AUTH);
      assert.equal(r.status, 400);
    });
  });

  describe("dataset", () => {
    it("streams every Item of the package as newline-delimited JSON with the documented content type, newest first", async () => {
      const r = await getText(`${sb.url}/api/dataset/v1/sentinel-2-l2a-sample/stream/`, AUTH);
      assert.equal(r.status, 200);
      assert.equal(r.headers["content-type"], "text/event-stream; charset=utf-8");
      const items = lines(r.text).map((l) => JSON.parse(l));
      assert.equal(items.length, 500);
      assert.equal(new Set(items.map((i) => i.id)).size, 500);
      for (let i = 1; i < items.length; i++) assert.ok(datetimeOf(items[i - 1]) > datetimeOf(items[i]), "order=new is newest first");
      for (const item of items.slice(0, 5)) {
        const bytes = Buffer.byteLength(JSON.stringify(item));
        assert.ok(bytes >= 3000 && bytes <= 12_000, `Item size ${bytes} in 3-12 KB`);
      }
    });

    it("honours order=old and from/to (inclusive), as index arithmetic", async () => {
      const r = await getText(`${sb.url}/api/dataset/v1/sentinel-2-l2a-sample/stream/?order=old&from=2024-01-02T00:00:00Z&to=2024-01-02T05:00:00Z`, AUTH);
      const items = lines(r.text).map((l) => JSON.parse(l));
      assert.deepEqual(items.map((i) => i.properties.datetime), [0, 1, 2, 3, 4, 5].map((h) => `2024-01-02T0${h}:00:00.000000Z`));
      const day = await getText(`${sb.url}/api/dataset/v1/sentinel-2-l2a-sample/stream/?from=2024-01-03&to=2024-01-03`, AUTH);
      const dayItems = lines(day.text).map((l) => JSON.parse(l));
      assert.equal(dayItems.length, 24, "a plain date covers the whole UTC day");
      assert.equal(dayItems[0].properties.datetime, "2024-01-03T23:00:00.000000Z");
      const offset = await getText(`${sb.url}/api/dataset/v1/sentinel-2-l2a-sample/stream/?order=old&from=${encodeURIComponent("2024-01-02T02:00:00+02:00")}&to=2024-01-02T00:00:00Z`, AUTH);
      assert.equal(lines(offset.text).length, 1, "from with an offset is converted to UTC");
      const none = await getText(`${sb.url}/api/dataset/v1/sentinel-2-l2a-sample/stream/?from=2030-01-01`, AUTH);
      assert.equal(none.status, 200);
      assert.equal(none.text, "");
    });

    it("answers 400 for bad order, from, to and cursor values", async () => {
      for (const query of ["order=newest", "from=yesterday", "to=2024-13-45T00:00:00Z", "from=2024-02-01&to=2024-01-01", "cursor=bad"]) {
        const stream = await getText(`${sb.url}/api/dataset/v1/sentinel-2-l2a-sample/paginate/?${query}`, AUTH);
        assert.equal(stream.status, 400, query);
        assert.ok(JSON.parse(stream.text).detail, query);
      }
      const r = await getText(`${sb.url}/api/dataset/v1/sentinel-2-l2a-sample/stream/?order=sideways`, AUTH);
      assert.equal(r.status, 400);
    });

    it("paginates in FeatureCollections of 50 with self/next/prev links that walk the same Items as the stream", async () => {
      const streamed = lines((await getText(`${sb.url}/api/dataset/v1/landsat-c2-l2-sample/stream/?order=old`, AUTH)).text).map((l) => JSON.parse(l).id);
      let href: string | undefined = `${sb.url}/api/dataset/v1/landsat-c2-l2-sample/paginate/?order=old`;
      const ids: string[] = [];
      const pages: { links: { rel: string; href: string }[]; features: { id: string }[] }[] = [];
      while (href) {
        const r = await getText(href, AUTH);
        assert.equal(r.status, 200);
        assert.equal(r.headers["content-type"], "application/json");
        const page = JSON.parse(r.text);
        assert.equal(page.type, "FeatureCollection");
        assert.ok(page.features.length <= 50);
        pages.push(page);
        ids.push(...page.features.map((f: { id: string }) => f.id));
        const self = page.links.find((l: { rel: string }) => l.rel === "self");
        assert.equal(self.href, href);
        const next = page.links.find((l: { rel: string }) => l.rel === "next");
        if (next) assert.ok(next.href.startsWith(`${sb.url}/api/dataset/v1/landsat-c2-l2-sample/paginate/?`));
        href = next?.href;
      }
      assert.deepEqual(ids, streamed);
      assert.equal(pages.length, 4);
      assert.ok(!pages[0].links.some((l) => l.rel === "prev"), "no prev on the first page");
      assert.ok(!pages[3].links.some((l) => l.rel === "next"), "no next on the last page");
      const prev = pages[2].links.find((l) => l.rel === "prev") as { href: string };
      const back = JSON.parse((await getText(prev.href, AUTH)).text);
      assert.deepEqual(back.features.map((f: { id: string }) => f.id), pages[1].features.map((f) => f.id));
    });

    it("streams Items added with addDataset, STAC 1.1.0 included, deterministically", async () => {
      sb.addDataset("tiny", { count: 3, stacVersion: "1.1.0", start: "2025-05-01T10:00:00Z", stepMs: 1000 });
      const a = lines((await getText(`${sb.url}/api/dataset/v1/tiny/stream/?order=old`, AUTH)).text).map((l) => JSON.parse(l));
      assert.equal(a.length, 3);
      assert.equal(a[0].stac_version, "1.1.0");
      assert.equal(a[2].properties.datetime, "2025-05-01T10:00:02.000000Z");
      const again = await startSandbox({ port: 0, seed: 1 });
      try {
        again.addDataset("tiny", { count: 3, stacVersion: "1.1.0", start: "2025-05-01T10:00:00Z", stepMs: 1000 });
        const b = lines((await getText(`${again.url}/api/dataset/v1/tiny/stream/?order=old`, AUTH)).text).map((l) => JSON.parse(l));
        const strip = (items: unknown[]) => JSON.stringify(items).split(sb.url).join("").split(again.url).join("");
        assert.equal(strip(a), strip(b).split(again.url).join(""), "same seed, same Items");
      } finally {
        await again.close();
      }
    });
  });

  describe("item", () => {
    it("returns one STAC Item with self and collection links and Sentinel-2 L2A assets", async () => {
      const r = await getText(`${sb.url}/api/item/v1/sentinel-2-l2a-example`, AUTH);
      assert.equal(r.status, 200);
      const item = JSON.parse(r.text);
      assert.equal(item.type, "Feature");
      assert.equal(item.stac_version, "1.0.0");
      assert.ok(item.links.some((l: { rel: string }) => l.rel === "self"));
      assert.ok(item.links.some((l: { rel: string }) => l.rel === "collection"));
      assert.equal(item.collection, "sentinel-2-l2a");
      assert.match(item.properties.datetime, /Z$/);
      assert.deepEqual(Object.keys(item.assets), ["B02_10m", "B03_10m", "B04_10m", "visual", "thumbnail", "product_metadata"]);
      assert.equal(item.assets.B02_10m.type, "image/jp2");
      assert.equal(item.bbox.length, 4);
    });
  });

  describe("assets", () => {
    it("serve bodies whose size and sha2-256/sha3-256 multihash match the Item, with ETag and Accept-Ranges", async () => {
      const item = JSON.parse((await getText(`${sb.url}/api/item/v1/sentinel-2-l2a-example`, AUTH)).text);
      const seen = new Set<string>();
      for (const [key, asset] of Object.entries(item.assets) as [string, { href: string; "file:size": number; "file:checksum": string; type: string }][]) {
        assert.ok(asset.href.startsWith(sb.url), key);
        const r = await getBytes(asset.href, AUTH);
        assert.equal(r.status, 200, key);
        assert.equal(r.body.length, asset["file:size"], key);
        assert.equal(Number(r.headers["content-length"]), asset["file:size"], key);
        assert.equal(r.headers["accept-ranges"], "bytes");
        assert.equal(r.headers["content-type"], asset.type);
        assert.match(String(r.headers.etag), /^"[0-9a-f]+"$/);
        assert.match(asset["file:checksum"], /^(1220|1620)[0-9a-f]{64}$/);
        assert.equal(multihash(r.body, asset["file:checksum"]), asset["file:checksum"], key);
        seen.add(asset["file:checksum"].slice(0, 4));
      }
      assert.deepEqual([...seen].sort(), ["1220", "1620"]);
    });

    it("answer Range requests with 206, suffix ranges, If-Range, and 416 beyond the end", async () => {
      const item = JSON.parse((await getText(`${sb.url}/api/item/v1/sentinel-2-l2a-example`, AUTH)).text);
      const href = item.assets.B03_10m.href;
      const whole = await getBytes(href, AUTH);
      const part = await getBytes(href, { ...AUTH, range: "bytes=1000-2999" });
      assert.equal(part.status, 206);
      assert.equal(part.headers["content-range"], `bytes 1000-2999/${whole.body.length}`);
      assert.deepEqual(part.body, whole.body.subarray(1000, 3000));
      const open = await getBytes(href, { ...AUTH, range: "bytes=65000-" });
      assert.deepEqual(open.body, whole.body.subarray(65000));
      const suffix = await getBytes(href, { ...AUTH, range: "bytes=-17" });
      assert.deepEqual(suffix.body, whole.body.subarray(whole.body.length - 17));
      const odd = await getBytes(href, { ...AUTH, range: "bytes=7-7" });
      assert.deepEqual(odd.body, whole.body.subarray(7, 8));
      const stale = await getBytes(href, { ...AUTH, range: "bytes=0-9", "if-range": '"other"' });
      assert.equal(stale.status, 200);
      assert.equal(stale.body.length, whole.body.length);
      const fresh = await getBytes(href, { ...AUTH, range: "bytes=0-9", "if-range": String(whole.headers.etag) });
      assert.equal(fresh.status, 206);
      const beyond = await getBytes(href, { ...AUTH, range: `bytes=${whole.body.length}-` });
      assert.equal(beyond.status, 416);
      assert.equal(beyond.headers["content-range"], `bytes */${whole.body.length}`);
    });
  });

  describe("asset bytes", () => {
    it("any of 50 random ranges of a 1 MiB body equals the same slice of the whole body", async () => {
      sb.addDataset("mib", { count: 1, assetSizes: { B04_10m: 1024 * 1024 } });
      const item = await sb.datasetItem("mib", 0);
      const href = (item.assets as Record<string, { href: string }>).B04_10m.href;
      const whole = (await getBytes(href, AUTH)).body;
      assert.equal(whole.length, 1024 * 1024);
      let seed = 99;
      const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
      for (let i = 0; i < 50; i++) {
        const start = Math.floor(random() * whole.length);
        const end = Math.min(whole.length - 1, start + Math.floor(random() * 200_000));
        const part = await getBytes(href, { ...AUTH, range: `bytes=${start}-${end}` });
        assert.equal(part.status, 206);
        assert.ok(part.body.equals(whole.subarray(start, end + 1)), `bytes=${start}-${end}`);
      }
    });
  });

  describe("subscription", () => {
    it("is real Server-Sent Events: headers, retry advice, keep-alive comments, id + data per Item", async () => {
      const reader = await SseReader.open(`${sb.url}/subscription/v1/?package=sentinel-2-l2a-live`, AUTH);
      try {
        assert.equal(reader.statusCode, 200);
        assert.equal(reader.headers["content-type"], "text/event-stream; charset=utf-8");
        await waitUntil(() => sb.liveSubscriberCount("sentinel-2-l2a-live") === 1, "subscriber registered");
        const first = sb.publishLive("sentinel-2-l2a-live");
        sb.publishLive("sentinel-2-l2a-live");
        await waitUntil(() => reader.events.length === 2, "two events");
        assert.equal(reader.retry, 1500);
        assert.equal(reader.events[0].id, String(first));
        assert.equal(Number(reader.events[1].id), first + 1);
        const item = JSON.parse(reader.events[0].data);
        assert.equal(item.type, "Feature");
        assert.equal(item.collection, "sentinel-2-l2a");
        await waitUntil(() => reader.comments.includes("keep-alive"), "keep-alive comment");
      } finally {
        reader.close();
      }
      await waitUntil(() => sb.liveSubscriberCount("sentinel-2-l2a-live") === 0, "subscriber removed after close");
    });

    it("replays what the client missed after Last-Event-ID", async () => {
      const pkg = "replay-test";
      const a = await SseReader.open(`${sb.url}/subscription/v1/?package=${pkg}`, AUTH);
      await waitUntil(() => sb.liveSubscriberCount(pkg) === 1, "subscriber");
      for (let i = 0; i < 3; i++) sb.publishLive(pkg, { type: "Feature", id: `r${i}` });
      await waitUntil(() => a.events.length === 3, "three events");
      a.close();
      await waitUntil(() => sb.liveSubscriberCount(pkg) === 0, "closed");
      for (let i = 3; i < 6; i++) sb.publishLive(pkg, { type: "Feature", id: `r${i}` });
      const b = await SseReader.open(`${sb.url}/subscription/v1/?package=${pkg}`, { ...AUTH, "last-event-id": a.events[2].id as string });
      try {
        await waitUntil(() => b.events.length === 3, "three replayed events");
        assert.deepEqual(b.events.map((e) => JSON.parse(e.data).id), ["r3", "r4", "r5"]);
        assert.deepEqual(b.events.map((e) => e.id), ["4", "5", "6"]);
      } finally {
        b.close();
      }
    });
  });

  describe("publish", () => {
    const item = (id: string) => ({ type: "Feature", stac_version: "1.0.0", id, geometry: null, properties: { datetime: "2024-05-01T00:00:00Z" }, links: [], assets: {} });

    it("accepts header auth, stores messages with documented defaults, and sends heartbeats", async () => {
      const before = sb.published.length;
      const ws = await openWs(sb.publishUrl, AUTH);
      let pings = 0;
      ws.on("ping", () => pings++);
      ws.send(JSON.stringify({ active_parent: "cool-sat", data: item("h1") }));
      ws.send(JSON.stringify({ active_parent: "cool-sat", provider: "astro_dynamic", subscribable: false, data: item("h2") }));
      await sb.waitForPublished(before + 2);
      const [a, b] = sb.published.slice(before);
      assert.deepEqual([a.activeParent, a.provider, a.subscribable, a.authMode, a.data.id], ["cool-sat", "sandbox-org", true, "header", "h1"]);
      assert.deepEqual([b.provider, b.subscribable], ["astro_dynamic", false]);
      await waitUntil(() => pings >= 2, "two heartbeats at 100 ms");
      ws.close();
    });

    it("accepts message auth and closes with a clear reason on anything else first", async () => {
      const before = sb.published.length;
      const ok = await openWs(sb.publishUrl);
      ok.send(JSON.stringify({ Authorization: `Token ${TOKEN}` }));
      ok.send(JSON.stringify({ active_parent: "cool-sat", data: item("m1") }));
      await sb.waitForPublished(before + 1);
      assert.equal(sb.published[before].authMode, "message");
      ok.close();

      const bad = await openWs(sb.publishUrl);
      const badClosed = closed(bad);
      bad.send(JSON.stringify({ active_parent: "cool-sat", data: item("m2") }));
      assert.deepEqual(await badClosed, { code: 1008, reason: PUBLISH_CLOSE.authRequired });

      const wrong = await openWs(sb.publishUrl);
      const wrongClosed = closed(wrong);
      wrong.send(JSON.stringify({ Authorization: "Token nope" }));
      assert.deepEqual(await wrongClosed, { code: 1008, reason: PUBLISH_CLOSE.authInvalid });
      assert.equal(sb.published.length, before + 1);
    });

    it("answers 403 without the trailing slash and for a wrong header token, 404 elsewhere", async () => {
      await assert.rejects(openWs(sb.publishUrl.replace(/\/$/, ""), AUTH), (e: { statusCode: number }) => e.statusCode === 403);
      await assert.rejects(openWs(sb.publishUrl, { authorization: "Token nope" }), (e: { statusCode: number }) => e.statusCode === 403);
      await assert.rejects(openWs(sb.publishUrl.replace("/publish/v1/", "/publish/v2/"), AUTH), (e: { statusCode: number }) => e.statusCode === 404);
    });

    it("logs and counts malformed messages without closing the socket", async () => {
      const malformedBefore = sb.stats.malformedPublish;
      const before = sb.published.length;
      const ws = await openWs(sb.publishUrl, AUTH);
      ws.send("not json");
      ws.send(JSON.stringify([1, 2]));
      ws.send(JSON.stringify({ data: item("x") }));
      ws.send(JSON.stringify({ active_parent: "cool-sat" }));
      ws.send(JSON.stringify({ active_parent: "cool-sat", data: item("x"), subscribable: "yes" }));
      ws.send(JSON.stringify({ active_parent: "cool-sat", data: { type: "Nope", id: "x" } }));
      ws.send(JSON.stringify({ active_parent: "cool-sat", data: item("after-malformed") }));
      await sb.waitForPublished(before + 1);
      assert.equal(sb.stats.malformedPublish - malformedBefore, 6);
      assert.equal(sb.published[before].data.id, "after-malformed");
      assert.equal(ws.readyState, ws.OPEN);
      ws.close();
    });

    it("routes subscribable Items to subscribers of the active_parent package, and not the others", async () => {
      const reader = await SseReader.open(`${sb.url}/subscription/v1/?package=cool-sat`, AUTH);
      const live = await SseReader.open(`${sb.url}/subscription/v1/?package=sentinel-2-l2a-live`, AUTH);
      try {
        await waitUntil(() => sb.liveSubscriberCount("cool-sat") === 1 && sb.liveSubscriberCount("sentinel-2-l2a-live") === 1, "subscribers");
        const ws = await openWs(sb.publishUrl, AUTH);
        ws.send(JSON.stringify({ active_parent: "cool-sat", subscribable: false, data: item("quiet") }));
        ws.send(JSON.stringify({ active_parent: "cool-sat", data: { ...item("loud"), type: "Collection" } }));
        ws.send(JSON.stringify({ active_parent: "cool-sat", data: item("loud") }));
        ws.send(JSON.stringify({ active_parent: "sentinel-2-l2a", data: item("s2") }));
        await waitUntil(() => reader.events.length === 1 && live.events.length === 1, "routed events");
        assert.equal(JSON.parse(reader.events[0].data).id, "loud");
        assert.equal(JSON.parse(live.events[0].data).id, "s2");
        ws.close();
        // Published Items are also a dataset package under their active_parent.
        const stream = await getText(`${sb.url}/api/dataset/v1/cool-sat/stream/`, AUTH);
        assert.ok(lines(stream.text).map((l) => JSON.parse(l).id).includes("quiet"));
      } finally {
        reader.close();
        live.close();
      }
    });
  });
});
