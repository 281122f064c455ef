import { strict as assert } from "node:assert";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { DatasphereError } from "../../src/core/errors";
import { Endpoints } from "../../src/core/endpoints";
import { Auth } from "../../src/core/auth";
import { planPull, readDataset, normalizeDateParam, parseLibraryUrl, type DatasetEvent, type PullSpec, type ResumeCursor } from "../../src/core/dataset";
import { interpretLine } from "../../src/core/dataset/stream-lines";
import { ResumeFilter, StreamPosition } from "../../src/core/dataset/cursor";
import { startDatasetTestServer, type DatasetTestServer } from "../helpers/dataset-test-server";
import { settledHeapUsed, watchRss } from "../helpers/heap";

const TOKEN = "test-token-123456";

interface Collected {
  items: Record<string, unknown>[];
  malformed: Extract<DatasetEvent, { kind: "malformed" }>[];
  cursor?: ResumeCursor;
  error?: DatasphereError;
  pages: Set<string>;
}

function setup(server: DatasetTestServer) {
  const endpoints = new Endpoints({ apiUrl: server.url, publishUrl: "ws://127.0.0.1:1/publish/v1/" });
  const auth = new Auth(endpoints, TOKEN);
  return { endpoints, options: { auth, isApiOrigin: (u: string) => endpoints.isApiOrigin(u), backoffInitialMs: 20, backoffMaxMs: 200, idleTimeoutMs: 5000 } };
}

async function pull(server: DatasetTestServer, spec: PullSpec, extra: Record<string, unknown> = {}): Promise<Collected> {
  const { endpoints, options } = setup(server);
  const plan = planPull(spec, endpoints);
  const out: Collected = { items: [], malformed: [], pages: new Set() };
  try {
    for await (const event of readDataset(plan, { ...options, ...extra })) {
      if (event.kind === "malformed") out.malformed.push(event);
      else
        event.items.forEach((item, i) => {
          out.items.push(item);
          if (event.page) out.pages.add(event.page.href);
          plan.tracker.delivered(event, i);
        });
    }
  } catch (error) {
    out.error = error as DatasphereError;
  }
  out.cursor = plan.tracker.cursor();
  return out;
}

const ids = (items: Record<string, unknown>[]) => items.map((i) => i.id);

