import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isAlive, startNodeRed } from "../helpers/node-red-process";
import { freshUserDir, removeDir } from "./support";

describe("e2e helper: a real Node-RED process", function () {
  this.timeout(120_000);
  let userDir: string | undefined;
  afterEach(() => removeDir(userDir));

  it("starts with the given flows and credentials, and stops leaving no process behind", async () => {
    userDir = freshUserDir("process");
    const nr = await startNodeRed({
      userDir,
      flows: [
        { id: "t1", type: "tab", label: "t" },
        { id: "i1", type: "inject", z: "t1", name: "tick", props: [], repeat: "", once: false, wires: [] },
      ],
      credentials: { i1: { unused: "x" } },
    });
    try {
      assert.match(nr.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      assert.ok(isAlive(nr.pid));
      const flows = (await (await fetch(new URL("flows", nr.url), { headers: { Accept: "application/json" } })).json()) as Array<{ id: string }>;
      assert.deepEqual(flows.map((n) => n.id).sort(), ["i1", "t1"]);
      assert.match(nr.log(), /Server now running at/);
      assert.ok(existsSync(join(userDir, "settings.js")));
      assert.match(readFileSync(join(userDir, "settings.js"), "utf8"), /"credentialSecret": false/);
    } finally {
      await nr.stop();
    }
    assert.equal(isAlive(nr.pid), false, "the Node-RED process has exited");
    await nr.stop(); // idempotent
  });

  it("rejects with the log when Node-RED exits before it is ready", async () => {
    userDir = freshUserDir("process-fail");
    const fake = join(userDir, "fake-node-red");
    mkdirSync(fake);
    writeFileSync(join(fake, "package.json"), JSON.stringify({ name: "node-red", bin: { "node-red": "red.js" } }));
    writeFileSync(join(fake, "red.js"), "console.log('cannot start: settings rejected'); process.exit(3);\n");
    await assert.rejects(startNodeRed({ userDir: join(userDir, "u"), nodeRedMain: fake }), (e: Error) => {
      assert.match(e.message, /exited before it was ready \(code 3/);
      assert.match(e.message, /cannot start: settings rejected/);
      return true;
    });
  });
});
