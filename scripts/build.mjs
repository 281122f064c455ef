// Bundles the nodes into one shared file, nodes/lib/datasphere.js (core and the node skeleton once,
// not copied into each node), with a one-line nodes/<type>.js per node type (what Node-RED loads);
// the sandbox CLI into bin/; and transpiles src/, test/, bench/ and scripts/ into build/ for the
// test runner and tools. ajv, ajv-formats and stac-migrate stay external: installed dependencies,
// loaded only when a schema check needs them.
import { build } from "esbuild";
import { readdirSync, statSync, mkdirSync, chmodSync, existsSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
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
rmSync("nodes/lib", { recursive: true, force: true });
mkdirSync("nodes/lib", { recursive: true });
for (const type of nodeTypes) {
  writeFileSync(join("nodes", `${type}.js`), `"use strict";\n// Built by scripts/build.mjs: the ${type} node, from the shared bundle.\nmodule.exports = require("./lib/datasphere.js")[${JSON.stringify(type)}];\n`);
}
await Promise.all([
  build({ ...shipped, stdin: { contents: `module.exports = {\n${library}\n};\n`, resolveDir: ".", sourcefile: "nodes-entry.js", loader: "js" }, outfile: "nodes/lib/datasphere.js" }),
  ...(existsSync("src/sandbox/cli.ts")
    ? [build({ ...shipped, entryPoints: ["src/sandbox/cli.ts"], outfile: "bin/datasphere-sandbox.js", banner: { js: "#!/usr/bin/env node" } })]
    : []),
  build({ ...common, bundle: false, sourcemap: false, entryPoints: ["src", "test", "bench", "scripts"].flatMap(tsFiles), outdir: "build", outbase: "." }),
]);
for (const map of ["nodes/lib/datasphere.js.map", "bin/datasphere-sandbox.js.map"]) {
  if (existsSync(map)) writeFileSync(map, toLineSourceMap(readFileSync(map, "utf8")));
}
if (existsSync("bin/datasphere-sandbox.js")) chmodSync("bin/datasphere-sandbox.js", 0o755);
