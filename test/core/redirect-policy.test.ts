// One redirect policy for every Data Sphere read (dataset item/pages/stream, STAC search; the
// subscription's own cases are in subscription-spec): redirects within the configured origin are
// followed with the credentials, at most 5; a redirect to another origin is refused before any byte
// goes there.
import { strict as assert } from "node:assert";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { get, type ReaderOptions } from "../../src/core/dataset/http";
import { openStreamBody } from "../../src/core/dataset/stream-body";
import { DatasphereError } from "../../src/core/errors";
import { redirectTarget } from "../../src/core/redirect";
import { fetchJson } from "../../src/core/stac-search/http";

const TOKEN = "redirect-token-0123456789";

interface Seen {
  method: string;
  url: string;
  authorization?: string;
  body: string;
}

interface TestServer {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<TestServer> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ method: req.method ?? "", url: req.url ?? "", authorization: req.headers.authorization, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function optionsFor(origin: string): ReaderOptions {
  return {
    auth: { headersFor: (url): Record<string, string> => (new URL(url).origin === origin ? { authorization: `Token ${TOKEN}` } : {}) },
    isApiOrigin: (url) => new URL(url).origin === origin,
    retries: 0,
    idleTimeoutMs: 5_000,
  };
}

function redirecting(status: number, to: (req: IncomingMessage) => string | undefined, answer: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const target = to(req);
    if (target === undefined) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(answer);
      return;
    }
    res.writeHead(status, { location: target });
    res.end();
  };
}

