import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocketServer } from "ws";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import type { ConnectionReport, UrlCheck } from "../../src/nodes/shared/test-connection";
import { configNode, helper, startHelperServer, stopHelperServer } from "../helpers/node-red";

const TOKEN = "tc-sandbox-token-0123456789";

/** A server that is not Data Sphere: answers every request and upgrade, and records everything it got. */
interface Recorder {
  server: Server;
  url: string;
  wsUrl: string;
  requests: Array<{ url: string; headers: IncomingHttpHeaders }>;
  frames: string[];
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

async function startRecorder(): Promise<Recorder> {
  const requests: Recorder["requests"] = [];
  const frames: string[] = [];
  const server = createServer((req, res) => {
    requests.push({ url: req.url ?? "", headers: req.headers });
    res.statusCode = 404;
    res.end("not here");
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    requests.push({ url: req.url ?? "", headers: req.headers });
    wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (data) => frames.push(String(data))));
  });
  const port = await listen(server);
  return { server, requests, frames, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/publish/v1/` };
}

function closeServer(server: Server | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!server) return resolve();
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
}

/** Everything the recorder saw, as one text: the token must not be in it, nor any expanded value. */
function seen(recorder: Recorder): string {
  return JSON.stringify({ requests: recorder.requests, frames: recorder.frames });
}

const byTarget = (report: ConnectionReport, field: UrlCheck["field"], target: UrlCheck["target"]) =>
  report.checks.filter((c) => c.field === field && c.target === target);

describe("datasphere-config Test connection (real sandbox and a foreign recording server)", function () {
  this.timeout(30_000);
  let sandbox: Sandbox;
  let foreign: Recorder;

  before(async () => {
    await startHelperServer();
    sandbox = await startSandbox({ port: 0, token: TOKEN });
  });
  after(async () => {
    await sandbox?.close();
    await stopHelperServer();
  });
  beforeEach(async () => {
    foreign = await startRecorder();
    process.env.DS_TC_TOKEN = TOKEN;
  });
  afterEach(async () => {
    await helper.unload();
    await closeServer(foreign.server);
    delete process.env.DS_TC_TOKEN;
  });

  async function deploy(extra: Record<string, unknown> = {}): Promise<void> {
    const flow = [{ id: "c1", type: "datasphere-config", apiUrl: sandbox.url, publishUrl: sandbox.publishUrl, authMode: "header", tokenSource: "env", tokenEnv: "DS_TC_TOKEN", ...extra }];
    await helper.load(configNode(), flow, {});
  }

  async function press(body: Record<string, unknown>): Promise<ConnectionReport> {
    const response = await helper.request().post("/datasphere-config/test").send(body);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    const report = response.body as ConnectionReport;
    assert.ok(!JSON.stringify(report).includes(TOKEN), "the report never holds the token");
    return report;
  }

  it("the deployed URLs typed unchanged: the token is checked over HTTP and by a WebSocket handshake, per URL", async () => {
    await deploy();
    const report = await press({ id: "c1", apiUrl: sandbox.url, publishUrl: sandbox.publishUrl, tokenSource: "env" });
    assert.equal(report.verdict, "ok", JSON.stringify(report, null, 2));
    assert.deepEqual(report.checks.map((c) => [c.field, c.target, c.token, c.ok]), [
      ["apiUrl", "deployed", "accepted", true],
      ["publishUrl", "deployed", "accepted", true],
    ]);
    const ws = report.checks[1];
    assert.equal(ws.status, 101, "the publish check completed a WebSocket handshake");
    assert.equal(ws.tls, "none");
    assert.equal(ws.url, sandbox.publishUrl, "the line names the URL it checked");
    assert.match(ws.text, /publishUrl ws:\/\/127\.0\.0\.1:\d+\/publish\/v1\/ \(datasphere-config\.test\.target\.deployed\)/);
  });

  it("typed URLs that differ from the deployed ones are probed without any token; the token check runs on the deployed URLs", async () => {
    await deploy();
    const report = await press({ id: "c1", apiUrl: foreign.url, publishUrl: foreign.wsUrl, tokenSource: "env" });
    const typedApi = byTarget(report, "apiUrl", "typed");
    const typedWs = byTarget(report, "publishUrl", "typed");
    assert.equal(typedApi.length, 1);
    assert.equal(typedWs.length, 1);
    assert.deepEqual([typedApi[0].reachable, typedApi[0].status, typedApi[0].token], [true, 404, "not-sent"]);
    assert.deepEqual([typedWs[0].reachable, typedWs[0].status, typedWs[0].token], [true, 101, "not-sent"]);
    assert.equal(byTarget(report, "apiUrl", "deployed")[0].token, "accepted");
    assert.equal(byTarget(report, "publishUrl", "deployed")[0].token, "accepted");
    assert.equal(foreign.requests.length, 2, "the foreign server got one GET and one upgrade");
    for (const r of foreign.requests) assert.equal(r.headers.authorization, undefined);
    assert.ok(!seen(foreign).includes(TOKEN), "no token reached the foreign server");
  });

  it("a token typed in the dialog goes to the deployed URL only, never to a typed foreign URL", async () => {
    await deploy();
    const report = await press({ id: "c1", apiUrl: foreign.url, publishUrl: foreign.wsUrl, tokenSource: "credential", token: "typed-wrong-token" });
    assert.equal(byTarget(report, "apiUrl", "deployed")[0].token, "rejected", "the sandbox refused the typed token");
    assert.equal(byTarget(report, "publishUrl", "deployed")[0].token, "rejected");
    assert.equal(report.verdict, "problem");
    assert.ok(!seen(foreign).includes("typed-wrong-token"));
    for (const r of foreign.requests) assert.equal(r.headers.authorization, undefined);
  });

  it("a typed field holding ${VAR} is never expanded and probed: only the deployed URL is checked", async () => {
    await deploy();
    const report = await press({ id: "c1", apiUrl: `${foreign.url}/\${DS_TC_TOKEN}`, publishUrl: `${foreign.wsUrl}\${DS_TC_TOKEN}/`, tokenSource: "env" });
    assert.deepEqual(foreign.requests, [], "the foreign server received nothing");
    assert.deepEqual(report.checks.map((c) => [c.field, c.target]), [["apiUrl", "deployed"], ["publishUrl", "deployed"]]);
    for (const c of report.checks) assert.match(c.text, /test\.envField/);
  });

  it("an unreachable typed URL is reported unreachable (not 'reachable' because the deployed URL answers)", async () => {
    await deploy();
    const closed = createServer();
    const port = await listen(closed);
    await closeServer(closed);
    const report = await press({ id: "c1", apiUrl: `http://127.0.0.1:${port}`, publishUrl: `wss://127.0.0.1:${port}/publish/v1/`, tokenSource: "env" });
    const typed = byTarget(report, "apiUrl", "typed")[0];
    assert.equal(typed.reachable, false);
    assert.equal(typed.ok, false);
    assert.equal(typed.error, "ECONNREFUSED");
    const typedWs = byTarget(report, "publishUrl", "typed")[0];
    assert.deepEqual([typedWs.reachable, typedWs.tls, typedWs.error], [false, "untested", "ECONNREFUSED"], "a refused wss URL never reached TLS");
    assert.equal(report.verdict, "problem");
  });

  it("not deployed: typed URLs are probed without a token and the token is reported not checked", async () => {
    const report = await press({ id: "never-deployed", apiUrl: foreign.url, publishUrl: foreign.wsUrl, token: "typed-token-xyz" });
    assert.deepEqual(report.checks.map((c) => [c.field, c.target, c.token]), [
      ["apiUrl", "typed", "not-sent"],
      ["publishUrl", "typed", "not-sent"],
      ["token", "none", "unchecked"],
    ]);
    assert.ok(!seen(foreign).includes("typed-token-xyz"));
    assert.equal(report.verdict, "problem");
  });

  it("message auth: a rejected token is seen as the close after the first message", async () => {
    process.env.DS_TC_TOKEN = "not-the-sandbox-token";
    await deploy({ authMode: "message" });
    const report = await press({ id: "c1", apiUrl: sandbox.url, publishUrl: sandbox.publishUrl, tokenSource: "env" });
    const ws = byTarget(report, "publishUrl", "deployed")[0];
    assert.equal(ws.token, "rejected", JSON.stringify(ws));
    assert.equal(byTarget(report, "apiUrl", "deployed")[0].token, "rejected");
  });

  it("an https URL with a certificate Node does not trust is reported as a TLS failure", async function () {
    let openssl = "";
    try {
      openssl = execFileSync("sh", ["-c", "command -v openssl"]).toString().trim();
    } catch {
      /* absent */
    }
    if (!openssl || !existsSync(openssl)) {
      console.log("      skipped: openssl is needed to make a self-signed certificate");
      this.skip();
    }
    const dir = mkdtempSync(join(tmpdir(), "tc-tls-"));
    try {
      execFileSync(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1"], { stdio: "ignore" });
      let hits = 0;
      const https = createHttpsServer({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) }, (_req, res) => {
        hits++;
        res.end();
      });
      const port = await listen(https as unknown as Server);
      try {
        const report = await press({ id: "never-deployed", apiUrl: `https://127.0.0.1:${port}`, publishUrl: `wss://127.0.0.1:${port}/publish/v1/` });
        for (const field of ["apiUrl", "publishUrl"] as const) {
          const check = byTarget(report, field, "typed")[0];
          assert.equal(check.tls, "failed", JSON.stringify(check));
          assert.equal(check.ok, false);
        }
        assert.equal(hits, 0, "no request got past the refused handshake");
      } finally {
        await closeServer(https as unknown as Server);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
