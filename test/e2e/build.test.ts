import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../helpers/paths";

/**
 * `node scripts/build.mjs` runs while Node-RED processes load the nodes from this checkout: `npm pack`
 * in the install test runs it (npm 10, which Node-RED installs into node_modules/.bin, runs `prepare`
 * even with --ignore-scripts), and a developer rebuilds while `npm start` runs. The old build deleted
 * nodes/lib first, and a Node-RED starting then logged "Cannot find module './lib/datasphere.js'".
 */
describe("e2e: a rebuild of the checkout", function () {
  this.timeout(120_000);

  it("never leaves the shipped bundle or a node's file missing or empty while it runs", async () => {
    const watched = [join(repoRoot, "nodes", "lib", "datasphere.js"), join(repoRoot, "nodes", "datasphere-config.js"), join(repoRoot, "bin", "datasphere-sandbox.js")];
    const gaps: string[] = [];
    let looks = 0;
    const look = setInterval(() => {
      looks += 1;
      for (const file of watched) {
        if (!existsSync(file)) gaps.push(`${file} missing`);
        else if (statSync(file).size === 0) gaps.push(`${file} empty`);
      }
    }, 1);
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [join(repoRoot, "scripts", "build.mjs")], { cwd: repoRoot, stdio: "inherit" });
      child.on("exit", resolve);
    });
    clearInterval(look);
    assert.equal(code, 0);
    assert.ok(looks > 20, `looked ${looks} times during the build`);
    assert.deepEqual(gaps.slice(0, 5), []);
  });
});
