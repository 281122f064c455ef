/**
 * The Node-RED flow library scorecard (`node-red-dev validate`), checked offline for this package.
 * node-red-dev needs the flow catalogue and the npm registry; these are the same rules with the
 * facts they look up written down here (Node-RED 4.1/5 versions, Node-RED 5's Node.js minimum, the
 * core node types of the Node-RED under test). Run: `node build/scripts/scorecard.js [packageDir]`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export interface ScorecardCheck {
  id: string;
  rule: string;
  misses: string[];
}

/** The current maintenance line and the latest line of Node-RED (what the scorecard tests against). */
export const NODE_RED_VERSIONS = ["4.0.0", "4.1.0", "5.0.0"];
/** minVersion(engines.node) of Node-RED 5: the scorecard requires the package to allow it. */
export const NODE_RED_5_MIN_NODE = "22.9.0";
export const MAX_DEPENDENCIES = 6;

/** Core types, used when the Node-RED under test cannot be found; the live list is read from it. */
const CORE_TYPES_FALLBACK = [
  "tab", "subflow", "group", "junction", "unknown", "global-config",
  "inject", "debug", "complete", "catch", "status", "link in", "link out", "link call", "comment",
  "function", "switch", "change", "range", "template", "delay", "trigger", "exec", "rbe", "filter",
  "mqtt in", "mqtt out", "mqtt-broker", "http in", "http response", "http request", "http proxy",
  "websocket in", "websocket out", "websocket-listener", "websocket-client", "tcp in", "tcp out",
  "tcp request", "udp in", "udp out", "tls-config", "split", "join", "sort", "batch", "csv", "html",
  "json", "xml", "yaml", "file", "file in", "watch",
];

// ---- a small semver range matcher (x.y.z, partials, x/*, ^, ~, comparators, hyphen ranges, ||) ----
type Version = [number, number, number];

