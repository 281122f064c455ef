import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { request } from "undici";
import { startSandbox, PUBLISH_CLOSE, type Sandbox } from "../../src/sandbox";
import { closed, getBytes, getText, openWs, SseReader, waitUntil } from "./clients";

const AUTH = { authorization: "Token sandbox-token" };

describe("sandbox extras", function () {
  let sb: Sandbox;
  before(async () => {
    sb = await startSandbox({ port: 0, authTimeoutMs: 200, keepAliveMs: 0 });
  });
  after(async () => {
    await sb.close();
  });

  it("answers HEAD on assets with headers only, 304 on a matching If-None-Match, 405 for other methods", async () => {
    const item = JSON.parse((await getText(`${sb.url}/api/item/v1/landsat-c2-l2-example`, AUTH)).text);
    const href = item.assets.red.href;
    const head = await request(href, { method: "HEAD", headers: AUTH });
    await head.body.dump();
    assert.equal(head.statusCode, 200);
    assert.equal(Number(head.headers["content-length"]), item.assets.red["file:size"]);
    assert.equal(head.headers["content-type"], "image/tiff; application=geotiff; profile=cloud-optimized");
    const cached = await getBytes(href, { ...AUTH, "if-none-match": String(head.headers.etag) });
    assert.equal(cached.status, 304);
    assert.equal(cached.body.length, 0);
    const post = await request(`${sb.url}/api/item/v1/landsat-c2-l2-example`, { method: "POST", headers: AUTH, body: "{}" });
    await post.body.dump();
    assert.equal(post.statusCode, 405);
  });

  it("serves a large asset streamed, with a checksum computed lazily in the background", async () => {
    sb.addDataset("big-assets", { count: 2, assetSizes: { B02_10m: 24 * 1024 * 1024 } });
    const line = (await getText(`${sb.url}/api/dataset/v1/big-assets/stream/?order=old`, AUTH)).text.split("\n")[0];
    const asset = JSON.parse(line).assets.B02_10m;
    assert.equal(asset["file:size"], 24 * 1024 * 1024);
    const response = await request(asset.href, { headers: AUTH });
    const hash = createHash("sha3-256");
    let size = 0;
    for await (const chunk of response.body) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    assert.equal(size, asset["file:size"]);
    assert.equal(`1620${hash.digest("hex")}`, asset["file:checksum"]);
    const tail = await getBytes(asset.href, { ...AUTH, range: `bytes=${size - 1000}-` });
    assert.equal(tail.status, 206);
    assert.equal(tail.body.length, 1000);
  });

  it("addAsset, addItem and the STAC link routes serve what they say", async () => {
    const added = sb.addAsset("docs/readme.txt", "hello sandbox", "text/plain");
    assert.equal(added.checksum, `1220${createHash("sha256").update("hello sandbox").digest("hex")}`);
    const body = await getText(added.href, AUTH);
    assert.equal(body.text, "hello sandbox");
    assert.equal(body.headers["content-type"], "text/plain");
    const generated = sb.addAsset("blob.bin", 100_000);
    assert.equal((await getBytes(generated.href, AUTH)).body.length, 100_000);

    sb.addItem("my-item", { type: "Feature", id: "mine" });
    assert.equal(JSON.parse((await getText(`${sb.url}/api/item/v1/my-item`, AUTH)).text).id, "mine");

    const item = await sb.datasetItem("sentinel-2-l2a-sample", 7);
    const links = item.links as { rel: string; href: string }[];
    const self = JSON.parse((await getText(links.find((l) => l.rel === "self")!.href, AUTH)).text);
    assert.deepEqual(self, item);
    const collection = JSON.parse((await getText(links.find((l) => l.rel === "collection")!.href, AUTH)).text);
    assert.equal(collection.type, "Collection");
    assert.equal(collection.id, "sentinel-2-l2a");
  });

  it("closes a message-auth socket that sends nothing within the deadline", async () => {
    const ws = await openWs(sb.publishUrl);
    assert.deepEqual(await closed(ws), { code: 1008, reason: PUBLISH_CLOSE.authTimeout });
  });

  it("drops a subscriber that does not read rather than buffering without bound", async () => {
    const small = await startSandbox({ port: 0, maxQueuedEvents: 20, keepAliveMs: 0 });
    try {
      const response = await request(`${small.url}/subscription/v1/?package=slow`, { headers: AUTH });
      await waitUntil(() => small.liveSubscriberCount("slow") === 1, "subscriber");
      // Never read the body: the socket buffers fill up, then the queue, then the server drops it.
      const item = await small.datasetItem("sentinel-2-l2a-sample", 0);
      for (let i = 0; i < 3000 && small.liveSubscriberCount("slow") > 0; i++) {
        small.publishLive("slow", { ...item, id: `slow-${i}` });
        if (i % 100 === 0) await new Promise((r) => setImmediate(r));
      }
      await waitUntil(() => small.liveSubscriberCount("slow") === 0, "slow subscriber dropped");
      response.body.destroy();
    } finally {
      await small.close();
    }
  });

  it("a dataset stream respects backpressure: a client that stops reading stops the generator", async () => {
    const before = sb.stats.itemsStreamed;
    const response = await request(`${sb.url}/api/dataset/v1/sentinel-2-l2a-1m/stream/`, { headers: AUTH });
    const iterator = response.body[Symbol.asyncIterator]();
    await iterator.next();
    // Stop reading: socket buffers and the stream's high-water marks fill, then the server waits. Wait
    // until two readings 200 ms apart agree (a loaded machine may take longer to fill the buffers).
    let last = -1;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const now = sb.stats.itemsStreamed - before;
      if (now === last || Date.now() > deadline) break;
      last = now;
      await new Promise((r) => setTimeout(r, 200));
    }
    const paused = sb.stats.itemsStreamed - before;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sb.stats.itemsStreamed - before, paused, "no progress while the client does not read");
    assert.ok(paused > 0 && paused < 50_000, `${paused} Items written before backpressure held (of 1,000,000)`);
    response.body.destroy();
  });

  it("percent-encoded package names work in paths and queries", async () => {
    sb.addDataset("my pkg/ü", { count: 2 });
    const r = await getText(`${sb.url}/api/dataset/v1/${encodeURIComponent("my pkg/ü")}/stream/`, AUTH);
    assert.equal(r.status, 200);
    const item = JSON.parse(r.text.split("\n")[0]);
    const asset = await getBytes(item.assets.thumbnail.href, AUTH);
    assert.equal(asset.status, 200);
    const reader = await SseReader.open(`${sb.url}/subscription/v1/?package=${encodeURIComponent("my pkg/ü")}`, AUTH);
    await waitUntil(() => sb.liveSubscriberCount("my pkg/ü") === 1, "subscriber on an encoded name");
    reader.close();
  });

  it("survives hostile input: bad percent-encoding, odd ranges, binary and oversized publish frames", async () => {
    for (const path of ["/api/item/v1/%E0%A4%A", "/api/dataset/v1/%/stream/", "/assets/%ZZ/1/B02_10m/x", "/assets/sentinel-2-l2a-sample/99999999/B02_10m/x", "/assets/sentinel-2-l2a-sample/-1/B02_10m/x"]) {
      const r = await getText(sb.url + path, AUTH);
      assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status}`);
    }
    const item = JSON.parse((await getText(`${sb.url}/api/item/v1/sentinel-2-l2a-example`, AUTH)).text);
    for (const range of ["bytes=5-2", "bytes=abc", "bytes=0-1,5-6", "items=0-1"]) {
      const r = await getBytes(item.assets.B02_10m.href, { ...AUTH, range });
      assert.equal(r.status, 200, range);
      assert.equal(r.body.length, item.assets.B02_10m["file:size"], range);
    }
    const before = sb.stats.malformedPublish;
    const ws = await openWs(sb.publishUrl, AUTH);
    ws.send(Buffer.from([0, 1, 2, 3]));
    ws.send(JSON.stringify({ active_parent: "", data: {} }));
    ws.send("{".repeat(10_000));
    await waitUntil(() => sb.stats.malformedPublish === before + 3, "three malformed messages counted");
    assert.equal(ws.readyState, ws.OPEN);
    ws.close();
    assert.equal((await getText(`${sb.url}/api/item/v1/sentinel-2-l2a-example`, AUTH)).status, 200, "still serving");
  });

  it("strictPackages answers 404 for subscription packages nobody declared", async () => {
    const strict = await startSandbox({ port: 0, strictPackages: true });
    try {
      assert.equal((await getText(`${strict.url}/subscription/v1/?package=unknown`, AUTH)).status, 404);
      const live = await SseReader.open(`${strict.url}/subscription/v1/?package=sentinel-2-l2a-live`, AUTH);
      assert.equal(live.statusCode, 200);
      live.close();
    } finally {
      await strict.close();
    }
  });

  it("the live generator adds Items at the configured rate", async () => {
    const busy = await startSandbox({ port: 0, rate: 20 });
    try {
      const reader = await SseReader.open(`${busy.url}/subscription/v1/?package=landsat-c2-l2-live`, AUTH);
      await waitUntil(() => reader.events.length >= 5, "five live Items");
      const ids = reader.events.map((e) => Number(e.id));
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
      assert.equal(JSON.parse(reader.events[0].data).collection, "landsat-c2-l2");
      reader.close();
    } finally {
      await busy.close();
    }
  });

  it("close() ends every connection: SSE, publish sockets and stalled requests", async () => {
    const doomed = await startSandbox({ port: 0 });
    const reader = await SseReader.open(`${doomed.url}/subscription/v1/?package=x`, AUTH);
    const ws = await openWs(doomed.publishUrl, AUTH);
    const wsClosed = closed(ws);
    doomed.faults.set({ stall: true }, "item");
    const stalled = request(`${doomed.url}/api/item/v1/sentinel-2-l2a-example`, { headers: AUTH }).catch((e: Error) => e);
    await waitUntil(() => doomed.openSockets() >= 3, "three sockets");
    await doomed.close();
    await waitUntil(() => reader.ended, "SSE ended");
    await wsClosed;
    assert.ok((await stalled) instanceof Error);
    assert.equal(doomed.openSockets(), 0);
  });

  it("the CLI prints the URLs and the env line, serves, and stops cleanly on SIGTERM", async () => {
    const cli = join(__dirname, "..", "..", "src", "sandbox", "cli.js");
    const child = spawn(process.execPath, [cli, "--port", "0", "--rate", "10", "--token", "cli-token", "--quiet", "--faults", '{"item":{"failNext":{"count":1,"status":503,"retryAfter":3}}}'], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      await waitUntil(() => /Ctrl-C/.test(out), "CLI banner");
      const api = /API URL:\s+(\S+)/.exec(out)![1];
      assert.match(out, /Publish URL:\s+ws:\/\/127\.0\.0\.1:\d+\/publish\/v1\//);
      assert.match(out, /Token:\s+cli-token/);
      assert.match(out, new RegExp(`export DATASPHERE_API_URL=${api} DATASPHERE_PUBLISH_URL=ws://\\S+ DATASPHERE_TOKEN=cli-token`));
      const failed = await getText(`${api}/api/item/v1/sentinel-2-l2a-example`, { authorization: "Token cli-token" });
      assert.deepEqual([failed.status, failed.headers["retry-after"]], [503, "3"], "--faults applied");
      assert.equal((await getText(`${api}/api/item/v1/sentinel-2-l2a-example`, { authorization: "Token cli-token" })).status, 200);
      const reader = await SseReader.open(`${api}/subscription/v1/?package=sentinel-2-l2a-live`, { authorization: "Token cli-token" });
      await waitUntil(() => reader.events.length >= 2, "live Items from the CLI sandbox");
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
      await waitUntil(() => reader.ended, "stream closed by shutdown");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
