import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { ApiAuth, normalizeSearch, StacApiClient, type SearchPage } from "../../src/core/stac-search";
import { isDatasphereError } from "../../src/core/errors";
import { corpusRoot, requireCorpus } from "../helpers/corpus";

interface Route {
  status?: number;
  body: string;
}

/** Serves fixed documents by path + query; every request is recorded. Hosts in the documents are rewritten to this server. */
async function startServer(routes: (req: IncomingMessage, base: string) => Route | undefined): Promise<{ url: string; server: Server; requests: Array<{ method: string; url: string; body: string; headers: IncomingMessage["headers"] }> }> {
  const requests: Array<{ method: string; url: string; body: string; headers: IncomingMessage["headers"] }> = [];
  let base = "";
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      requests.push({ method: req.method ?? "", url: req.url ?? "", body, headers: req.headers });
      const route = routes(req, base);
      res.writeHead(route?.status ?? (route ? 200 : 404), { "content-type": "application/json" });
      res.end(route?.body ?? '{"code":"NotFound"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: base, server, requests };
}

const corpus = (file: string) => readFileSync(join(corpusRoot, "valid", file), "utf8");
const LANDING = (base: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type: "Catalog", id: "t", conformsTo: ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"], links: [{ rel: "search", href: `${base}/search`, method: "GET" }, { rel: "search", href: `${base}/search`, method: "POST" }], ...extra });

async function collect(api: StacApiClient, method: "GET" | "POST" = "GET"): Promise<SearchPage[]> {
  const plan = await api.plan({ params: normalizeSearch({ collections: "sentinel-2-l2a" }), method });
  const pages: SearchPage[] = [];
  for await (const page of api.pages(plan)) pages.push(page);
  return pages;
}

describe("core/stac-search reads real STAC API pages (../shared/stac-corpus)", function () {
  const closers: Server[] = [];
  afterEach(() => closers.splice(0).forEach((s) => s.close()));

  it("Terrascope: a 10-Item page with a GET next token link, then the empty page 2: 10 Items, next followed once", async function () {
    requireCorpus(this);
    const page1 = corpus("terrascope__search-page_10-items_with-next-token.json");
    const page2 = corpus("terrascope__search-page-2_empty.json");
    const srv = await startServer((req, base) => {
      if (req.url === "/") return { body: LANDING(base) };
      if (req.url?.startsWith("/search?token=")) return { body: page2 };
      if (req.url?.startsWith("/search")) return { body: page1.split("https://stac.terrascope.be").join(base) };
      return undefined;
    });
    closers.push(srv.server);
    const pages = await collect(new StacApiClient({ url: `${srv.url}/`, auth: new ApiAuth(srv.url, "none", "") }));
    const expected = (JSON.parse(page1).features as Array<{ id: string }>).map((f) => f.id);
    assert.equal(pages.length, 1);
    assert.deepEqual(pages[0].items.map((i) => i.id), expected);
    assert.equal(pages[0].numberMatched, 8001714, "the older context.matched is read as numberMatched");
    assert.ok(pages[0].next && pages[0].next.href.startsWith(`${srv.url}/search?token=MTcy`), "the next link is the page's own");
    const searches = srv.requests.filter((r) => r.url.startsWith("/search"));
    assert.equal(searches.length, 2);
    assert.equal(searches[1].url, new URL(pages[0].next!.href).pathname + new URL(pages[0].next!.href).search);
    assert.ok(pages[0].items.every((i) => i.type === "Feature" && typeof (i.assets as Record<string, unknown>).B04_10m === "object"));
  });

  it("CDSE: a one-Item page without next link ends the search", async function () {
    requireCorpus(this);
    const doc = corpus("cdse__search-page_S2C_MSIL2A_20260527T014651_T55WFR.json");
    const srv = await startServer((req, base) => (req.url === "/" ? { body: LANDING(base) } : req.url?.startsWith("/search") ? { body: doc } : undefined));
    closers.push(srv.server);
    const pages = await collect(new StacApiClient({ url: srv.url, auth: new ApiAuth(srv.url, "none", "") }), "POST");
    assert.equal(pages.length, 1);
    assert.equal(pages[0].items[0].id, (JSON.parse(doc).features[0] as { id: string }).id);
    assert.equal(pages[0].next, undefined);
  });

  it("Planetary Computer's legacy landing page: item-search v1.0.0-beta.1 accepted, /search (no method = GET); filter refused, POST refused", async function () {
    requireCorpus(this);
    const landing = corpus("planetary-computer__landing-page_legacy-1.0.0-beta.2.json");
    const srv = await startServer((req, base) => {
      if (req.url === "/api/stac/v1/") return { body: landing.split("https://planetarycomputer.microsoft.com").join(base) };
      if (req.url?.startsWith("/api/stac/v1/search")) return { body: '{"type":"FeatureCollection","features":[{"type":"Feature","id":"a"}],"links":[]}' };
      return undefined;
    });
    closers.push(srv.server);
    const api = new StacApiClient({ url: `${srv.url}/api/stac/v1/`, auth: new ApiAuth(srv.url, "none", "") });
    const pages = await collect(api);
    assert.deepEqual(pages.flatMap((p) => p.items.map((i) => i.id)), ["a"]);
    for (const [params, method, pattern] of [[{ filter: "a = 1" }, "GET", /does not support filter/], [{}, "POST", /does not support POST \/search .*set the method to GET/]] as const) {
      await assert.rejects(api.plan({ params: normalizeSearch(params), method }), (e: unknown) => isDatasphereError(e) && e.code === "UNSUPPORTED" && pattern.test(e.message));
    }
  });

  it("a landing page without conformsTo: /conformance is read; a repeated next link ends the search; a next link to another origin is refused", async () => {
    const other = await startServer(() => ({ body: '{"type":"FeatureCollection","features":[{"type":"Feature","id":"stolen"}]}' }));
    closers.push(other.server);
    let mode = "repeat";
    const srv = await startServer((req, base) => {
      if (req.url === "/") return { body: JSON.stringify({ type: "Catalog", links: [{ rel: "conformance", href: "/conf" }] }) };
      if (req.url === "/conf") return { body: JSON.stringify({ conformsTo: ["https://api.stacspec.org/v1.0.0/item-search"] }) };
      const next = mode === "repeat" ? `${base}/search?page=2` : `${other.url}/search?page=2`;
      return { body: JSON.stringify({ type: "FeatureCollection", features: [{ type: "Feature", id: req.url }], links: [{ rel: "next", href: next }] }) };
    });
    closers.push(srv.server);
    const api = new StacApiClient({ url: srv.url, auth: new ApiAuth(srv.url, "bearer", "tok-secret") });
    const pages = await collect(api);
    assert.deepEqual(pages.map((p) => p.items[0].id), ["/search?collections=sentinel-2-l2a", "/search?page=2"]);
    assert.equal(srv.requests.filter((r) => r.url === "/search?page=2").length, 1, "the repeated next link is not followed again");
    assert.ok(srv.requests.every((r) => r.headers.authorization === "Bearer tok-secret"));
    mode = "elsewhere";
    await assert.rejects(collect(api), (e: unknown) => isDatasphereError(e) && e.code === "BAD_REQUEST" && /not the configured API origin/.test(e.message));
    assert.equal(other.requests.length, 0, "nothing was sent to the other origin");
  });
});
