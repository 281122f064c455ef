import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { SourceMap, type SourceMapPayload } from "node:module";
import { join } from "node:path";
import { build } from "esbuild";
import { repoRoot } from "../helpers/paths";

const { toLineSourceMap } = require(join(repoRoot, "scripts", "line-source-map.cjs")) as { toLineSourceMap(mapText: string): string };
const SHIPPED = [join(repoRoot, "nodes", "lib", "datasphere.js"), join(repoRoot, "bin", "datasphere-sandbox.js")];

/** The 1-based line of `src/<file>` that holds `text`. */
function lineOf(file: string, text: string): number {
  const index = readFileSync(join(repoRoot, file), "utf8").split("\n").findIndex((line) => line.includes(text));
  assert.ok(index >= 0, `${file} no longer holds ${JSON.stringify(text)}: update this test`);
  return index + 1;
}

/**
 * What the package ships (built by `node scripts/build.mjs`, which `npm test` runs first): bundles
 * with source maps reduced to one mapping per source line, no sources inside.
 */
describe("e2e: the shipped bundles' source maps", function () {
  this.timeout(60_000);

  it("a stack trace from the shipped nodes bundle names the TypeScript files and lines (node --enable-source-maps)", () => {
    const script = `
      const lib = require(${JSON.stringify(SHIPPED[0])});
      try { lib["datasphere-subscribe-in"]({ nodes: { registerType() { throw new Error("probe"); } } }); }
      catch (error) { console.log(error.stack); }`;
    const run = spawnSync(process.execPath, ["--enable-source-maps", "-e", script], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    const frames = run.stdout.split("\n").filter((line) => line.includes("src/nodes/"));
    const defineNode = join("src", "nodes", "shared", "define-node.ts");
    const adapter = join("src", "nodes", "datasphere-subscribe-in.ts");
    assert.match(frames[0] ?? "", new RegExp(`${defineNode.replace(/[.\\]/g, "\\$&")}:${lineOf(defineNode, "RED.nodes.registerType(type,")}:`), run.stdout);
    assert.match(frames[1] ?? "", new RegExp(`${adapter.replace(/[.\\]/g, "\\$&")}:${lineOf(adapter, "defineNode<SubscribeDef>(RED, TYPE")}:`), run.stdout);
  });

  it("each shipped map is reduced, has no sources inside, names only files of src/ (and the generated entry), and is found by the bundle", () => {
    for (const bundle of SHIPPED) {
      const mapText = readFileSync(`${bundle}.map`, "utf8");
      const map = JSON.parse(mapText) as SourceMapPayload & { sourcesContent?: unknown };
      assert.equal(toLineSourceMap(mapText), mapText, `${bundle}.map is already reduced to one mapping per source line`);
      assert.equal(map.sourcesContent, undefined, `${bundle}.map carries no sources`);
      assert.ok(map.sources.length > 10, `${bundle}.map names its sources`);
      // nodes-entry.js: the generated entry that lists the node types (scripts/build.mjs).
      for (const source of map.sources.filter((s) => !s.endsWith("/nodes-entry.js"))) {
        const file = join(bundle, "..", source);
        assert.ok(file.startsWith(join(repoRoot, "src")) && existsSync(file), `${bundle}.map names ${source}, which is not a file of src/`);
      }
      assert.match(readFileSync(bundle, "utf8"), /\n\/\/# sourceMappingURL=[\w.-]+\.js\.map\n?$/);
    }
  });

  it("the one-mapping-per-line map gives the same file and line as esbuild's full map, at every 7th column of the bundle", async () => {
    const result = await build({
      entryPoints: [join(repoRoot, "src", "sandbox", "cli.ts")],
      outfile: join(repoRoot, "build", "source-map-check.js"),
      bundle: true,
      platform: "node",
      format: "cjs",
      packages: "external",
      sourcemap: true,
      sourcesContent: false,
      write: false,
      logLevel: "silent",
    });
    const code = result.outputFiles.find((f) => f.path.endsWith(".js"))!.text;
    const fullText = result.outputFiles.find((f) => f.path.endsWith(".map"))!.text;
    const reducedText = toLineSourceMap(fullText);
    const full = new SourceMap(JSON.parse(fullText) as SourceMapPayload);
    const reduced = new SourceMap(JSON.parse(reducedText) as SourceMapPayload);
    let compared = 0;
    const differences: string[] = [];
    code.split("\n").forEach((line, lineNumber) => {
      for (let column = 0; column < line.length; column += 7) {
        const want = full.findEntry(lineNumber, column);
        if (!("originalSource" in want)) continue;
        const got = reduced.findEntry(lineNumber, column);
        compared += 1;
        const same = "originalSource" in got && got.originalSource === want.originalSource && got.originalLine === want.originalLine;
        if (!same && differences.length < 5) differences.push(`${lineNumber}:${column} full ${want.originalSource}:${want.originalLine}, reduced ${JSON.stringify(got)}`);
      }
    });
    assert.ok(compared > 5_000, `compared ${compared} positions`);
    assert.deepEqual(differences, []);
    assert.ok(reducedText.length * 2 < fullText.length, `reduced ${reducedText.length} characters, full ${fullText.length}`);
  });
});
