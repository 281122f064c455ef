import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { nodeRedCli, nodeRedMainPath, startNodeRed, type NodeRedProcess } from "../helpers/node-red-process";
import { repoRoot } from "../helpers/paths";
import { errText, freshUserDir, nodeSets, PACKAGE_NAME, removeDir } from "./support";

interface RunResult {
  code: number | null;
  output: string;
  ms: number;
}

/** Runs a command to completion (its own process group, killed on timeout). */
function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  const started = Date.now();
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_update_notifier: "false" } });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")));
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {
        /* gone */
      }
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, output, ms: Date.now() - started });
    });
  });
}

const npm = process.platform === "win32" ? "npm.cmd" : "npm";

interface PackResult {
  filename: string;
  size: number;
  files: Array<{ path: string }>;
}

/**
 * Packed size budget: 194.5 kB at the time of writing (7 node types, the sandbox CLI, maps with one
 * mapping per source line, 12 examples). A bundled dependency or full source maps would exceed it;
 * test/e2e/source-maps.test.ts checks that the maps name only files of src/.
 */
const TARBALL_BUDGET_BYTES = 200_000;

/**
 * What a user gets: `npm pack` of this checkout (built beforehand by `npm test`), installed into a
 * fresh Node-RED user directory, loaded by a real Node-RED (this checkout's, or NODE_RED_PATH in CI).
 */
