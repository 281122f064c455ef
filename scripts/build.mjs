// Bundles each node into nodes/<name>.js (what Node-RED loads), the sandbox CLI into bin/, and
// transpiles src/, test/, bench/ and scripts/ into build/ for the test runner and tools.
import { build } from "esbuild";
import { readdirSync, statSync, mkdirSync, chmodSync, existsSync } from "node:fs";
import { join } from "node:path";

const external = ["ws", "undici", "bufferutil", "utf-8-validate", "node-red", "playwright-core"];
const common = { platform: "node", target: "node20", format: "cjs", sourcemap: false, logLevel: "warning" };

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

const nodeEntries = readdirSync("src/nodes").filter((f) => /^datasphere-.*\.ts$/.test(f));
await Promise.all([
  ...nodeEntries.map((file) =>
    build({ ...common, bundle: true, external, entryPoints: [join("src/nodes", file)], outfile: join("nodes", file.replace(/\.ts$/, ".js")) })),
  ...(existsSync("src/sandbox/cli.ts")
    ? [build({ ...common, bundle: true, external, entryPoints: ["src/sandbox/cli.ts"], outfile: "bin/datasphere-sandbox.js", banner: { js: "#!/usr/bin/env node" } })]
    : []),
  build({ ...common, bundle: false, entryPoints: ["src", "test", "bench", "scripts"].flatMap(tsFiles), outdir: "build", outbase: "." }),
]);
if (existsSync("bin/datasphere-sandbox.js")) chmodSync("bin/datasphere-sandbox.js", 0o755);
