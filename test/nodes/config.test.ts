import { strict as assert } from "node:assert";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { configNode, helper, startHelperServer, stopHelperServer } from "../helpers/node-red";

const TOKEN = "cfg-test-token-0123456789";

function tokenServer(): Promise<{ server: Server; url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(String(req.headers.authorization ?? ""));
    res.statusCode = req.headers.authorization === `Token ${TOKEN}` ? 404 : req.headers.authorization ? 403 : 401;
    res.end();
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, seen, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })),
  );
}

describe("datasphere-config node", function () {
  before(startHelperServer);
  after(stopHelperServer);
  afterEach(async () => {
    await helper.unload();
    delete process.env.DS_TEST_API;
    delete process.env.DS_TEST_TOKEN;
  });

  it("loads with its token as a credential keyed by node id, and exports no token", async () => {
    const flow = [{ id: "c1", type: "datasphere-config", name: "main", apiUrl: "http://127.0.0.1:1", publishUrl: "ws://127.0.0.1:1/publish/v1/", authMode: "header" }];
    await helper.load(configNode(), flow, { c1: { token: TOKEN } });
    const node = helper.getNode("c1");
    assert.equal(node.credentials.token, TOKEN);
    assert.deepEqual(node.auth.headersFor("http://127.0.0.1:1/api/item/v1/x"), { authorization: `Token ${TOKEN}` });
    const exported = JSON.stringify(helper._redNodes.getFlows());
    assert.ok(exported.includes('"datasphere-config"'), "the export holds the config node");
    assert.ok(!exported.includes(TOKEN), "the export holds no token");
    assert.ok(!JSON.stringify(node).includes(TOKEN), "the node's own JSON holds no token");
  });

  it("resolves ${VAR} in the URLs and in the token", async () => {
    process.env.DS_TEST_API = "http://127.0.0.1:4567";
    process.env.DS_TEST_TOKEN = TOKEN;
    const flow = [{ id: "c1", type: "datasphere-config", apiUrl: "${DS_TEST_API}", publishUrl: "ws://127.0.0.1:4567/publish/v1/", authMode: "message" }];
    await helper.load(configNode(), flow, { c1: { token: "${DS_TEST_TOKEN}" } });
    const node = helper.getNode("c1");
    assert.equal(node.configError, undefined);
    assert.equal(node.endpoints.item("x y"), "http://127.0.0.1:4567/api/item/v1/x%20y");
    assert.equal(node.authMode, "message");
    assert.deepEqual(JSON.parse(node.auth.authMessage()), { Authorization: `Token ${TOKEN}` });
  });

  it("rejects invalid URLs with an error that names the field", async () => {
    const flow = [{ id: "c1", type: "datasphere-config", apiUrl: "ftp://example.com", publishUrl: "wss://example.com/publish/v1" }];
    await helper.load(configNode(), flow, { c1: { token: TOKEN } });
    const node = helper.getNode("c1");
    assert.match(node.configError, /apiUrl: must start with http/);
    assert.match(node.configError, /publishUrl: must end with '\/'/);
    assert.equal(node.endpoints, undefined);
    const logged = (node.error as { args: unknown[][] }).args.map((a) => String(a[0]));
    assert.ok(logged.some((l) => l.includes("datasphere-config.errors.invalid")), logged.join("\n"));
  });

  it("test-connection route: stored token against the deployed URL, typed token, and no token echoed", async () => {
    const { server, url, seen } = await tokenServer();
    try {
      const flow = [{ id: "c1", type: "datasphere-config", apiUrl: url, publishUrl: "ws://127.0.0.1:1/publish/v1/" }];
      await helper.load(configNode(), flow, { c1: { token: TOKEN } });
      const stored = await helper.request().post("/datasphere-config/test").send({ id: "c1", token: "__PWRD__", apiUrl: "http://127.0.0.1:9/elsewhere" });
      assert.equal(stored.body.verdict, "reachable");
      assert.equal(seen.length, 1, "the stored token went to the deployed API URL, not the one in the request");
      const wrong = await helper.request().post("/datasphere-config/test").send({ id: "c1", token: "wrong-token-abc", apiUrl: url, publishUrl: "ws://127.0.0.1:1/publish/v1/" });
      assert.equal(wrong.body.verdict, "token-rejected");
      const down = await helper.request().post("/datasphere-config/test").send({ id: "new", token: "x-token", apiUrl: "http://127.0.0.1:1", publishUrl: "ws://127.0.0.1:1/publish/v1/" });
      assert.equal(down.body.verdict, "unreachable");
      const undeployed = await helper.request().post("/datasphere-config/test").send({ id: "nope", token: "__PWRD__" });
      assert.equal(undeployed.status, 400);
      // A ${VAR} token resolves on the server, so it is a server secret too: only the deployed URL gets it.
      process.env.DS_TEST_TOKEN = TOKEN;
      const elsewhere = await tokenServer();
      try {
        const viaEnv = await helper.request().post("/datasphere-config/test").send({ id: "c1", token: "${DS_TEST_TOKEN}", apiUrl: elsewhere.url, publishUrl: "ws://127.0.0.1:1/publish/v1/" });
        assert.equal(viaEnv.body.verdict, "reachable");
        assert.deepEqual(elsewhere.seen, [], "the typed URL received nothing");
        assert.equal(seen.at(-1), `Token ${TOKEN}`, "the deployed API URL got the resolved token");
        const viaEnvUndeployed = await helper.request().post("/datasphere-config/test").send({ id: "nope", token: "${DS_TEST_TOKEN}", apiUrl: elsewhere.url });
        assert.equal(viaEnvUndeployed.status, 400);
        assert.deepEqual(elsewhere.seen, []);
      } finally {
        elsewhere.server.close();
      }
      for (const r of [stored, wrong, down, undeployed]) assert.ok(!JSON.stringify(r.body).includes(TOKEN));
    } finally {
      server.close();
    }
  });
});