function cmp(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

function parseVersion(text: string): Version | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

type Comparator = (v: Version) => boolean;

function comparator(token: string): Comparator {
  const m = /^(<=|>=|<|>|=|\^|~>?)?v?(\*|x|X|\d+)(?:\.(\*|x|X|\d+))?(?:\.(\*|x|X|\d+))?(?:[-+][0-9A-Za-z.-]*)?$/.exec(token);
  if (!m) throw new Error(`unsupported version range part "${token}"`);
  const op = m[1] ?? "";
  const wild = (s?: string) => s === undefined || /^[*xX]$/.test(s);
  const parts = [m[2], m[3], m[4]];
  const given = parts.findIndex(wild) === -1 ? 3 : parts.findIndex(wild); // how many numbers were given
  const n = parts.map((p) => (wild(p) ? 0 : Number(p))) as Version;
  if (given === 0) return op === "<" || op === ">" ? () => false : () => true;
  const next = (level: number): Version =>
    level === 1 ? [n[0] + 1, 0, 0] : level === 2 ? [n[0], n[1] + 1, 0] : [n[0], n[1], n[2] + 1];
  const lo = n;
  switch (op) {
    case ">=": return (v) => cmp(v, lo) >= 0;
    case "<": return (v) => cmp(v, lo) < 0;
    case ">": return given === 3 ? (v) => cmp(v, lo) > 0 : (v) => cmp(v, next(given)) >= 0;
    case "<=": return given === 3 ? (v) => cmp(v, lo) <= 0 : (v) => cmp(v, next(given)) < 0;
    case "^": {
      const level = n[0] > 0 || given === 1 ? 1 : n[1] > 0 || given === 2 ? 2 : 3;
      const hi = next(level);
      return (v) => cmp(v, lo) >= 0 && cmp(v, hi) < 0;
    }
    case "~":
    case "~>": {
      const hi = next(given === 1 ? 1 : 2);
      return (v) => cmp(v, lo) >= 0 && cmp(v, hi) < 0;
    }
    default: {
      const hi = next(given);
      return (v) => cmp(v, lo) >= 0 && cmp(v, hi) < 0;
    }
  }
}

/** Whether a plain version x.y.z satisfies an npm version range. */
export function satisfies(version: string, range: string): boolean {
  const v = parseVersion(version);
  if (!v) throw new Error(`not a version: "${version}"`);
  return range.split("||").some((alternative) => {
    const text = alternative
      .trim()
      .replace(/^(\S+)\s+-\s+(\S+)$/, ">=$1 <=$2")
      .replace(/(<=|>=|<|>|=|\^|~>?)\s+/g, "$1");
    const tokens = text.split(/\s+/).filter(Boolean);
    return tokens.every((token) => comparator(token)(v));
  });
}

// ---- reading the package ----
interface EditorDefinition {
  type: string;
  category?: string;
  inputs: number;
  outputs: number;
}

function editorScripts(html: string): string[] {
  const out: string[] = [];
  const re = /<script[^>]*type=["']text\/javascript["'][^>]*>([\s\S]*?)<\/script>/gi;
  let m: RegExpExecArray | null;
  while ((m = re.exec(html))) out.push(m[1]);
  return out;
}

/** registerType calls whose first argument is a string literal and second an inline object. */
function editorDefinitions(html: string): { defs: EditorDefinition[]; problems: string[] } {
  const defs: EditorDefinition[] = [];
  const problems: string[] = [];
  for (const script of editorScripts(html)) {
    const calls = script.split(/RED\.nodes\.registerType\s*\(/).slice(1);
    for (const call of calls) {
      const head = /^\s*(['"])([^'"]+)\1\s*,\s*(\{)?/.exec(call);
      if (!head) {
        problems.push("registerType is not called with a literal type");
        continue;
      }
      if (!head[3]) problems.push(`registerType('${head[2]}', ...) is not given an inline object`);
      const literal = (key: string) => new RegExp(`\\n\\s*${key}\\s*:\\s*(['"]?)([^'",\\n]*)\\1\\s*,?`).exec(call)?.[2];
      defs.push({
        type: head[2],
        category: literal("category"),
        inputs: Number(literal("inputs") ?? 0) || 0,
        outputs: Number(literal("outputs") ?? 0) || 0,
      });
    }
  }
  return { defs, problems };
}

function helpFor(type: string, htmlFiles: string[]): string | undefined {
  const escaped = type.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const re = new RegExp(`<script[^>]*data-help-name=["']${escaped}["'][^>]*>([\\s\\S]*?)</script>`, "i");
  for (const file of htmlFiles) {
    if (!existsSync(file)) continue;
    const m = re.exec(readFileSync(file, "utf8"));
    if (m) return m[1];
  }
  return undefined;
}

function hasSection(help: string, name: string): boolean {
  return new RegExp(`<h[1-6][^>]*>\\s*${name}\\s*</h[1-6]>`, "i").test(help);
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** The types the Node-RED under test registers itself (its core nodes' editor files). */
export function coreNodeTypes(packageDir: string): Set<string> {
  const types = new Set(CORE_TYPES_FALLBACK);
  try {
    const main = process.env.NODE_RED_PATH ? resolve(process.env.NODE_RED_PATH) : require.resolve("node-red", { paths: [packageDir] });
    const nodesPkg = require.resolve("@node-red/nodes/package.json", { paths: [dirname(main), dirname(dirname(main))] });
    for (const file of filesUnder(join(dirname(nodesPkg), "core")).filter((f) => f.endsWith(".html"))) {
      for (const def of editorDefinitions(readFileSync(file, "utf8")).defs) types.add(def.type);
    }
  } catch {
    /* fallback list only */
  }
  return types;
}

/** Runs every rule against the package in packageDir (package.json may be given instead of read). */
export function checkScorecard(packageDir: string, packageJson?: Record<string, any>): ScorecardCheck[] {
  const root = resolve(packageDir);
  const pkg: Record<string, any> = packageJson ?? JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const checks: ScorecardCheck[] = [];
  const check = (id: string, rule: string, run: (miss: (text: string) => void) => void) => {
    const misses: string[] = [];
    try {
      run((text) => misses.push(text));
    } catch (error) {
      misses.push(`check failed: ${(error as Error).message}`);
    }
    checks.push({ id, rule, misses });
  };
  const nodeSet: Record<string, string> =
    pkg["node-red"] && typeof pkg["node-red"].nodes === "object" && pkg["node-red"].nodes ? pkg["node-red"].nodes : {};

  check("P01", "has a licence", (miss) => {
    if (typeof pkg.license !== "string" || pkg.license.trim() === "") miss("package.json has no \"license\"");
  });
  check("P03", "has a repository", (miss) => {
    const url = typeof pkg.repository === "string" ? pkg.repository : pkg.repository?.url;
    if (typeof url !== "string" || !/^(git\+)?(https?|git|ssh):\/\/|^git@|^github:/.test(url)) miss("package.json has no repository URL");
  });
  check("P04", "uses a scoped name", (miss) => {
    if (typeof pkg.name !== "string" || !/^@[a-z\d][\w.-]*\/[a-z\d][\w.-]*$/.test(pkg.name)) miss(`name "${pkg.name}" is not scoped (@scope/name)`);
  });
  check("P05", "has the node-red keyword", (miss) => {
    if (!Array.isArray(pkg.keywords) || !pkg.keywords.includes("node-red")) miss("keywords do not contain \"node-red\"");
  });
  check("P06", "node-red.version allows Node-RED 4.x and 5.x", (miss) => {
    const range = pkg["node-red"]?.version;
    if (typeof range !== "string") return miss("node-red.version is not declared");
    for (const v of NODE_RED_VERSIONS) if (!satisfies(v, range)) miss(`node-red.version "${range}" excludes Node-RED ${v}`);
  });
  check("P07", "engines.node allows Node-RED 5's minimum Node.js", (miss) => {
    const range = pkg.engines?.node;
    if (typeof range !== "string") return miss("engines.node is not declared");
    if (!satisfies(NODE_RED_5_MIN_NODE, range)) miss(`engines.node "${range}" excludes Node.js ${NODE_RED_5_MIN_NODE} (Node-RED 5's minimum)`);
  });
  check("D01", `at most ${MAX_DEPENDENCIES} runtime dependencies`, (miss) => {
    const count = Object.keys(pkg.dependencies ?? {}).length;
    if (count > MAX_DEPENDENCIES) miss(`${count} dependencies (at most ${MAX_DEPENDENCIES})`);
  });

  // Editor files: each listed node has nodes/<x>.html registering a literal type with an inline object.
  const defs: EditorDefinition[] = [];
  check("H01", "every listed node has an editor .html with RED.nodes.registerType('<literal type>', {...})", (miss) => {
    if (Object.keys(nodeSet).length === 0) miss("package.json lists no nodes under node-red.nodes");
    for (const [name, jsFile] of Object.entries(nodeSet)) {
      const htmlFile = join(root, jsFile.replace(/\.js$/, ".html"));
      if (!existsSync(htmlFile)) {
        miss(`${name}: ${jsFile.replace(/\.js$/, ".html")} is missing`);
        continue;
      }
      const found = editorDefinitions(readFileSync(htmlFile, "utf8"));
      for (const problem of found.problems) miss(`${name}: ${problem}`);
      if (!found.defs.some((d) => d.type === name)) miss(`${name}: ${jsFile.replace(/\.js$/, ".html")} does not call RED.nodes.registerType('${name}', {...})`);
      defs.push(...found.defs);
    }
  });
  check("H02", "every node has help with Inputs, Outputs (when it has them) and Details", (miss) => {
    for (const [name, jsFile] of Object.entries(nodeSet)) {
      const base = jsFile.replace(/\.js$/, "");
      const file = base.split("/").pop() as string;
      const htmlFiles = [join(root, `${base}.html`), join(root, dirname(base), "locales", "en-US", `${file}.html`)];
      const help = helpFor(name, htmlFiles);
      if (help === undefined) {
        miss(`${name}: no <script type="text/html" data-help-name="${name}"> in ${base}.html or its en-US locale`);
        continue;
      }
      const def = defs.find((d) => d.type === name);
      const isConfig = def?.category === "config";
      const needInputs = !isConfig && (def?.inputs ?? 0) > 0;
      const needOutputs = !isConfig && (def?.outputs ?? 0) > 0;
      if (needInputs && !hasSection(help, "Inputs")) miss(`${name}: help has no Inputs section`);
      if (needOutputs && !hasSection(help, "Outputs")) miss(`${name}: help has no Outputs section`);
      if (!hasSection(help, "Details")) miss(`${name}: help has no Details section`);
      if ((needInputs || needOutputs) && !/<dl[^>]*class=["'][^"']*message-properties/.test(help)) miss(`${name}: help does not list message properties (dl.message-properties)`);
    }
  });
  check("N01", "node types do not clash with core types", (miss) => {
    const core = coreNodeTypes(root);
    for (const type of new Set([...Object.keys(nodeSet), ...defs.map((d) => d.type)])) if (core.has(type)) miss(`type "${type}" is a core Node-RED type`);
  });
  check("N02", "examples use every non-config node", (miss) => {
    const files = filesUnder(join(root, "examples")).filter((f) => f.endsWith(".json"));
    if (files.length === 0) return miss("examples/ has no flows");
    const used = new Set<string>();
    for (const file of files) {
      const rel = file.slice(root.length + 1);
      let flow: unknown;
      try {
        flow = JSON.parse(readFileSync(file, "utf8"));
      } catch (error) {
        miss(`${rel}: not valid JSON (${(error as Error).message})`);
        continue;
      }
      if (!Array.isArray(flow)) {
        miss(`${rel}: not an array of nodes`);
        continue;
      }
      for (const n of flow as Array<Record<string, unknown>>) used.add(String(n?.type));
    }
    for (const name of Object.keys(nodeSet)) {
      const def = defs.find((d) => d.type === name);
      const isConfig = def ? def.category === "config" : /-config$/.test(name);
      if (!isConfig && !used.has(name)) miss(`no example uses ${name}`);
    }
  });
  check("E01", "example flows explain themselves and hold no credentials", (miss) => {
    for (const file of filesUnder(join(root, "examples")).filter((f) => f.endsWith(".json"))) {
      const rel = file.slice(root.length + 1);
      let flow: Array<Record<string, unknown>>;
      try {
        flow = JSON.parse(readFileSync(file, "utf8"));
      } catch {
        continue; // reported by N02
      }
      if (!Array.isArray(flow)) continue;
      if (!flow.some((n) => n?.type === "comment")) miss(`${rel}: has no comment node`);
      for (const n of flow) {
        if (n && (n.credentials !== undefined || n.token !== undefined)) miss(`${rel}: node ${n.id} carries credentials`);
      }
    }
  });
  return checks;
}

/** Every miss, one line each, prefixed with its rule id. */
export function scorecardMisses(packageDir: string, packageJson?: Record<string, any>): string[] {
  return checkScorecard(packageDir, packageJson).flatMap((c) => c.misses.map((m) => `${c.id} ${m}`));
}

if (require.main === module) {
  const dir = resolve(process.argv[2] ?? join(__dirname, "..", ".."));
  const checks = checkScorecard(dir);
  for (const c of checks) {
    console.log(`${c.misses.length === 0 ? "pass" : "FAIL"} ${c.id} ${c.rule}`);
    for (const m of c.misses) console.log(`       - ${m}`);
  }
  const total = checks.reduce((n, c) => n + c.misses.length, 0);
  console.log(total === 0 ? "scorecard: all rules pass" : `scorecard: ${total} miss(es)`);
  process.exitCode = total === 0 ? 0 : 1;
}
