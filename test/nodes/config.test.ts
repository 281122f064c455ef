import { strict as assert } from "node:assert";
import { configNode, helper, startHelperServer, stopHelperServer } from "../helpers/node-red";

const TOKEN = "cfg-test-token-0123456789";

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

  it("tokenSource env: reads the named variable at deploy; the flow holds the name, never the token", async () => {
    process.env.DS_TEST_TOKEN = TOKEN;
    const flow = [{ id: "c1", type: "datasphere-config", apiUrl: "http://127.0.0.1:1", publishUrl: "ws://127.0.0.1:1/publish/v1/", tokenSource: "env", tokenEnv: "DS_TEST_TOKEN" }];
    await helper.load(configNode(), flow, {});
    const node = helper.getNode("c1");
    assert.equal(node.tokenSource, "env");
    assert.equal(node.tokenEnv, "DS_TEST_TOKEN");
    assert.deepEqual(node.auth.headersFor("http://127.0.0.1:1/api/item/v1/x"), { authorization: `Token ${TOKEN}` });
    assert.deepEqual(node.auth.headersFor("http://127.0.0.1:2/api/item/v1/x"), {}, "another origin gets no token");
    const exported = JSON.stringify(helper._redNodes.getFlows());
    assert.ok(exported.includes('"tokenEnv":"DS_TEST_TOKEN"'), "the export names the variable");
    assert.ok(!exported.includes(TOKEN), "the export holds no token");
    assert.ok(!JSON.stringify(node).includes(TOKEN), "the node's own JSON holds no token");
    assert.equal((node.warn as { callCount: number }).callCount, 0);
  });

  it("tokenSource env: the variable is read once, at deploy (a later change needs a redeploy)", async () => {
    process.env.DS_TEST_TOKEN = TOKEN;
    const flow = [{ id: "c1", type: "datasphere-config", apiUrl: "http://127.0.0.1:1", publishUrl: "ws://127.0.0.1:1/publish/v1/", tokenSource: "env", tokenEnv: "DS_TEST_TOKEN" }];
    await helper.load(configNode(), flow, {});
    process.env.DS_TEST_TOKEN = "changed-after-deploy";
    assert.deepEqual(helper.getNode("c1").auth.headersFor("http://127.0.0.1:1/x"), { authorization: `Token ${TOKEN}` });
  });

  it("tokenSource env with an empty tokenEnv uses DATASPHERE_TOKEN; a credential left over is ignored", async () => {
    const saved = process.env.DATASPHERE_TOKEN;
    process.env.DATASPHERE_TOKEN = TOKEN;
    try {
      const flow = [{ id: "c1", type: "datasphere-config", apiUrl: "http://127.0.0.1:1", publishUrl: "ws://127.0.0.1:1/publish/v1/", tokenSource: "env", tokenEnv: "" }];
      await helper.load(configNode(), flow, { c1: { token: "old-credential-token" } });
      const node = helper.getNode("c1");
      assert.equal(node.tokenEnv, "DATASPHERE_TOKEN");
      assert.deepEqual(node.auth.headersFor("http://127.0.0.1:1/x"), { authorization: `Token ${TOKEN}` });
    } finally {
      if (saved === undefined) delete process.env.DATASPHERE_TOKEN;
      else process.env.DATASPHERE_TOKEN = saved;
    }
  });

  it("tokenSource env: an unset variable or a bad name is a warning naming the variable, and no token is sent", async () => {
    delete process.env.DS_TEST_TOKEN;
    const flow = [
      { id: "c1", type: "datasphere-config", apiUrl: "http://127.0.0.1:1", publishUrl: "ws://127.0.0.1:1/publish/v1/", tokenSource: "env", tokenEnv: "DS_TEST_TOKEN" },
      { id: "c2", type: "datasphere-config", apiUrl: "http://127.0.0.1:1", publishUrl: "ws://127.0.0.1:1/publish/v1/", tokenSource: "env", tokenEnv: "not a name" },
    ];
    await helper.load(configNode(), flow, {});
    for (const id of ["c1", "c2"]) {
      const node = helper.getNode(id);
      assert.equal(node.auth.hasToken, false);
      assert.deepEqual(node.auth.headersFor("http://127.0.0.1:1/x"), {});
      const warned = (node.warn as { args: unknown[][] }).args.map((a) => String(a[0]));
      assert.ok(warned.length > 0 && warned.every((w) => /datasphere-config\.errors\.tokenEnv/.test(w)), warned.join("\n"));
    }
  });

  it("tokenSource credential (and flows saved before tokenSource existed) keep using the credential", async () => {
    process.env.DS_TEST_TOKEN = "env-token-not-used";
    const flow = [{ id: "c1", type: "datasphere-config", apiUrl: "http://127.0.0.1:1", publishUrl: "ws://127.0.0.1:1/publish/v1/", tokenEnv: "DS_TEST_TOKEN" }];
    await helper.load(configNode(), flow, { c1: { token: TOKEN } });
    const node = helper.getNode("c1");
    assert.equal(node.tokenSource, "credential");
    assert.deepEqual(node.auth.headersFor("http://127.0.0.1:1/x"), { authorization: `Token ${TOKEN}` });
  });
});
