// Bundles the nodes into one shared file, nodes/lib/datasphere.js (core and the node skeleton once,
// not copied into each node), with a one-line nodes/<type>.js per node type (what Node-RED loads);
// the sandbox CLI into bin/; and transpiles src/, test/, bench/ and scripts/ into build/ for the
// test runner and tools. ajv, ajv-formats and stac-migrate stay external: installed dependencies,
// loaded only when a schema check needs them.
import { build } from "esbuild";
import { readdirSync, statSync, mkdirSync, chmodSync, existsSync, writeFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { toLineSourceMap } from "./line-source-map.cjs";

const external = ["ws", "undici", "bufferutil", "utf-8-validate", "node-red", "playwright-core", "ajv", "ajv-formats", "@radiantearth/stac-migrate"];
const common = { platform: "node", target: "node20", format: "cjs", logLevel: "warning" };
// Maps without the sources and one mapping per source line (reduced after the build): stack traces
// name src/ files and lines, and the maps are a quarter of esbuild's full ones in the tarball.
const shipped = { ...common, bundle: true, external, sourcemap: true, sourcesContent: false };

function tsFiles(dir) {
  let out = [];
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const name of entries) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(tsFiles(path));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

const nodeTypes = readdirSync("src/nodes").filter((f) => /^datasphere-.*\.ts$/.test(f)).map((f) => f.replace(/\.ts$/, "")).sort();
const library = nodeTypes.map((type) => `  ${JSON.stringify(type)}: require("./src/nodes/${type}.ts"),`).join("\n");
mkdirSync("nodes/lib", { recursive: true });

/**
 * Replaces a file whole (write beside it, then rename): a Node-RED, a test or `npm start` loading the
 * nodes while a build runs (npm 10's `npm pack` runs `prepare` even with --ignore-scripts) sees the
 * old file or the new one, never none or half of one.
 */
function replaceFile(path, contents) {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, path);
}

/** Writes esbuild's in-memory outputs; source maps reduced to one mapping per source line. */
function writeOutputs(result) {
  for (const file of result.outputFiles) replaceFile(file.path, shippedMaps.has(file.path) ? toLineSourceMap(file.text) : file.contents);
}

const shippedMaps = new Set(["nodes/lib/datasphere.js.map", "bin/datasphere-sandbox.js.map"].map((p) => resolve(p)));
for (const type of nodeTypes) {
  replaceFile(join("nodes", `${type}.js`), `"use strict";\n// Built by scripts/build.mjs: the ${type} node, from the shared bundle.\nmodule.exports = require("./lib/datasphere.js")[${JSON.stringify(type)}];\n`);
}
const results = await Promise.all([
  build({ ...shipped, write: false, stdin: { contents: `module.exports = {\n${library}\n};\n`, resolveDir: ".", sourcefile: "nodes-entry.js", loader: "js" }, outfile: "nodes/lib/datasphere.js" }),
  ...(existsSync("src/sandbox/cli.ts")
    ? [build({ ...shipped, write: false, entryPoints: ["src/sandbox/cli.ts"], outfile: "bin/datasphere-sandbox.js", banner: { js: "#!/usr/bin/env node" } })]
    : []),
  build({ ...common, write: false, bundle: false, sourcemap: false, entryPoints: ["src", "test", "bench", "scripts"].flatMap(tsFiles), outdir: "build", outbase: "." }),
]);
results.forEach(writeOutputs);
// Files a former build left in nodes/lib that this one did not write (a build running now keeps its .tmp).
const written = new Set(results.flatMap((r) => r.outputFiles.map((f) => f.path)));
const running = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
};
for (const name of readdirSync("nodes/lib")) {
  const path = resolve("nodes/lib", name);
  const temporaryOf = /\.(\d+)\.tmp$/.exec(name);
  if (!written.has(path) && !(temporaryOf && running(Number(temporaryOf[1])))) rmSync(path, { force: true });
}
if (existsSync("bin/datasphere-sandbox.js")) chmodSync("bin/datasphere-sandbox.js", 0o755);
