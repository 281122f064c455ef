import { strict as assert } from "node:assert";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { ApiAuth, normalizeSearch, StacApiClient, type SearchPage, type SearchSpec, type RunOptions } from "../../src/core/stac-search";
import { isDatasphereError } from "../../src/core/errors";
import { FakeClock } from "../helpers/fake-clock";
import { startReplayStacApi } from "../helpers/replay-stac-api";
import { waitFor } from "../helpers/wait";

const S2 = "sentinel-2-l2a";
const S2_PKG = "sentinel-2-l2a-sample";

function client(sb: Sandbox, extra: Partial<ConstructorParameters<typeof StacApiClient>[0]> = {}): StacApiClient {
  return new StacApiClient({ url: sb.stacApi.url, auth: new ApiAuth(sb.stacApi.url, "none", ""), ...extra });
}

async function run(api: StacApiClient, spec: SearchSpec, options: RunOptions = {}): Promise<{ pages: SearchPage[]; ids: string[] }> {
  const plan = await api.plan(spec, options);
  const pages: SearchPage[] = [];
  for await (const page of api.pages(plan, options)) pages.push(page);
  return { pages, ids: pages.flatMap((p) => p.items.map((i) => String(i.id))) };
}

async function rejects(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isDatasphereError(error), String(error));
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

/** Moves the fake clock until the promise settles (retry waits happen on it). */
async function drive<T>(clock: FakeClock, promise: Promise<T>): Promise<T> {
  let settled = false;
  const watched = promise.finally(() => (settled = true));
  watched.catch(() => undefined);
  while (!settled) await clock.advance(250);
  return watched;
}

