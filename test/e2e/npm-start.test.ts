import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { freePort, isAlive } from "../helpers/node-red-process";
import { repoRoot } from "../helpers/paths";

interface DebugMessage {
  topic?: string;
  msg?: string;
  name?: string;
  id?: string;
}

describe("npm start (end to end: sandbox + real Node-RED + deployed example flows)", function () {
  this.timeout(120_000);
  let child: ChildProcess | undefined;
  let userDir = "";
  let output = "";

  after(async () => {
    // start.js and the Node-RED it spawned share a process group: kill both, whatever state the test left.
    if (child?.pid && child.exitCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    if (userDir) rmSync(userDir, { recursive: true, force: true });
  });

  it("prints the editor address, Items reach the Debug sidebar, and Ctrl-C leaves no process behind", async () => {
    userDir = mkdtempSync(join(tmpdir(), "datasphere-start-"));
    const port = await freePort();
    child = spawn(process.execPath, [join(repoRoot, "build", "scripts", "start.js")], {
      cwd: repoRoot,
      env: { ...process.env, PORT: String(port), SANDBOX_PORT: String(await freePort()), SANDBOX_RATE: "5", DATASPHERE_START_USERDIR: userDir },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (output += c.toString()));

    const editorUrl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no editor address printed:\n${output}`)), 60_000);
      const check = () => {
        const m = /Node-RED editor:\s+(http:\/\/\S+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          child!.stdout!.off("data", check);
          resolve(m[1]);
        }
      };
      child!.stdout!.on("data", check);
      child!.once("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${output}`)));
    });
    assert.equal(editorUrl, `http://127.0.0.1:${port}/`);

    const debug: DebugMessage[] = [];
    const ws = new WebSocket(`${editorUrl.replace("http", "ws")}comms`);
    ws.on("open", () => ws.send(JSON.stringify({ subscribe: "debug" })));
    ws.on("message", (data) => {
      const parsed = JSON.parse(String(data));
      for (const entry of Array.isArray(parsed) ? parsed : [parsed]) if (entry.topic === "debug") debug.push(entry.data as DebugMessage);
    });
    const deadline = Date.now() + 60_000;
    const liveItem = () => debug.find((d) => d.topic === "sentinel-2-l2a-live" && /"type":"Feature"/.test(d.msg ?? ""));
    while (!liveItem() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    ws.close();
    const item = liveItem();
    assert.ok(item, `no live Item reached a debug node; debug messages seen: ${debug.length}\n${output.slice(-3000)}`);
    const parsedItem = JSON.parse(item.msg!);
    assert.equal(parsedItem.type, "Feature");
    assert.equal(typeof parsedItem.id, "string");
    assert.ok(!output.includes("[error]"), `Node-RED logged an error:\n${output}`);

    const nodeRedPid = Number(/\bpid (\d+)/.exec(output)?.[1] ?? 0);
    assert.ok(nodeRedPid > 0, "npm start prints the Node-RED pid");
    child.kill("SIGINT");
    const code = await new Promise<number | null>((resolve) => child!.once("exit", (c) => resolve(c)));
    assert.equal(code, 0, output.slice(-2000));
    assert.equal(isAlive(nodeRedPid), false, "the Node-RED process is gone");
  });
});