describe("redirect policy of the Data Sphere reads", () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function pair(status: number) {
    const foreign = await serve(redirecting(200, () => undefined, '{"from":"foreign"}'));
    const api = await serve(redirecting(status, (req) => (req.url === "/start" ? "/moved" : req.url === "/away" ? `${foreign.url.replace("127.0.0.1", "localhost")}/x` : undefined), '{"from":"api"}'));
    servers.push(foreign, api);
    return { api, foreign };
  }

  for (const status of [301, 302, 303, 307, 308]) {
    it(`dataset GET: a same-origin ${status} is followed with the token`, async () => {
      const { api } = await pair(status);
      const response = await get(`${api.url}/start`, optionsFor(api.url), "dataset item", "application/json");
      assert.deepEqual(await response.body.json(), { from: "api" });
      assert.deepEqual(
        api.seen.map((s) => [s.url, s.authorization]),
        [
          ["/start", `Token ${TOKEN}`],
          ["/moved", `Token ${TOKEN}`],
        ],
      );
    });
  }

  it("dataset GET: a redirect to another origin is refused (UNSUPPORTED, names the origin and the fix); nothing is sent there", async () => {
    const { api, foreign } = await pair(302);
    await assert.rejects(get(`${api.url}/away`, optionsFor(api.url), "dataset item", "application/json"), (e: DatasphereError) => {
      assert.equal(e.code, "UNSUPPORTED");
      assert.match(e.message, /^dataset item: the server redirected \(HTTP 302\) to http:\/\/localhost:\d+, which is not the configured origin/);
      assert.match(e.message, /set it as the URL in the config node/);
      assert.doesNotMatch(e.message, new RegExp(TOKEN));
      return true;
    });
    assert.equal(foreign.seen.length, 0);
  });

  it("dataset GET: more than 5 redirects fail with PROTOCOL after 6 requests", async () => {
    let n = 0;
    const loop = await serve((_req, res) => {
      res.writeHead(307, { location: `/r${++n}` });
      res.end();
    });
    servers.push(loop);
    await assert.rejects(get(`${loop.url}/r0`, optionsFor(loop.url), "dataset page", "application/json"), (e: DatasphereError) => e.code === "PROTOCOL" && /more than 5 redirects/.test(e.message));
    assert.equal(loop.seen.length, 6);
  });

  it("dataset stream: a same-origin redirect is followed with the token; another origin is refused", async () => {
    const { api, foreign } = await pair(302);
    const body = await openStreamBody(`${api.url}/start`, optionsFor(api.url), "dataset stream", "application/x-ndjson");
    const chunks: Buffer[] = [];
    for (let chunk = await body.next(); chunk; chunk = await body.next()) chunks.push(chunk);
    assert.equal(Buffer.concat(chunks).toString("utf8"), '{"from":"api"}');
    assert.deepEqual(
      api.seen.map((s) => s.authorization),
      [`Token ${TOKEN}`, `Token ${TOKEN}`],
    );
    await assert.rejects(openStreamBody(`${api.url}/away`, optionsFor(api.url), "dataset stream", "application/x-ndjson"), (e: DatasphereError) => e.code === "UNSUPPORTED" && /not the configured origin/.test(e.message));
    assert.equal(foreign.seen.length, 0);
  });

  it("STAC search GET: a same-origin redirect is followed with the credentials; another origin is refused", async () => {
    const { api, foreign } = await pair(301);
    assert.deepEqual(await fetchJson({ method: "GET", href: `${api.url}/start` }, optionsFor(api.url), "search"), { from: "api" });
    assert.deepEqual(
      api.seen.map((s) => [s.method, s.url, s.authorization]),
      [
        ["GET", "/start", `Token ${TOKEN}`],
        ["GET", "/moved", `Token ${TOKEN}`],
      ],
    );
    await assert.rejects(fetchJson({ method: "GET", href: `${api.url}/away` }, optionsFor(api.url), "search"), (e: DatasphereError) => e.code === "UNSUPPORTED");
    assert.equal(foreign.seen.length, 0);
  });

  for (const status of [307, 308]) {
    it(`STAC search POST: ${status} re-sends the same body to the new URL`, async () => {
      const { api } = await pair(status);
      const search = { collections: ["s2"], limit: 3 };
      assert.deepEqual(await fetchJson({ method: "POST", href: `${api.url}/start`, body: search }, optionsFor(api.url), "search"), { from: "api" });
      assert.deepEqual(
        api.seen.map((s) => [s.method, s.url, JSON.parse(s.body), s.authorization]),
        [
          ["POST", "/start", search, `Token ${TOKEN}`],
          ["POST", "/moved", search, `Token ${TOKEN}`],
        ],
      );
    });
  }

  for (const status of [301, 302, 303]) {
    it(`STAC search POST: ${status} is refused (it would drop the search body), with the URL to use`, async () => {
      const { api } = await pair(status);
      await assert.rejects(fetchJson({ method: "POST", href: `${api.url}/start`, body: { limit: 1 } }, optionsFor(api.url), "search"), (e: DatasphereError) => {
        assert.equal(e.code, "UNSUPPORTED");
        assert.match(e.message, new RegExp(`HTTP ${status}, which would resend it as a GET without its body; use the URL it points to \\(${api.url.replace(/[.]/g, "\\.")}/moved\\)`));
        return true;
      });
      assert.equal(api.seen.length, 1);
    });
  }

  it("redirectTarget: resolves relative Locations and rejects missing or non-http ones", () => {
    const rule = { what: "x", hops: 0 };
    assert.equal(redirectTarget("http://a.test/p/q", 302, "../r?s=1", rule), "http://a.test/r?s=1");
    assert.equal(redirectTarget("http://a.test/p", 302, ["https://b.test/", "ignored"], rule), "https://b.test/");
    assert.throws(() => redirectTarget("http://a.test/p", 302, undefined, rule), (e: DatasphereError) => e.code === "PROTOCOL" && /without a usable http\(s\) Location/.test(e.message));
    assert.throws(() => redirectTarget("http://a.test/p", 302, "file:///etc/passwd", rule), (e: DatasphereError) => e.code === "PROTOCOL");
    assert.throws(() => redirectTarget("http://a.test/p", 302, "/n", { ...rule, hops: 5 }), (e: DatasphereError) => /more than 5 redirects/.test(e.message));
  });
});