describe("core/stac-search against the sandbox's STAC API", function () {
  this.timeout(30_000);
  let sb: Sandbox;
  let expected: string[];
  before(async () => {
    sb = await startSandbox({ port: 0, rate: 0, heartbeatMs: 0, keepAliveMs: 0 });
    expected = [];
    for (let i = 0; i < 500; i++) expected.push(String((await sb.datasetItem(S2_PKG, i)).id));
  });
  after(() => sb.close());
  afterEach(() => {
    sb.faults.clear();
    sb.stacApi.settings.postNext = "merge";
    sb.stacApi.settings.withoutClasses = [];
    sb.stacApi.settings.requireHeader = undefined;
  });

  const last = () => sb.stacApi.searches[sb.stacApi.searches.length - 1];

  it("GET: each parameter reaches the server in the spec's query encoding", async () => {
    const api = client(sb);
    const params = normalizeSearch({
      collections: [S2, "landsat-c2-l2"], ids: "a,b", bbox: [-10, 40, 5.5, 52], datetime: "2024-01-01/..", limit: 7,
      sortby: "-datetime", fields: "id,properties.datetime,-links", filter: "eo:cloud_cover < 20 AND platform <> 'x'",
    });
    await run(api, { params, method: "GET" });
    const q = last().query;
    assert.equal(last().method, "GET");
    assert.equal(q.collections, `${S2},landsat-c2-l2`);
    assert.equal(q.ids, "a,b");
    assert.equal(q.bbox, "-10,40,5.5,52");
    assert.equal(q.datetime, "2024-01-01T00:00:00Z/..");
    assert.equal(q.limit, "7");
    assert.equal(q.sortby, "-datetime");
    assert.equal(q.fields, "id,properties.datetime,-links");
    assert.equal(q.filter, "eo:cloud_cover < 20 AND platform <> 'x'");
    assert.equal(q["filter-lang"], "cql2-text");
    assert.deepEqual(last().parsed.filter, { op: "and", args: [{ op: "<", args: [{ property: "eo:cloud_cover" }, 20] }, { op: "<>", args: [{ property: "platform" }, "x"] }] });

    const json = { op: "<=", args: [{ property: "eo:cloud_cover" }, 10] };
    await run(api, { params: normalizeSearch({ collections: S2, filter: json, intersects: { type: "Point", coordinates: [1, 2] }, datetime: "../2024-01-03T00:00:00Z", sortby: "+datetime" }), method: "GET" });
    assert.equal(last().query.filter, JSON.stringify(json));
    assert.equal(last().query["filter-lang"], "cql2-json");
    assert.equal(last().query.intersects, '{"type":"Point","coordinates":[1,2]}');
    assert.equal(last().query.datetime, "../2024-01-03T00:00:00Z");
    assert.equal(last().query.sortby, "+datetime", "the + is percent-encoded, so it is not read as a space");
  });

  it("POST: each parameter reaches the server as the spec's JSON body", async () => {
    const api = client(sb);
    const filter = { op: "=", args: [{ property: "platform" }, "sentinel-2a"] };
    await run(api, {
      params: normalizeSearch({ collections: S2, ids: ["x"], intersects: '{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}', datetime: "2024-01-02T10:00:00Z", limit: "3", sortby: [{ field: "datetime", direction: "desc" }], fields: { include: ["id"], exclude: ["assets"] }, filter }),
      method: "POST",
    });
    assert.equal(last().method, "POST");
    assert.deepEqual(last().body, {
      collections: [S2], ids: ["x"], intersects: { type: "Polygon", coordinates: [[[0, 0], [1, 0], [1, 1], [0, 0]]] }, datetime: "2024-01-02T10:00:00Z", limit: 3,
      sortby: [{ field: "datetime", direction: "desc" }], fields: { include: ["id"], exclude: ["assets"] }, filter, "filter-lang": "cql2-json",
    });
    await run(api, { params: normalizeSearch({ collections: S2, filter: "eo:cloud_cover >= 90", bbox: "0,0,1,1" }), method: "POST" });
    assert.deepEqual(last().body, { collections: [S2], bbox: [0, 0, 1, 1], filter: "eo:cloud_cover >= 90", "filter-lang": "cql2-text" });
  });

  it("the server applies what it got: datetime, sortby, CQL2 and fields select the right Items", async () => {
    const api = client(sb);
    const day = await run(api, { params: normalizeSearch({ collections: S2, datetime: "2024-01-02", limit: 100 }), method: "GET" });
    assert.deepEqual(day.ids, expected.slice(24, 48), "a plain date is that whole day (hourly Items 24..47)");
    const desc = await run(api, { params: normalizeSearch({ collections: S2, datetime: "2024-01-02", sortby: "-datetime", limit: 100 }), method: "POST" });
    assert.deepEqual(desc.ids, expected.slice(24, 48).reverse());
    const cloudy = await run(api, { params: normalizeSearch({ collections: S2, filter: "eo:cloud_cover > 80", limit: 100 }), method: "GET" });
    const all = await run(api, { params: normalizeSearch({ collections: S2, limit: 500, fields: { include: ["properties.eo:cloud_cover"] } }), method: "POST" });
    const expectCloudy = (await Promise.all(all.pages.flatMap((p) => p.items))).filter((i) => (i.properties as Record<string, number>)["eo:cloud_cover"] > 80).map((i) => String(i.id));
    assert.ok(expectCloudy.length > 10 && expectCloudy.length < 200, String(expectCloudy.length));
    assert.deepEqual(cloudy.ids, expectCloudy);
    assert.deepEqual(Object.keys(all.pages[0].items[0]).sort(), ["collection", "id", "properties", "type"]);
  });

  it("GET paging follows every next link exactly once, in order; numberMatched is reported", async () => {
    const api = client(sb);
    const before = sb.stacApi.pagesServed;
    const result = await run(api, { params: normalizeSearch({ collections: S2, limit: 50 }), method: "GET" });
    assert.deepEqual(result.ids, expected);
    assert.equal(result.pages.length, 10);
    assert.equal(sb.stacApi.pagesServed - before, 10);
    assert.equal(result.pages[0].numberMatched, 500);
    assert.deepEqual(result.pages.map((p) => p.request.method), new Array(10).fill("GET"));
  });

  for (const mode of ["merge", "body", "headers"] as const) {
    it(`POST paging with next links carrying ${mode === "merge" ? "body + merge: true" : mode === "body" ? "the whole body (merge: false)" : "headers"} follows every page exactly once`, async () => {
      sb.stacApi.settings.postNext = mode;
      const api = client(sb);
      const before = sb.stacApi.searches.length;
      const result = await run(api, { params: normalizeSearch({ collections: S2, limit: 50, filter: "eo:cloud_cover >= 0" }), method: "POST" });
      assert.deepEqual(result.ids, expected);
      const received = sb.stacApi.searches.slice(before);
      assert.equal(received.length, 10);
      assert.deepEqual(received.map((r) => r.parsed.position), [0, 50, 100, 150, 200, 250, 300, 350, 400, 450]);
      assert.ok(received.every((r) => r.method === "POST" && r.parsed.filter !== undefined && r.parsed.limit === 50 && r.parsed.collections?.[0] === S2), "every page is the same search");
      if (mode === "headers") assert.ok(received.slice(1).every((r) => typeof r.headers["x-page-token"] === "string"));
      else assert.ok(received.slice(1).every((r) => typeof (r.body as { token?: unknown }).token === "string"));
    });
  }

  it("reads the next page while the current one is consumed, never further ahead; a consumer that stops leaves it", async () => {
    const api = client(sb);
    const plan = await api.plan({ params: normalizeSearch({ collections: S2, limit: 50 }), method: "GET" });
    const before = sb.stacApi.pagesServed;
    const served: number[] = [];
    for await (const page of api.pages(plan)) {
      // The generator is suspended here: whatever it read so far is all it will have read for this page.
      await waitFor(() => sb.stacApi.pagesServed - before >= page.index + 2, `page ${page.index + 2} read ahead`);
      served.push(sb.stacApi.pagesServed - before);
      if (page.index === 5) break;
    }
    assert.deepEqual(served, [2, 3, 4, 5, 6, 7], "one page ahead of the one being consumed");
    const next = await run(api, { params: normalizeSearch({ collections: S2, limit: 500 }), method: "GET" });
    assert.equal(next.ids.length, 500, "the client goes on after a consumer stopped");
    assert.equal(sb.stacApi.pagesServed - before, 7 + 1, "nothing more read for the stopped search");
  });

  it("a page read ahead that fails fails the search only once the page before it was consumed; the cursor points at it", async () => {
    const items: unknown[] = [];
    for (let i = 0; i < 10; i++) items.push(await sb.datasetItem(S2_PKG, i));
    const replay = await startReplayStacApi((page, base) =>
      page === 2 ? '{"type": "FeatureCollection", "features": [' : JSON.stringify({ type: "FeatureCollection", features: items, links: [{ rel: "next", href: `${base}/search?page=${page + 1}` }] }),
    );
    try {
      const api = new StacApiClient({ url: replay.url, auth: new ApiAuth(replay.url, "none", "") });
      const plan = await api.plan({ params: {}, method: "GET" });
      let consumed = 0;
      const consume = async () => {
        for await (const page of api.pages(plan, { retries: 0 })) {
          for (let i = 0; i < page.items.length; i++) {
            plan.position.itemDelivered(page, page.offset + i);
            consumed++;
          }
        }
      };
      await rejects(consume(), "PROTOCOL", /search page 3: not JSON/);
      assert.equal(consumed, 20, "both pages before the failing one");
      const cursor = plan.position.cursor()!;
      assert.deepEqual({ href: cursor.request.href, skip: cursor.skip, delivered: cursor.delivered }, { href: `${replay.url}search?page=2`, skip: 0, delivered: 20 });
    } finally {
      replay.close();
    }
  });

  it("maxItems stops the search, also in the middle of a page", async () => {
    const before = sb.stacApi.pagesServed;
    const result = await run(client(sb), { params: normalizeSearch({ collections: S2, limit: 50 }), method: "GET", maxItems: 120 });
    assert.deepEqual(result.ids, expected.slice(0, 120));
    assert.equal(sb.stacApi.pagesServed - before, 3);
  });

  it("a cursor resumes exactly after the last delivered Item (GET and POST)", async () => {
    for (const method of ["GET", "POST"] as const) {
      const api = client(sb);
      const plan = await api.plan({ params: normalizeSearch({ collections: S2, limit: 30 }), method });
      const got: string[] = [];
      outer: for await (const page of api.pages(plan)) {
        for (let i = 0; i < page.items.length; i++) {
          got.push(String(page.items[i].id));
          plan.position.itemDelivered(page, page.offset + i);
          if (got.length === 73) break outer;
        }
      }
      const cursor = plan.position.cursor()!;
      assert.equal(cursor.skip, 13);
      const rest = await run(api, { params: {}, method, resume: JSON.parse(JSON.stringify(cursor)), maxItems: 100 });
      assert.deepEqual([...got, ...rest.ids], expected.slice(0, 100), `${method}: maxItems counts across the resume`);
    }
  });

  it("unsupported parameters are a clear UNSUPPORTED error before any search is sent", async () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ["https://api.stacspec.org/v1.0.0-rc.2/item-search#filter", { filter: "eo:cloud_cover < 5" }, /does not support filter .*remove the filter/],
      ["https://api.stacspec.org/v1.0.0/item-search#sort", { sortby: "-datetime" }, /does not support sortby/],
      ["https://api.stacspec.org/v1.0.0/item-search#fields", { fields: "id" }, /does not support fields/],
      ["http://www.opengis.net/spec/cql2/1.0/conf/cql2-text", { filter: "eo:cloud_cover < 5" }, /CQL2 text filters .*give the filter as CQL2 JSON/],
      ["https://api.stacspec.org/v1.0.0/item-search", {}, /does not support Item Search/],
    ];
    for (const [cls, input, pattern] of cases) {
      sb.stacApi.settings.withoutClasses = [cls];
      const before = sb.stacApi.searches.length;
      await rejects(run(client(sb), { params: normalizeSearch({ collections: S2, ...input }), method: "GET" }), "UNSUPPORTED", pattern);
      assert.equal(sb.stacApi.searches.length, before, `no search sent (${cls})`);
    }
  });

  it("the landing page and conformance are read once per client", async () => {
    const api = client(sb);
    const before = sb.stats.requests;
    await run(api, { params: normalizeSearch({ collections: S2, limit: 500 }), method: "GET" });
    await run(api, { params: normalizeSearch({ collections: S2, limit: 500 }), method: "POST" });
    assert.equal(sb.stats.requests - before, 3, "one landing page, two searches");
  });

  it("429 and 503 with Retry-After are waited out on the injected clock, then the page is read once", async () => {
    for (const status of [429, 503]) {
      const clock = new FakeClock();
      const api = client(sb, { clock });
      await api.capabilities();
      sb.faults.set({ failNext: { count: 2, status, retryAfter: 7 } }, "stac-search");
      const searching = run(api, { params: normalizeSearch({ collections: S2, limit: 100 }), method: "GET" });
      await waitFor(() => clock.pendingDelays().length === 1, "a retry wait");
      assert.ok(clock.pendingDelays()[0] >= 7000, `waits at least Retry-After: ${clock.pendingDelays()}`);
      const result = await drive(clock, searching);
      assert.deepEqual(result.ids, expected);
      assert.equal(sb.faults.get("stac-search").failNext, undefined, "both failures were answered");
    }
  });

  it("a Retry-After beyond the cap fails with RATE_LIMITED instead of waiting", async () => {
    const api = client(sb, { clock: new FakeClock() });
    sb.faults.set({ failNext: { count: 1, status: 429, retryAfter: 3600 } }, "stac-search");
    await rejects(run(api, { params: normalizeSearch({ collections: S2 }), method: "GET" }, { maxRetryAfterMs: 60_000 }), "RATE_LIMITED", /rate limited/);
  });

  it("cut pages are retried: every Item arrives exactly once", async () => {
    const clock = new FakeClock();
    const api = client(sb, { clock });
    await api.capabilities();
    sb.faults.set({ dropAfterBytes: 3000, times: 3 }, "stac-search");
    const injected = sb.faults.injected;
    const result = await drive(clock, run(api, { params: normalizeSearch({ collections: S2, limit: 50 }), method: "POST" }));
    assert.deepEqual(result.ids, expected);
    assert.equal(sb.faults.injected - injected, 3);
  });

  it("a page larger than the limit is a SIZE error, not unbounded memory", async () => {
    await rejects(run(client(sb, { maxDocumentBytes: 20_000 }), { params: normalizeSearch({ collections: S2, limit: 100 }), method: "GET" }), "SIZE", /larger than 20000 bytes/);
  });

  it("bearer and custom-header credentials go to the API origin only", async () => {
    sb.stacApi.settings.requireHeader = { name: "authorization", value: "Bearer s3cret-token" };
    const bearer = client(sb, { auth: new ApiAuth(sb.stacApi.url, "bearer", "s3cret-token") });
    assert.equal((await run(bearer, { params: normalizeSearch({ collections: S2, limit: 500 }), method: "GET" })).ids.length, 500);
    await rejects(run(client(sb), { params: {}, method: "GET" }), "AUTH", /HTTP 401/);
    sb.stacApi.settings.requireHeader = { name: "x-api-key", value: "k-123456" };
    const header = client(sb, { auth: new ApiAuth(sb.stacApi.url, "header", "k-123456", "X-Api-Key") });
    assert.equal((await run(header, { params: normalizeSearch({ collections: S2, limit: 500 }), method: "POST" })).ids.length, 500);
    const auth = new ApiAuth(sb.stacApi.url, "bearer", "s3cret-token");
    assert.deepEqual(auth.headersFor("http://127.0.0.1:1/stac-api/search"), {});
    assert.ok(!JSON.stringify({ auth }).includes("s3cret"));
  });

  it("bad input is a BAD_REQUEST naming the parameter, before anything is sent", () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ bbox: "1,2,3" }, /bbox: expected 4 or 6 numbers/],
      [{ bbox: [0, 50, 1, 40] }, /south <= north/],
      [{ bbox: [0, 0, 1, 1], intersects: { type: "Point", coordinates: [0, 0] } }, /bbox and intersects/],
      [{ intersects: { type: "Circle" } }, /intersects: expected a GeoJSON geometry/],
      [{ datetime: "../.." }, /both ends open/],
      [{ datetime: "2024-02-01/2024-01-01" }, /after end/],
      [{ datetime: "yesterday" }, /datetime: "yesterday" is not a date/],
      [{ limit: 0 }, /limit: expected a whole number/],
      [{ sortby: "-date time" }, /sortby: "date time" is not a field name/],
      [{ filter: "{not json" }, /cql2-json filter is not JSON/],
      [{ filter: { op: "=" }, filterLang: "cql2-text" }, /filter-lang says cql2-text/],
    ];
    for (const [input, pattern] of bad) {
      assert.throws(() => normalizeSearch(input), (e: unknown) => isDatasphereError(e) && e.code === "BAD_REQUEST" && pattern.test(e.message) && /no request was sent/.test(e.message), JSON.stringify(input));
    }
    assert.equal(normalizeSearch({ datetime: "2024-05-01T10:30" }).datetime, "2024-05-01T10:30:00.000Z");
    assert.equal(normalizeSearch({ datetime: ["2024-05-01", null] }).datetime, "2024-05-01T00:00:00Z/..");
    assert.deepEqual(normalizeSearch({ collections: " a , b ", ids: [], bbox: "" }), { collections: ["a", "b"] });
  });

  it("a server 400 is a BAD_REQUEST carrying the server's reason", async () => {
    await rejects(run(client(sb), { params: normalizeSearch({ collections: S2, sortby: "-eo:cloud_cover" }), method: "GET" }), "BAD_REQUEST", /sorts by datetime only/);
  });
});
