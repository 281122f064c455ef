import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../helpers/paths";
import { bcryptHash, startNodeRed, type NodeRedProcess } from "../helpers/node-red-process";
import { freshUserDir, linkCheckout, removeDir } from "./support";

const catalog = JSON.parse(readFileSync(join(repoRoot, "nodes", "locales", "en-US", "datasphere-config.json"), "utf8"));

/** The config node's admin route must sit behind Node-RED's adminAuth like every editor route. */
describe("e2e: /datasphere-config/test behind adminAuth", function () {
  this.timeout(120_000);
  let userDir: string | undefined;
  let nr: NodeRedProcess | undefined;
  let url: string;

  before(async () => {
    userDir = freshUserDir("admin-auth");
    linkCheckout(userDir);
    nr = await startNodeRed({
      userDir,
      settings: {
        adminAuth: {
          type: "credentials",
          users: [
            { username: "admin", password: bcryptHash("correct horse"), permissions: "*" },
            { username: "viewer", password: bcryptHash("battery staple"), permissions: "read" },
          ],
        },
      },
    });
    url = new URL("datasphere-config/test", nr.url).href;
  });

  after(async () => {
    await nr?.stop();
    removeDir(userDir);
  });

  const post = (headers: Record<string, string> = {}) =>
    fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body: JSON.stringify({ id: "", apiUrl: "http://127.0.0.1:9/", publishUrl: "ws://127.0.0.1:9/", token: "" }),
    });

  async function login(username: string, password: string, scope: string): Promise<string> {
    const response = await fetch(new URL("auth/token", nr!.url), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ client_id: "node-red-admin", grant_type: "password", scope, username, password }),
    });
    assert.equal(response.status, 200, `login as ${username}`);
    const body = (await response.json()) as { access_token?: string };
    assert.ok(body.access_token, "an access token");
    return body.access_token;
  }

  it("refuses a caller with no bearer token (401)", async () => {
    const response = await post();
    assert.equal(response.status, 401);
    await response.arrayBuffer();
  });

  it("refuses a made-up bearer token (401)", async () => {
    const response = await post({ Authorization: "Bearer not-a-real-session-token" });
    assert.equal(response.status, 401);
    await response.arrayBuffer();
  });

  it("refuses a user with read permission only", async () => {
    const token = await login("viewer", "battery staple", "read");
    const response = await post({ Authorization: `Bearer ${token}` });
    assert.equal(response.status, 401);
    await response.arrayBuffer();
  });

  it("serves an administrator (the route answers on its own terms)", async () => {
    const token = await login("admin", "correct horse", "*");
    const response = await post({ Authorization: `Bearer ${token}` });
    // No deployed config node: the typed URLs are probed without a token, and the token is not checked.
    assert.equal(response.status, 200);
    const body = (await response.json()) as { verdict: string; checks: Array<{ field: string; target: string; reachable?: boolean; text: string }> };
    assert.equal(body.verdict, "problem");
    assert.deepEqual(body.checks.map((c) => [c.field, c.target, c.reachable ?? null]), [
      ["apiUrl", "typed", false],
      ["publishUrl", "typed", false],
      ["token", "none", null],
    ]);
    assert.equal(body.checks[2].text, catalog["datasphere-config"].test.deployFirst, "the route's own answer, from the locale catalog");
  });
});