describe("core/dataset readers", function () {
  let server: DatasetTestServer;
  beforeEach(async () => {
    server = await startDatasetTestServer({ count: 173, tieEvery: 4, token: TOKEN });
  });
  afterEach(() => server.close());

  it("stream and paginate give the same Items in the same order, for both orders and a range", async () => {
    for (const order of ["new", "old"] as const) {
      for (const range of [{}, { from: "2024-01-01T00:10:00Z", to: "2024-01-01T00:30:00Z" }]) {
        const stream = await pull(server, { mode: "stream", package: "test-pkg", order, ...range });
        const pages = await pull(server, { mode: "paginate", package: "test-pkg", order, ...range });
        const expected = server.select(order, (range as { from?: string }).from, (range as { to?: string }).to);
        assert.ok(expected.length > 0);
        assert.deepEqual(ids(stream.items), ids(expected), `stream ${order}`);
        assert.deepEqual(ids(pages.items), ids(expected), `pages ${order}`);
        assert.equal(stream.error, undefined);
      }
    }
    assert.ok(server.requests.every((r) => r.authorization === `Token ${TOKEN}`));
  });

  it("the stream reader accepts NDJSON and data: framing split at every byte, skips noise, reports malformed lines and goes on", async () => {
    server.faults.sseFraming = true;
    server.faults.noise = true;
    server.faults.chunkBytes = 7;
    const long = `{"broken": "${"x".repeat(400)}`;
    server.faults.malformedAfter = { index: 9, lines: ["data: {not json", "[1,2]", long] };
    const got = await pull(server, { mode: "stream", package: "test-pkg", order: "old" });
    assert.equal(got.error, undefined);
    assert.deepEqual(ids(got.items), ids(server.select("old")));
    assert.equal(got.malformed.length, 3);
    assert.equal(got.malformed[0].preview, "{not json");
    assert.match(got.malformed[0].reason, /invalid JSON/);
    assert.equal(got.malformed[1].reason, "not a JSON object");
    assert.equal(got.malformed[2].preview.length, 201, "first 200 characters and an ellipsis");
    // Line numbers are real: the 10 Items each take 2 lines with data: framing, plus noise lines.
    assert.ok(got.malformed[0].lineNumber > 20 && got.malformed[1].lineNumber === got.malformed[0].lineNumber + 1, JSON.stringify(got.malformed.map((m) => m.lineNumber)));
  });

  it("interpretLine: NDJSON, data:, comments and SSE fields", () => {
    assert.deepEqual(interpretLine('{"a":1}'), { kind: "item", item: { a: 1 } });
    assert.deepEqual(interpretLine('data:{"a":1}'), { kind: "item", item: { a: 1 } });
    assert.deepEqual(interpretLine('data: {"a":1}'), { kind: "item", item: { a: 1 } });
    for (const skip of ["", "   ", ": comment", "id: 5", "event: item", "retry: 100", "data:", "data:  "]) assert.equal(interpretLine(skip).kind, "skip", skip);
    assert.equal(interpretLine("nonsense").kind, "malformed");
  });

  it("a stream cut mid-way ends with an error and a cursor; resuming from it yields exactly the missing Items (ties included)", async () => {
    for (const order of ["old", "new"] as const) {
      const cut = order === "old" ? 62 : 63; // inside a group of 4 Items sharing a datetime
      server.faults.cutStreamAfter = cut;
      server.faults.cutStreamTimes = 99;
      const first = await pull(server, { mode: "stream", package: "test-pkg", order, to: order === "old" ? "2024-01-01T00:40:00Z" : undefined });
      assert.equal(first.error?.code, "NETWORK", String(first.error));
      assert.equal(first.items.length, cut);
      const cursor = first.cursor;
      assert.equal(cursor?.kind, "stream");
      if (cursor?.kind !== "stream") return;
      const lastDatetime = (first.items[cut - 1].properties as { datetime: string }).datetime;
      const ties = first.items.filter((i) => (i.properties as { datetime: string }).datetime === lastDatetime);
      assert.ok(ties.length > 1, "the cut falls inside a group of Items sharing a datetime");
      assert.deepEqual(cursor.skipIds, ties.map((i) => `test-pkg/${i.id}`), "ids at the last datetime");
      assert.equal(cursor.datetime, lastDatetime);
      server.faults.cutStreamAfter = undefined;
      const rest = await pull(server, { mode: "stream", resume: JSON.parse(JSON.stringify(cursor)) });
      assert.equal(rest.error, undefined);
      const expected = server.select(order, undefined, order === "old" ? "2024-01-01T00:40:00Z" : undefined);
      assert.deepEqual(ids([...first.items, ...rest.items]), ids(expected), order);
    }
  });

  it("pages: 429 with Retry-After is honoured, a page failing twice then succeeding is retried", async () => {
    server.faults.rateLimitPage = { page: 2, retryAfterSeconds: 1 };
    server.faults.failPage = { page: 3, times: 2 };
    const retries: number[] = [];
    const got = await pull(server, { mode: "paginate", package: "test-pkg", order: "old" }, { onRetry: (r: { retryInMs: number }) => retries.push(r.retryInMs) });
    assert.equal(got.error, undefined);
    assert.deepEqual(ids(got.items), ids(server.select("old")));
    const page2 = server.requests.filter((r) => /page=2(&|$)/.test(r.url));
    assert.equal(page2.length, 2);
    assert.ok(page2[1].at - page2[0].at >= 950, `waited ${page2[1].at - page2[0].at} ms for Retry-After: 1`);
    assert.equal(server.requests.filter((r) => /page=3(&|$)/.test(r.url)).length, 3);
    assert.equal(retries.length, 3);
    assert.equal(got.cursor, undefined, "nothing left to resume");
  });

  it("pages: a page that keeps failing fails the pull with a cursor on that page; a cut page body is retried", async () => {
    server.faults.failPage = { page: 2, times: 99 };
    const failed = await pull(server, { mode: "paginate", package: "test-pkg", order: "old" }, { retries: 2 });
    assert.equal(failed.error?.code, "SERVER");
    assert.equal(failed.items.length, 50);
    assert.equal(failed.cursor?.kind, "page");
    assert.match((failed.cursor as { href: string }).href, /page=2/);
    server.faults.failPage = undefined;
    server.faults.cutPage = { page: 3, times: 1 };
    const rest = await pull(server, { mode: "paginate", resume: failed.cursor });
    assert.equal(rest.error, undefined);
    assert.deepEqual(ids([...failed.items, ...rest.items]), ids(server.select("old")));
  });

  it("pages: a cursor in the middle of a page resumes with the rest of that page", async () => {
    const spec: PullSpec = { mode: "paginate", package: "test-pkg", order: "new" };
    const { endpoints, options } = setup(server);
    const plan = planPull(spec, endpoints);
    const seen: Record<string, unknown>[] = [];
    for await (const event of readDataset(plan, options)) {
      if (event.kind !== "items") continue;
      for (let i = 0; i < event.items.length && seen.length < 77; i++) {
        seen.push(event.items[i]);
        plan.tracker.delivered(event, i);
      }
      if (seen.length >= 77) break;
    }
    const cursor = plan.tracker.cursor();
    assert.deepEqual({ ...cursor, href: undefined }, { kind: "page", package: "test-pkg", href: undefined, skip: 27 });
    const rest = await pull(server, { mode: "paginate", resume: cursor });
    assert.deepEqual(ids([...seen, ...rest.items]), ids(server.select("new")));
  });

  it("pages: stops on a repeated next link and on an empty page", async () => {
    server.faults.repeatNextAt = 2;
    const repeated = await pull(server, { mode: "paginate", package: "test-pkg", order: "old" });
    assert.equal(repeated.error, undefined);
    assert.equal(repeated.items.length, 100);
    server.faults.repeatNextAt = undefined;
    server.faults.emptyPageAt = 2;
    const before = server.requests.length;
    const empty = await pull(server, { mode: "paginate", package: "test-pkg", order: "old" });
    assert.equal(empty.error, undefined);
    assert.equal(empty.items.length, 50);
    assert.equal(server.requests.length - before, 2, "no request after the empty page");
  });

  it("pages: a next link on another origin fails the pull and nothing is sent there", async () => {
    let foreignHits = 0;
    const foreign = createServer((_req, res) => {
      foreignHits++;
      res.end("{}");
    });
    await new Promise<void>((r) => foreign.listen(0, "127.0.0.1", r));
    try {
      server.faults.foreignNextAt = { page: 1, origin: `http://127.0.0.1:${(foreign.address() as AddressInfo).port}` };
      const got = await pull(server, { mode: "paginate", package: "test-pkg", order: "old" });
      assert.equal(got.error?.code, "BAD_REQUEST");
      assert.match(got.error!.message, /not the configured API origin/);
      assert.equal(got.items.length, 0);
      assert.equal(foreignHits, 0);
    } finally {
      foreign.close();
    }
  });

  it("item: one Item, or NOT_FOUND 'unknown item package'; auth failures are not retried", async () => {
    const one = await pull(server, { mode: "item", package: "test-pkg" });
    assert.deepEqual(ids(one.items), [server.items[0].id]);
    const missing = await pull(server, { mode: "item", package: "nope" });
    assert.equal(missing.error?.code, "NOT_FOUND");
    assert.match(missing.error!.message, /unknown item package/);
    const { endpoints } = setup(server);
    const before = server.requests.length;
    const plan = planPull({ mode: "item", package: "test-pkg" }, endpoints);
    const wrong = new Auth(endpoints, "wrong-token");
    await assert.rejects(async () => {
      for await (const _ of readDataset(plan, { auth: wrong, isApiOrigin: (u) => endpoints.isApiOrigin(u) })) void _;
    }, (e: DatasphereError) => e.code === "AUTH" && !e.message.includes("wrong-token"));
    assert.equal(server.requests.length - before, 1);
  });

  it("abort stops a stream at once with ABORTED", async () => {
    const { endpoints, options } = setup(server);
    const controller = new AbortController();
    const plan = planPull({ mode: "stream", package: "test-pkg" }, endpoints);
    server.faults.chunkBytes = 64;
    let n = 0;
    await assert.rejects(async () => {
      for await (const event of readDataset(plan, { ...options, signal: controller.signal })) {
        if (event.kind === "items") n += event.items.length;
        if (n > 5) controller.abort();
      }
    }, (e: DatasphereError) => e.code === "ABORTED");
  });

  it("library URLs: dataset and item URLs are read; another origin is refused", () => {
    const { endpoints } = setup(server);
    const url = `${server.url}/api/dataset/v1/test-pkg/stream/?order=old&from=2024-01-01T00:10:00Z`;
    const plan = planPull({ mode: "paginate", url }, endpoints);
    assert.equal(plan.mode, "stream");
    assert.equal(plan.package, "test-pkg");
    assert.equal(plan.url, url);
    assert.equal(parseLibraryUrl(`${server.url}/api/item/v1/a%20b`, endpoints).package, "a b");
    assert.throws(() => planPull({ mode: "stream", url: "https://evil.example.com/api/dataset/v1/test-pkg/stream/" }, endpoints), /refused: https:\/\/evil.example.com/);
    assert.throws(() => parseLibraryUrl(`${server.url}/something/else`, endpoints), /not a Data Library/);
  });

  it("dates: RFC 3339 UTC out, plain dates unchanged, picker format as UTC, nonsense refused", () => {
    assert.equal(normalizeDateParam("2024-05-01", "from"), "2024-05-01");
    assert.equal(normalizeDateParam("2024-05-01T10:30:00.123456Z", "from"), "2024-05-01T10:30:00.123456Z");
    assert.equal(normalizeDateParam("2024-05-01T10:30", "from"), "2024-05-01T10:30:00.000Z");
    assert.equal(normalizeDateParam("2024-05-01 10:30:05", "from"), "2024-05-01T10:30:05.000Z");
    assert.equal(normalizeDateParam("2024-05-01T12:30:00+02:00", "to"), "2024-05-01T10:30:00.000Z");
    assert.equal(normalizeDateParam(Date.UTC(2024, 4, 1), "to"), "2024-05-01T00:00:00.000Z");
    assert.equal(normalizeDateParam(new Date(Date.UTC(2024, 4, 1)), "to"), "2024-05-01T00:00:00.000Z");
    assert.equal(normalizeDateParam("", "to"), undefined);
    assert.throws(() => normalizeDateParam("yesterday", "from"), /from: "yesterday" is not a date/);
    assert.throws(() => normalizeDateParam("2024-13-45T99:00:00+01:00", "to"), /to: .* not a valid date/);
  });

  it("a redirect to another origin is not followed (the token stays on the API origin) and is not retried", async () => {
    let foreignHits = 0;
    const foreign = createServer((_req, res) => {
      foreignHits++;
      res.end("{}");
    });
    await new Promise<void>((r) => foreign.listen(0, "127.0.0.1", r));
    let apiHits = 0;
    const api = createServer((_req, res) => {
      apiHits++;
      res.writeHead(302, { location: `http://127.0.0.1:${(foreign.address() as AddressInfo).port}/api/item/v1/x` });
      res.end();
    });
    await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
    try {
      const endpoints = new Endpoints({ apiUrl: `http://127.0.0.1:${(api.address() as AddressInfo).port}`, publishUrl: "ws://127.0.0.1:1/publish/v1/" });
      const plan = planPull({ mode: "item", package: "x" }, endpoints);
      await assert.rejects(async () => {
        for await (const _ of readDataset(plan, { auth: new Auth(endpoints, TOKEN), isApiOrigin: (u) => endpoints.isApiOrigin(u), backoffInitialMs: 10 })) void _;
      }, (e: DatasphereError) => e.code === "UNSUPPORTED" && /redirect/.test(e.message) && /not the configured origin/.test(e.message));
      assert.equal(apiHits, 1);
      assert.equal(foreignHits, 0);
    } finally {
      api.close();
      foreign.close();
    }
  });
});

