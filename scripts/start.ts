// `npm start`: the sandbox on loopback, and a Node-RED editor (the dev dependency) with this package
// and the example flows deployed against it. Ctrl-C stops both.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { startSandbox } from "../src/sandbox";
import { coreNodeTypes } from "./scorecard";

const repoRoot = resolve(__dirname, "..", "..");
const userDir = resolve(process.env.DATASPHERE_START_USERDIR ?? join(repoRoot, ".node-red-dev"));
/** The config node every example shares (tokenSource "env": the token comes from DATASPHERE_TOKEN). */
export const CONFIG_ID = "datasphere.config.env";
/** The example whose tab is in front when the editor opens: live Items into the Debug sidebar. */
export const FRONT_EXAMPLE = "subscribe-to-debug.json";
/** Config node types that need a service the sandbox does not provide (an MQTT broker): import-only. */
const NEEDS_SERVICE = new Set(["mqtt-broker"]);

interface FlowNode {
  id: string;
  type: string;
  z?: string;
  server?: string;
  [key: string]: unknown;
}

function freePort(preferred: number): Promise<number> {
  return new Promise((resolvePort) => {
    const probe = createServer();
    probe.once("error", () => {
      const any = createServer();
      any.listen(0, "127.0.0.1", () => {
        const port = (any.address() as { port: number }).port;
        any.close(() => resolvePort(port));
      });
    });
    probe.listen(preferred, "127.0.0.1", () => probe.close(() => resolvePort(preferred)));
  });
}

/**
 * Every example that runs on this package, the core nodes and the sandbox alone, each on a tab of its
 * own, the live-Items example first (the editor opens on the first tab). All share one config node;
 * examples that need another service or a node package not installed stay import-only.
 */
export function composeFlows(examplesDir: string, knownTypes: ReadonlySet<string>): { flows: FlowNode[]; skipped: string[] } {
  const flows: FlowNode[] = [];
  const skipped: string[] = [];
  const files = readdirSync(examplesDir).filter((f) => f.endsWith(".json")).sort((a, b) => Number(b === FRONT_EXAMPLE) - Number(a === FRONT_EXAMPLE) || a.localeCompare(b));
  let config: FlowNode | undefined;
  for (const file of files) {
    const nodes = JSON.parse(readFileSync(join(examplesDir, file), "utf8")) as FlowNode[];
    if (nodes.some((n) => NEEDS_SERVICE.has(n.type) || !knownTypes.has(n.type))) {
      skipped.push(file);
      continue;
    }
    const tabId = `tab-${file.replace(/\.json$/, "")}`;
    const configIds = new Set(nodes.filter((n) => n.type === "datasphere-config").map((n) => n.id));
    config ??= nodes.find((n) => n.id === CONFIG_ID);
    const existingTab = nodes.find((n) => n.type === "tab");
    const tab = existingTab?.id ?? tabId;
    if (!existingTab) flows.push({ id: tabId, type: "tab", label: file.replace(/\.json$/, ""), disabled: false, info: "" });
    for (const node of nodes) {
      if (configIds.has(node.id)) continue;
      const copy: FlowNode = { ...node };
      if (copy.type !== "tab" && !copy.z) copy.z = tab;
      if (typeof copy.server === "string" && configIds.has(copy.server)) copy.server = CONFIG_ID;
      flows.push(copy);
    }
  }
  flows.push(config ?? { id: CONFIG_ID, type: "datasphere-config", name: "Data Sphere (from environment)", apiUrl: "${DATASPHERE_API_URL}", publishUrl: "${DATASPHERE_PUBLISH_URL}", authMode: "header", tokenSource: "env", tokenEnv: "DATASPHERE_TOKEN" });
  return { flows, skipped };
}

/** Node types the editor will know: Node-RED's core nodes and this package's. */
function knownNodeTypes(): Set<string> {
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { "node-red": { nodes: Record<string, string> } };
  return new Set([...coreNodeTypes(repoRoot), ...Object.keys(pkg["node-red"].nodes)]);
}

/**
 * Loaded by the editor page (editorTheme.page.scripts): once the flows are shown, the Debug sidebar
 * comes to the front, where the live Items arrive.
 */
const EDITOR_SCRIPT = `(function () {
  function showDebug() { if (window.RED && RED.sidebar) RED.sidebar.show("debug"); }
  if (window.RED && RED.events) RED.events.on("flows:loaded", function () { setTimeout(showDebug, 250); setTimeout(showDebug, 1500); });
})();
`;

