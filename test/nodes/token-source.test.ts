import { strict as assert } from "node:assert";
import type { NodeAPI } from "../../src/nodes/shared/node-red";
import { DEFAULT_TOKEN_ENV, resolveToken } from "../../src/nodes/shared/token-source";

// resolveToken reads only RED.util.getSetting (as Node-RED's own ${VAR} lookup); the rest is unused.
const RED = { util: { getSetting: (_node: unknown, name: string) => process.env[name] } } as unknown as NodeAPI;

describe("token source (shared by the config nodes)", () => {
  afterEach(() => {
    delete process.env.DS_TS_TOKEN;
  });

  it("credential: the credential, with ${VAR} expanded", () => {
    process.env.DS_TS_TOKEN = "from-env";
    assert.deepEqual(resolveToken(RED, null, { credential: "typed" }), { source: "credential", token: "typed", problem: undefined });
    assert.equal(resolveToken(RED, null, { tokenSource: "credential", credential: "${DS_TS_TOKEN}" }).token, "from-env");
    assert.equal(resolveToken(RED, null, { tokenSource: "something else", credential: "typed" }).source, "credential");
    assert.equal(resolveToken(RED, null, {}).problem, "no token in the credential");
  });

  it("env: the named variable's value, trimmed; the default name is DATASPHERE_TOKEN", () => {
    process.env.DS_TS_TOKEN = "  abc  ";
    assert.deepEqual(resolveToken(RED, null, { tokenSource: "env", tokenEnv: "DS_TS_TOKEN", credential: "ignored" }), {
      source: "env", token: "abc", envName: "DS_TS_TOKEN", problem: undefined,
    });
    assert.equal(resolveToken(RED, null, { tokenSource: "env", tokenEnv: " " }).envName, DEFAULT_TOKEN_ENV);
    assert.equal(DEFAULT_TOKEN_ENV, "DATASPHERE_TOKEN");
  });

  it("env: an unset variable or a bad name gives no token and a problem naming the variable, never a value", () => {
    const unset = resolveToken(RED, null, { tokenSource: "env", tokenEnv: "DS_TS_TOKEN" });
    assert.equal(unset.token, "");
    assert.equal(unset.problem, "environment variable DS_TS_TOKEN is not set or empty");
    process.env.DS_TS_TOKEN = "secret-value";
    const bad = resolveToken(RED, null, { tokenSource: "env", tokenEnv: "${DS_TS_TOKEN}" });
    assert.equal(bad.token, "");
    assert.match(bad.problem ?? "", /"\$\{DS_TS_TOKEN\}" is not an environment variable name/);
    assert.ok(!(bad.problem ?? "").includes("secret-value"));
  });
});