describe("core/dataset limits: body size and resume cursor memory", function () {
  this.timeout(120_000);

  /** A server answering every request with one endless-looking page: `total` bytes, generated while sent. */
  async function startHugePageServer(total: number, declareLength: boolean) {
    let requests = 0;
    let sent = 0;
    const server = createServer((req, res) => {
      requests++;
      res.writeHead(200, { "content-type": "application/json", ...(declareLength ? { "content-length": String(total) } : {}) });
      const feature = `{"type":"Feature","stac_version":"1.0.0","id":"x","geometry":null,"properties":{"datetime":"2024-01-01T00:00:00Z"},"links":[],"assets":{}},`;
      const chunk = Buffer.from(feature.repeat(Math.ceil(65536 / feature.length)));
      const head = Buffer.from(`{"type":"FeatureCollection","features":[`);
      let closed = false;
      req.socket.on("close", () => (closed = true));
      const pump = () => {
        while (!closed && sent < total) {
          const piece = sent === 0 ? head : chunk.subarray(0, Math.min(chunk.length, total - sent));
          sent += piece.length;
          if (!res.write(piece)) return void res.once("drain", pump);
        }
        if (!closed) res.end();
      };
      pump();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      url,
      get requests() {
        return requests;
      },
      get sent() {
        return sent;
      },
      close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
    };
  }

  async function pullFrom(url: string, spec: PullSpec, extra: Record<string, unknown> = {}) {
    const endpoints = new Endpoints({ apiUrl: url, publishUrl: "ws://127.0.0.1:1/publish/v1/" });
    const plan = planPull(spec, endpoints);
    let items = 0;
    const options = { auth: new Auth(endpoints, TOKEN), isApiOrigin: (u: string) => endpoints.isApiOrigin(u), backoffInitialMs: 10, backoffMaxMs: 50, ...extra };
    try {
      for await (const event of readDataset(plan, options)) if (event.kind === "items") items += event.items.length;
    } catch (error) {
      return { items, error: error as DatasphereError };
    }
    return { items, error: undefined };
  }

  it("a 500 MB page fails with TOO_LARGE naming the limit and the option, in one request, without holding the page", async () => {
    const huge = await startHugePageServer(500 * 1024 * 1024, false);
    try {
      const rssBefore = process.memoryUsage.rss();
      const rss = watchRss();
      const got = await pullFrom(huge.url, { mode: "paginate", package: "test-pkg" });
      const peak = rss.stop();
      assert.equal(got.error?.code, "TOO_LARGE", String(got.error));
      assert.match(got.error!.message, /over the limit of 64 MiB \(option maxBodyBytes, "Max body size" on the node\)/);
      assert.equal(got.items, 0);
      assert.equal(huge.requests, 1, "TOO_LARGE is not retried");
      assert.ok(huge.sent < 200 * 1024 * 1024, `the transfer was cut early (server wrote ${huge.sent} bytes)`);
      if (process.env.SHOW_FIGURES) console.log(`rss growth ${Math.round((peak - rssBefore) / 1048576)} MB, server sent ${Math.round(huge.sent / 1048576)} MB`);
      assert.ok(peak - rssBefore < 300 * 1024 * 1024, `RSS grew by ${Math.round((peak - rssBefore) / 1048576)} MB`);
    } finally {
      await huge.close();
    }
  });

  it("an item whose Content-Length is over the limit is refused before its body is read; a page under the limit is read", async () => {
    const declared = await startHugePageServer(3 * 1024 * 1024, true);
    try {
      const refused = await pullFrom(declared.url, { mode: "item", package: "test-pkg" }, { maxBodyBytes: 1024 * 1024 });
      assert.equal(refused.error?.code, "TOO_LARGE");
      assert.match(refused.error!.message, /item package: the body is 3 MiB \(Content-Length\), over the limit of 1 MiB/);
      assert.equal(declared.requests, 1);
    } finally {
      await declared.close();
    }
    const small = await startDatasetTestServer({ count: 60, token: TOKEN });
    try {
      const limited = await pullFrom(small.url, { mode: "paginate", package: "test-pkg" }, { maxBodyBytes: 1000 });
      assert.equal(limited.error?.code, "TOO_LARGE");
      assert.equal(small.requests.length, 1);
      const fine = await pullFrom(small.url, { mode: "paginate", package: "test-pkg" }, { maxBodyBytes: 200_000 });
      assert.equal(fine.error, undefined);
      assert.equal(fine.items, 60);
    } finally {
      await small.close();
    }
  });

  /** A stream server of `count` Items that all share one datetime, generated while sent; a resume sends the ties back in reverse order. */
  async function startTiesServer(count: number, cutAfter: number) {
    let hits = 0;
    const item = (i: number) =>
      `{"type":"Feature","stac_version":"1.0.0","id":"tie-${i}","collection":"ties","geometry":null,"properties":{"datetime":"2024-01-01T00:00:00Z"},"links":[],"assets":{}}\n`;
    const server = createServer((_req, res) => {
      hits++;
      const first = hits === 1;
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      let i = 0;
      const pump = () => {
        while (i < count) {
          if (first && i === cutAfter) return void res.destroy();
          const index = first ? i : count - 1 - i;
          i++;
          if (!res.write(item(index))) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
  }

  it("300,000 Items with one datetime: the cursor stays small, and a cut stream resumes with exactly the missing Items", async () => {
    const total = 300_000;
    const cut = 200_000;
    const ties = await startTiesServer(total, cut);
    try {
      const endpoints = new Endpoints({ apiUrl: ties.url, publishUrl: "ws://127.0.0.1:1/publish/v1/" });
      const options = { auth: new Auth(endpoints, TOKEN), isApiOrigin: (u: string) => endpoints.isApiOrigin(u) };
      const heapBefore = settledHeapUsed();
      const plan = planPull({ mode: "stream", package: "ties", order: "old" }, endpoints);
      let firstCount = 0;
      let error: DatasphereError | undefined;
      try {
        for await (const event of readDataset(plan, options)) {
          if (event.kind !== "items") continue;
          event.items.forEach((_, i) => plan.tracker.delivered(event, i));
          firstCount += event.items.length;
        }
      } catch (e) {
        error = e as DatasphereError;
      }
      const retained = settledHeapUsed() - heapBefore;
      assert.equal(error?.code, "NETWORK", String(error));
      assert.ok(firstCount > cut - 1000 && firstCount <= cut, `${firstCount} Items before the cut`);
      if (process.env.SHOW_FIGURES) console.log(`cursor retains ${Math.round(retained / 1048576)} MB for ${firstCount} ties`);
      assert.ok(retained < 50 * 1024 * 1024, `the tracker retains ${Math.round(retained / 1048576)} MB for ${firstCount} ties`);
      const cursor = plan.tracker.cursor();
      assert.equal(cursor?.kind, "stream");
      if (cursor?.kind !== "stream") return;
      assert.deepEqual(cursor.skipIds, [], "past 1,000 ties the ids are kept as hashes");
      assert.equal(Buffer.from(cursor.skipHashes!, "base64").length, firstCount * 8);
      assert.equal(cursor.mayRepeat, undefined);
      const wire = JSON.stringify(cursor);
      assert.ok(wire.length < 4 * 1024 * 1024, `cursor JSON is ${wire.length} characters`);

      const resumed = planPull({ mode: "stream", resume: JSON.parse(wire) }, endpoints);
      const rest = new Set<string>();
      let restCount = 0;
      for await (const event of readDataset(resumed, options)) {
        if (event.kind !== "items") continue;
        for (const item of event.items) {
          rest.add(String(item.id));
          restCount++;
        }
      }
      assert.equal(restCount, total - firstCount, "no Item delivered twice");
      assert.equal(rest.size, total - firstCount);
      for (let i = firstCount; i < total; i++) assert.ok(rest.has(`tie-${i}`), `tie-${i} missing after resume`);
    } finally {
      await ties.close();
    }
  });

  it("past the hash cap the cursor says how many Items a resume may repeat, and none is lost", async () => {
    const limits = { maxIds: 3, maxHashes: 10 };
    const position = new StreamPosition({ package: "ties", order: "old" }, undefined, limits);
    const make = (i: number) => ({ id: `t${i}`, collection: "ties", properties: { datetime: "2024-01-01T00:00:00Z" } });
    for (let i = 0; i < 25; i++) position.delivered(make(i));
    const cursor = position.cursor()!;
    assert.deepEqual(cursor.skipIds, []);
    assert.equal(Buffer.from(cursor.skipHashes!, "base64").length, 80);
    assert.equal(cursor.mayRepeat, 15);
    const filter = new ResumeFilter(JSON.parse(JSON.stringify(cursor)));
    const kept = Array.from({ length: 30 }, (_, i) => make(29 - i)).filter((item) => filter.keep(item)).map((item) => item.id);
    assert.deepEqual(kept, Array.from({ length: 20 }, (_, i) => `t${29 - i}`), "the 10 hashed ones are dropped, the 15 unrecorded ones come again");
    assert.throws(() => planPull({ mode: "stream", resume: { ...cursor, skipHashes: "abc" } }, new Endpoints({ apiUrl: "http://127.0.0.1:1", publishUrl: "ws://127.0.0.1:1/p/" })), /skipHashes/);
  });
});