describe("e2e: npm pack, install into a fresh Node-RED user directory, load", function () {
  this.timeout(180_000);
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
  const expectedTypes: string[] = Object.keys(pkg["node-red"].nodes).sort();
  let packDir: string;
  let userDir: string | undefined;
  let packed: PackResult;
  let tarball: string;
  let nr: NodeRedProcess | undefined;

  before(async function () {
    packDir = mkdtempSync(join(tmpdir(), "nr-pack-"));
    // --ignore-scripts: `prepare` would rebuild what `npm test` has just built. npm 10 (the one Node-RED
    // puts in node_modules/.bin, first on npm test's PATH) runs it anyway: scripts/build.mjs replaces
    // files whole, so the Node-RED processes of the other tests never see the bundle missing.
    const pack = await run(npm, ["pack", "--json", "--ignore-scripts", "--pack-destination", packDir], repoRoot, 120_000);
    assert.equal(pack.code, 0, `npm pack failed:\n${pack.output}`);
    const json = pack.output.slice(pack.output.indexOf("["));
    packed = (JSON.parse(json) as PackResult[])[0];
    tarball = join(packDir, packed.filename);
    assert.ok(existsSync(tarball), tarball);
  });

  after(async () => {
    await nr?.stop();
    removeDir(userDir);
    removeDir(packDir);
  });

  it("packs the nodes, locales, icons, examples, bin and the docs the README links to, and no src/, test/, bench/ or build/", () => {
    const paths = packed.files.map((f) => f.path);
    const misses: string[] = [];
    const need = (path: string, why: string) => {
      if (!paths.includes(path)) misses.push(`${path} is not in the tarball (${why})`);
    };
    for (const p of paths) {
      if (/^(src|test|bench|build|scripts|\.ci)\//.test(p) || (/\.ts$/.test(p) && !/\.d\.ts$/.test(p))) misses.push(`${p} should not be in the tarball`);
    }
    for (const f of ["package.json", "LICENSE", "README.md"]) need(f, "every package has it");
    for (const [type, file] of Object.entries(pkg["node-red"].nodes) as Array<[string, string]>) {
      need(file, "built by `node scripts/build.mjs`, which npm test runs first");
      need(file.replace(/\.js$/, ".html"), "the editor file");
      need(`${dirname(file)}/locales/en-US/${type}.json`, "the message catalog");
      // Node-RED finds a module's icons in an icons/ folder beside each node's .js file, nowhere else.
      const htmlFile = join(repoRoot, file.replace(/\.js$/, ".html"));
      const icon = existsSync(htmlFile) ? /\bicon\s*:\s*["']([^"'/]+\.(?:svg|png))["']/.exec(readFileSync(htmlFile, "utf8"))?.[1] : undefined;
      if (icon) need(`${dirname(file)}/icons/${icon}`, `${type}'s icon: Node-RED looks for it beside ${file}`);
    }
    if (!paths.some((p) => p.startsWith("examples/") && p.endsWith(".json"))) misses.push("no examples/*.json in the tarball");
    // Every relative link of the README (and the sandbox's --help) to a file of the package.
    const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
    for (const m of readme.matchAll(/\]\((?!https?:|#|mailto:)([^)#\s]+)/g)) need(m[1].replace(/^\.\//, ""), "the README links to it");
    const bins: Record<string, string> = typeof pkg.bin === "string" ? { [pkg.name]: pkg.bin } : pkg.bin ?? {};
    for (const [name, file] of Object.entries(bins)) need(file.replace(/^\.\//, ""), `bin ${name}`);
    assert.deepEqual(misses, []);
  });

  it(`stays under its size budget (${TARBALL_BUDGET_BYTES / 1000} kB packed)`, () => {
    const biggest = packed.files.map((f) => f as { path: string; size?: number }).sort((a, b) => (b.size ?? 0) - (a.size ?? 0)).slice(0, 5);
    assert.ok(packed.size < TARBALL_BUDGET_BYTES, `the tarball is ${packed.size} bytes; the biggest files: ${biggest.map((f) => `${f.path} ${f.size}`).join(", ")}`);
  });

  it("installs from the tarball without the registry (npm cache only)", async () => {
    userDir = freshUserDir("install");
    writeFileSync(join(userDir, "package.json"), JSON.stringify({ name: "node-red-project", description: "install test", version: "0.0.1", private: true }));
    const args = ["install", "--no-audit", "--no-fund", "--omit=dev", "--no-package-lock"];
    let install = await run(npm, [...args, "--offline", tarball], userDir, 150_000);
    let how = "offline, from the npm cache";
    if (install.code !== 0 && /ENOTCACHED/.test(install.output)) {
      // A clean machine whose cache lacks a dependency: let npm fill it from the registry once.
      install = await run(npm, [...args, "--prefer-offline", tarball], userDir, 150_000);
      how = "prefer-offline (the cache lacked a dependency)";
    }
    assert.equal(install.code, 0, `npm install failed:\n${install.output}`);
    console.log(`      install took ${(install.ms / 1000).toFixed(1)} s (${how})`);
    const installed = join(userDir, "node_modules", ...PACKAGE_NAME.split("/"));
    assert.equal(JSON.parse(readFileSync(join(installed, "package.json"), "utf8")).version, pkg.version);
    for (const dep of Object.keys(pkg.dependencies ?? {})) {
      assert.ok(existsSync(join(userDir, "node_modules", dep, "package.json")), `dependency ${dep} is installed`);
    }
    for (const dir of ["src", "test", "bench", "build"]) assert.ok(!existsSync(join(installed, dir)), `${dir}/ is not installed`);
  });

  it(`loads in Node-RED as one module with ${expectedTypes.length} types and no errors`, async function () {
    assert.ok(userDir, "the install step ran");
    nr = await startNodeRed({ userDir });
    const sets = (await nodeSets(nr.url)).filter((s) => s.module === PACKAGE_NAME);
    const problems = sets.filter((s) => s.err || !s.enabled).map((s) => `${s.name}: ${s.err ? errText(s.err) : "disabled"}`);
    assert.deepEqual(problems, [], `node sets with errors:\n${problems.join("\n")}\n\nNode-RED log:\n${nr.log()}`);
    assert.deepEqual(sets.flatMap((s) => s.types).sort(), expectedTypes);
    assert.deepEqual(sets.map((s) => s.version), sets.map(() => pkg.version));
    const complaints = nr.log().split("\n").filter((l) => /\[(warn|error)\]/.test(l) && /datasphere/i.test(l));
    assert.deepEqual(complaints, [], "Node-RED logged no warning or error about the package");
    const runtime = JSON.parse(readFileSync(join(nodeRedCli(nodeRedMainPath()), "..", "package.json"), "utf8")).version;
    console.log(`      loaded by Node-RED ${runtime} on Node ${process.version}`);
  });
});
