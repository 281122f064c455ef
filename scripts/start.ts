// `npm start`: the sandbox on loopback, and a Node-RED editor (the dev dependency) with this package
// and the example flows deployed against it. Ctrl-C stops both.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { startSandbox } from "../src/sandbox";

const repoRoot = resolve(__dirname, "..", "..");
const userDir = resolve(process.env.DATASPHERE_START_USERDIR ?? join(repoRoot, ".node-red-dev"));
const CONFIG_ID = "datasphere-sandbox-config";
/** Examples that need something the sandbox does not provide (an MQTT broker, more Node-RED processes, a map node from npm) stay import-only. */
const NOT_DEPLOYED = new Set(["mqtt-fanout.json", "scale-out-publisher.json", "scale-out-worker.json", "map-footprints.json"]);

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

/** Every example flow on a tab of its own, all sharing one config node that points at the sandbox. */
export function composeFlows(examplesDir: string): FlowNode[] {
  const flows: FlowNode[] = [
    { id: CONFIG_ID, type: "datasphere-config", name: "sandbox", apiUrl: "${DATASPHERE_API_URL}", publishUrl: "${DATASPHERE_PUBLISH_URL}", authMode: "header" },
  ];
  for (const file of readdirSync(examplesDir).filter((f) => f.endsWith(".json")).sort()) {
    if (NOT_DEPLOYED.has(file)) continue;
    const nodes = JSON.parse(readFileSync(join(examplesDir, file), "utf8")) as FlowNode[];
    const tabId = `tab-${file.replace(/\.json$/, "")}`;
    const configIds = new Set(nodes.filter((n) => n.type === "datasphere-config").map((n) => n.id));
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
  return flows;
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
  writeFileSync(join(userDir, "flows.json"), JSON.stringify(composeFlows(join(repoRoot, "examples")), null, 2));
  writeFileSync(join(userDir, "flows_cred.json"), JSON.stringify({ [CONFIG_ID]: { token: "${DATASPHERE_TOKEN}" } }, null, 2));
  writeFileSync(
    join(userDir, "settings.js"),
    `module.exports = { uiHost: "127.0.0.1", uiPort: ${editorPort}, flowFile: "flows.json", credentialSecret: false, logging: { console: { level: "info", metrics: false, audit: false } }, editorTheme: { tours: false, palette: { categories: ["datasphere", "common", "function", "network", "sequence", "parser", "storage"] } } };\n`,
  );

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
