import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";

/**
 * A real Node-RED process (not the test helper's in-process runtime), as a user runs it:
 * `node <node-red>/red.js -u <userDir> -s <userDir>/settings.js`.
 */

export interface NodeRedProcessOptions {
  userDir: string;
  /** Written to <userDir>/flows.json before start. */
  flows?: unknown[];
  /** Written to <userDir>/flows_cred.json (plain JSON: credentialSecret is false). Keyed by node id. */
  credentials?: Record<string, Record<string, string>>;
  /** Merged over the defaults below (top-level keys replace; editorTheme is merged one level deep). */
  settings?: Record<string, unknown>;
  /** Added to the child's environment. */
  env?: Record<string, string>;
  /** The Node-RED under test, as its resolved main file (lib/red.js) or its package folder;
   *  default NODE_RED_PATH, else this checkout's node-red. Its command-line entry (bin) is run. */
  nodeRedMain?: string;
  /** How long to wait for "Server now running at"; default 90 s (a loaded 2-core machine is slow). */
  startTimeoutMs?: number;
}

export interface NodeRedProcess {
  /** http://127.0.0.1:<port>/ (with the trailing slash). */
  url: string;
  port: number;
  pid: number;
  /** Everything the process wrote to stdout and stderr so far. */
  log(): string;
  /** Stops the whole process group and resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
}

/** The Node-RED main file under test (what CI passes as NODE_RED_PATH). */
export function nodeRedMainPath(): string {
  return process.env.NODE_RED_PATH ? resolve(process.env.NODE_RED_PATH) : require.resolve("node-red");
}

/** The command-line entry of the Node-RED whose main file (or package folder) is given: <pkg>/red.js. */
export function nodeRedCli(nodeRedMain = nodeRedMainPath()): string {
  let dir = statSync(nodeRedMain).isDirectory() ? nodeRedMain : dirname(nodeRedMain);
  for (;;) {
    const pkgFile = join(dir, "package.json");
    if (existsSync(pkgFile)) {
      const pkg = JSON.parse(readFileSync(pkgFile, "utf8")) as { name?: string; bin?: string | Record<string, string> };
      if (pkg.name === "node-red") {
        const bin = typeof pkg.bin === "string" ? pkg.bin : pkg.bin?.["node-red"] ?? "red.js";
        return join(dir, bin);
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`no node-red package above ${nodeRedMain}`);
    dir = up;
  }
}

/** bcrypt hash for adminAuth, made with the bcryptjs that the Node-RED under test bundles. */
export function bcryptHash(password: string, nodeRedMain = nodeRedMainPath()): string {
  const bcryptPath = require.resolve("bcryptjs", { paths: [dirname(nodeRedMain), dirname(dirname(nodeRedMain))] });
  const bcrypt = require(bcryptPath) as { hashSync(s: string, rounds: number): string };
  return bcrypt.hashSync(password, 8);
}

/** Asks the OS for a free loopback port (Node-RED does not accept uiPort 0). */
/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.unref();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // mocha --exit ends the process without running after() hooks of a failed run: leave nothing behind.
  process.on("exit", () => {
    for (const child of running) killGroup(child, "SIGKILL");
  });
}

function defaultSettings(port: number): Record<string, unknown> {
  return {
    uiHost: "127.0.0.1",
    uiPort: port,
    flowFile: "flows.json",
    credentialSecret: false,
    editorTheme: { tours: false, projects: { enabled: false } },
    telemetry: { enabled: false, updateNotification: false },
    logging: { console: { level: "info", metrics: false, audit: false } },
  };
}

export async function startNodeRed(options: NodeRedProcessOptions): Promise<NodeRedProcess> {
  const userDir = resolve(options.userDir);
  mkdirSync(userDir, { recursive: true });
  const nodeRedMain = options.nodeRedMain ? resolve(options.nodeRedMain) : nodeRedMainPath();
  const port = await freePort();

  const defaults = defaultSettings(port);
  const extra = options.settings ?? {};
  const settings: Record<string, unknown> = { ...defaults, ...extra };
  if (extra.editorTheme && typeof extra.editorTheme === "object") {
    settings.editorTheme = { ...(defaults.editorTheme as object), ...(extra.editorTheme as object) };
  }
  settings.uiPort = port;
  const settingsFile = join(userDir, "settings.js");
  writeFileSync(settingsFile, `module.exports = ${JSON.stringify(settings, null, 2)};\n`);
  if (options.flows) writeFileSync(join(userDir, "flows.json"), JSON.stringify(options.flows, null, 2));
  if (options.credentials) writeFileSync(join(userDir, "flows_cred.json"), JSON.stringify(options.credentials, null, 2));

  installExitHook();
  const child = spawn(process.execPath, [nodeRedCli(nodeRedMain), "-u", userDir, "-s", settingsFile], {
    cwd: userDir,
    env: { ...process.env, ...options.env },
    detached: true, // its own process group, so stop() reaches anything it spawns
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const exited = new Promise<void>((done) => {
    if (child.exitCode !== null) done();
    child.once("exit", () => {
      running.delete(child);
      done();
    });
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      killGroup(child, "SIGINT"); // Node-RED stops its flows on SIGINT, then exits
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    killGroup(child, "SIGKILL"); // any grandchild still in the group
  };

  const timeoutMs = options.startTimeoutMs ?? 90_000;
  try {
    await new Promise<void>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`Node-RED did not start within ${timeoutMs} ms. Log:\n${output}`)), timeoutMs);
      // Ready means the admin API answers with the flows: the server is up and the runtime has loaded them
      // (started, or waiting for node types a test left out on purpose).
      const check = () => {
        if (/Server now running at/.test(output) && /Started flows|Waiting for missing types/.test(output)) {
          clearTimeout(timer);
          done();
        }
      };
      child.stdout?.on("data", check);
      child.stderr?.on("data", check);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        fail(new Error(`Node-RED exited before it was ready (code ${code}, signal ${signal}). Log:\n${output}`));
      });
      child.once("error", (error) => {
        clearTimeout(timer);
        fail(error);
      });
    });
  } catch (error) {
    await stop();
    throw error;
  }

  return { url: `http://127.0.0.1:${port}/`, port, pid: child.pid as number, log: () => output, stop };
}