/** settings.js of the dev user directory: no first-run dialog (telemetry consent, tours), Debug in front. */
export function settingsFile(editorPort: number, editorScript: string): string {
  const settings = {
    uiHost: "127.0.0.1",
    uiPort: editorPort,
    flowFile: "flows.json",
    credentialSecret: false,
    logging: { console: { level: "info", metrics: false, audit: false } },
    // Without an answer, the editor opens on a modal asking to allow update checks (telemetry).
    telemetry: { enabled: false, updateNotification: false },
    editorTheme: {
      tours: false,
      page: { scripts: [editorScript] },
      palette: { categories: ["datasphere", "common", "function", "network", "sequence", "parser", "storage"] },
    },
  };
  return `module.exports = ${JSON.stringify(settings, null, 2)};\n`;
}

function linkPackage(): void {
  const scopeDir = join(userDir, "node_modules", "@stacflow");
  mkdirSync(scopeDir, { recursive: true });
  const link = join(scopeDir, "node-red-datasphere");
  rmSync(link, { recursive: true, force: true });
  symlinkSync(repoRoot, link, "dir");
  writeFileSync(join(userDir, "package.json"), JSON.stringify({ name: "node-red-datasphere-dev", private: true, dependencies: { "@stacflow/node-red-datasphere": "file:" + repoRoot } }, null, 2));
}

async function main(): Promise<void> {
  const sandboxPort = await freePort(Number(process.env.SANDBOX_PORT ?? 8300));
  const editorPort = await freePort(Number(process.env.PORT ?? 1880));
  const sandbox = await startSandbox({ port: sandboxPort, rate: Number(process.env.SANDBOX_RATE ?? 1), token: process.env.DATASPHERE_TOKEN ?? "sandbox-token" });

  mkdirSync(userDir, { recursive: true });
  linkPackage();
  const { flows, skipped } = composeFlows(join(repoRoot, "examples"), knownNodeTypes());
  writeFileSync(join(userDir, "flows.json"), JSON.stringify(flows, null, 2));
  rmSync(join(userDir, "flows_cred.json"), { force: true });
  const editorScript = join(userDir, "datasphere-start-editor.js");
  writeFileSync(editorScript, EDITOR_SCRIPT);
  writeFileSync(join(userDir, "settings.js"), settingsFile(editorPort, editorScript));
  if (skipped.length > 0) console.log(`  Import-only examples (they need a broker or another node package): ${skipped.join(", ")}`);

  const redMain = process.env.NODE_RED_PATH ?? require.resolve("node-red");
  const redScript = join(dirname(redMain), "..", "red.js");
  const child: ChildProcess = spawn(process.execPath, [redScript, "-u", userDir, "-s", join(userDir, "settings.js")], {
    cwd: userDir,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, DATASPHERE_API_URL: sandbox.url, DATASPHERE_PUBLISH_URL: sandbox.publishUrl, DATASPHERE_TOKEN: sandbox.token, STAC_API_URL: sandbox.stacApi.url },
  });
  const editorUrl = `http://127.0.0.1:${editorPort}/`;
  child.stdout?.on("data", (chunk: Buffer) => {
    const text = chunk.toString();
    process.stdout.write(text.replace(/^/gm, "[node-red] ").replace(/\[node-red\] $/, ""));
    if (text.includes("Server now running at")) {
      console.log(`\n  Data Sphere sandbox:  ${sandbox.url}  (token: ${sandbox.token}, publish: ${sandbox.publishUrl})`);
      console.log(`  Sandbox STAC API:     ${sandbox.stacApi.url}  (STAC_API_URL for the stac-api config node)`);
      console.log(`  Node-RED editor:      ${editorUrl}  (Node-RED pid ${child.pid})`);
      console.log("  Open the editor: live Items appear in the Debug sidebar. Ctrl-C stops both.\n");
    }
  });
  child.stderr?.on("data", (chunk: Buffer) => process.stderr.write(chunk.toString().replace(/^/gm, "[node-red] ")));

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    if (child.exitCode === null) {
      child.kill("SIGINT");
      await new Promise<void>((done) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          done();
        }, 10_000);
        child.once("exit", () => {
          clearTimeout(timer);
          done();
        });
      });
    }
    await sandbox.close();
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));
  child.on("exit", (code) => void stop(code ?? 1));
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`npm start failed: ${(error as Error).message}`);
    process.exit(1);
  });
}
