import { strict as assert } from "node:assert";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkScorecard, satisfies, scorecardMisses } from "../../scripts/scorecard";
import { repoRoot } from "../helpers/paths";

const ids = (misses: string[]) => [...new Set(misses.map((m) => m.split(" ")[0]))].sort();

describe("flow library scorecard (offline)", function () {
  this.timeout(30_000);
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), "scorecard-"));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  it("this package passes every rule", () => {
    const checks = checkScorecard(repoRoot);
    assert.deepEqual(
      checks.map((c) => c.id),
      ["P01", "P03", "P04", "P05", "P06", "P07", "D01", "H01", "H02", "N01", "N02", "E01"],
    );
    assert.deepEqual(scorecardMisses(repoRoot), []);
  });

  it("catches a broken package.json", () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
    delete pkg.license;
    delete pkg.repository;
    pkg.name = "node-red-datasphere";
    pkg.keywords = ["stac"];
    pkg["node-red"].version = "^4.0.0";
    pkg["node-red"].nodes = { ...pkg["node-red"].nodes, inject: "nodes/inject.js" };
    pkg.engines = { node: ">=20.18.0 <22" };
    pkg.dependencies = Object.fromEntries(["a", "b", "c", "d", "e", "f", "g"].map((n) => [n, "1.0.0"]));
    writeFileSync(join(scratch, "package.json"), JSON.stringify(pkg));
    symlinkSync(join(repoRoot, "nodes"), join(scratch, "nodes"));
    symlinkSync(join(repoRoot, "examples"), join(scratch, "examples"));

    const misses = scorecardMisses(scratch);
    assert.deepEqual(ids(misses), ["D01", "H01", "H02", "N01", "N02", "P01", "P03", "P04", "P05", "P06", "P07"].filter(
      // N02 also misses while the node helpers' examples have not all landed; the rest are ours.
      (id) => id !== "N02" || misses.some((m) => m.startsWith("N02")),
    ));
    assert.ok(misses.includes('P06 node-red.version "^4.0.0" excludes Node-RED 5.0.0'), misses.join("\n"));
    assert.ok(misses.includes('P07 engines.node ">=20.18.0 <22" excludes Node.js 22.9.0 (Node-RED 5\'s minimum)'), misses.join("\n"));
    assert.ok(misses.includes("D01 7 dependencies (at most 6)"));
    assert.ok(misses.includes('N01 type "inject" is a core Node-RED type'));
    assert.ok(misses.includes("H01 inject: nodes/inject.html is missing"));
    assert.ok(misses.includes('P04 name "node-red-datasphere" is not scoped (@scope/name)'));
  });

  it("catches a node without literal registerType, help sections or an example", () => {
    writeFileSync(
      join(scratch, "package.json"),
      JSON.stringify({
        name: "@x/y", license: "MIT", repository: { url: "git+https://example.com/x/y.git" }, keywords: ["node-red"],
        engines: { node: ">=22" }, "node-red": { version: ">=4", nodes: { "x-a": "nodes/x-a.js", "x-b": "nodes/x-b.js" } },
      }),
    );
    mkdirSync(join(scratch, "nodes"));
    mkdirSync(join(scratch, "examples"));
    writeFileSync(
      join(scratch, "nodes", "x-a.html"),
      `<script type="text/javascript">
    RED.nodes.registerType('x-a', {
        category: 'x',
        inputs: 1,
        outputs: 1
    });
</script>
<script type="text/html" data-help-name="x-a"><h3>Inputs</h3><dl class="message-properties"></dl></script>`,
    );
    writeFileSync(
      join(scratch, "nodes", "x-b.html"),
      `<script type="text/javascript">var t = 'x-b'; RED.nodes.registerType(t, def);</script>`,
    );
    writeFileSync(join(scratch, "examples", "a.json"), JSON.stringify([{ id: "1", type: "inject" }]));
    writeFileSync(join(scratch, "examples", "b.json"), "{ not json");

    const misses = scorecardMisses(scratch);
    assert.deepEqual(misses.sort(), [
      "E01 examples/a.json: has no comment node",
      "H01 x-b: nodes/x-b.html does not call RED.nodes.registerType('x-b', {...})",
      "H01 x-b: registerType is not called with a literal type",
      "H02 x-a: help has no Details section",
      "H02 x-a: help has no Outputs section",
      'H02 x-b: no <script type="text/html" data-help-name="x-b"> in nodes/x-b.html or its en-US locale',
      "N02 examples/b.json: not valid JSON (" + (() => { try { JSON.parse("{ not json"); } catch (e) { return (e as Error).message; } return ""; })() + ")",
      "N02 no example uses x-a",
      "N02 no example uses x-b",
    ].sort());
  });

  it("matches npm version ranges the way semver does", () => {
    const cases: Array<[string, string, boolean]> = [
      ["4.1.0", ">=4.0.0", true], ["5.0.0", "^4.0.0", false], ["5.0.0", "^4.0.0 || ^5.0.0", true],
      ["22.9.0", ">=20.18.0", true], ["22.9.0", "^20.18.0", false], ["22.9.0", ">=18 <22", false],
      ["22.9.0", "20 - 24", true], ["4.0.0", "4.x", true], ["5.1.0", ">= 4", true], ["22.9.0", ">=22.10", false],
      ["22.9.0", "*", true], ["0.2.5", "^0.2.3", true], ["0.3.0", "^0.2.3", false], ["4.2.0", "~4.1.8", false],
    ];
    for (const [version, range, expected] of cases) assert.equal(satisfies(version, range), expected, `${version} in ${range}`);
  });
});
