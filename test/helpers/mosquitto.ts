import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./node-red-process";
import { waitFor } from "./wait";

/** Debian's broker binary (package `mosquitto`). */
export const MOSQUITTO = "/usr/sbin/mosquitto";

/**
 * Whether the MQTT tests can run: without Mosquitto they fail in CI (CI=true), where .ci/run installs
 * it, and are skipped with a message on a developer's machine.
 */
export function requireMosquitto(context: Mocha.Context): void {
  if (existsSync(MOSQUITTO)) return;
  const message = `${MOSQUITTO} is missing: the MQTT tests need Debian's mosquitto (apt-get install -y mosquitto)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must install it`);
  console.log(`      skipped: ${message}`);
  context.skip();
}

export interface Mosquitto {
  port: number;
  /** Everything the broker logged so far (connections, subscriptions, wills). */
  log(): string;
  /** Resolves once `count` subscriptions to exactly this filter were logged. */
  waitForSubscriptions(filter: string, count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real Mosquitto on a free loopback port, from a generated config file in a temporary folder: MQTT
 * 5/3.1.1, anonymous clients, nothing persisted, the log on stdout (kept for assertions and failures).
 */
export async function startMosquitto(): Promise<Mosquitto> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "mosquitto-"));
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      "log_dest stdout",
      "log_type error",
      "log_type warning",
      "log_type notice",
      "log_type information",
      "log_type subscribe",
      "connection_messages true",
      "log_timestamp false",
      "",
    ].join("\n"),
  );
  // stdbuf (coreutils): line-buffered stdout, so the log is readable while the broker runs.
  const child = spawn("stdbuf", ["-oL", MOSQUITTO, "-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString("utf8")));
  child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")));
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const onExit = () => child.kill("SIGKILL");
  process.once("exit", onExit);
  const close = async () => {
    process.removeListener("exit", onExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`mosquitto exited (code ${child.exitCode})`);
      return /running/.test(output);
    }, "mosquitto running", 20_000);
  } catch (error) {
    await close();
    throw new Error(`mosquitto did not start on port ${port}: ${(error as Error).message}\n${output}`);
  }
  return {
    port,
    log: () => output,
    waitForSubscriptions: async (filter, count, timeoutMs = 90_000) => {
      const line = new RegExp(`^\\S+ \\d ${filter.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "gm");
      try {
        await waitFor(() => (output.match(line)?.length ?? 0) >= count, `${count} subscriptions to ${filter}`, timeoutMs, 100);
      } catch {
        throw new Error(`fewer than ${count} subscriptions to ${filter} within ${timeoutMs} ms. Broker log:\n${output}`);
      }
    },
    close,
  };
}
