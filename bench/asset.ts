// Large-asset download through the datasphere-asset-fetch node (real Node-RED runtime, checksum
// verification on) next to `curl -o` against the same local server, in alternating rounds.
// `node build/bench/asset.js [--quick]` (--quick: 10 MB only).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { BenchRow } from "./bench-row";
import { median } from "./bench-row";
import { block, sha256Multihash } from "./asset-server";

const MB = 1024 * 1024;
const CURL = "/usr/bin/curl";

interface Sample {
  seconds: number;
  rssGrowthMb: number;
}

async function startServer(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [join(__dirname, "asset-server.js")], { stdio: ["pipe", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`asset server exited (${code})`)));
  });
  return { url: (JSON.parse(line) as { url: string }).url, child };
}

function runCommand(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} exited ${code}`))));
  });
}

/** Seconds for `curl -o`, and for `curl -o` followed by `sha256sum` (download, then verify). */
async function curl(url: string, path: string, checksum: string): Promise<{ download: number; verified: number }> {
  const started = process.hrtime.bigint();
  await runCommand(CURL, ["-s", "-f", "-o", path, url]);
  const download = Number(process.hrtime.bigint() - started) / 1e9;
  const sum = await runCommand("sha256sum", [path]);
  const verified = Number(process.hrtime.bigint() - started) / 1e9;
  if (`1220${sum.split(" ")[0]}` !== checksum) throw new Error("curl: checksum mismatch");
  return { download, verified };
}

/** Samples this process's RSS until stopped; returns the peak. */
function rssSampler(): () => number {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  return () => {
    clearInterval(timer);
    return Math.max(peak, process.memoryUsage().rss);
  };
}

export async function run(opts: { quick: boolean }): Promise<BenchRow[]> {
  // Loaded lazily: the runner requires every bench module, and Node-RED's helper is heavy.
  const { builtNode, configNode, helper, startHelperServer, stopHelperServer, waitFor } = require("../test/helpers/node-red") as typeof import("../test/helpers/node-red");
  const sizes = opts.quick ? [10 * MB] : [10 * MB, 100 * MB, 1024 * MB];
  const roundsFor = (size: number) => (opts.quick ? 3 : size >= 1024 * MB ? 3 : size >= 100 * MB ? 5 : 7);
  const data = block();
  const { url, child } = await startServer();
  const dir = mkdtempSync(join(tmpdir(), "bench-asset-"));
  const rows: BenchRow[] = [];
  await startHelperServer();
  try {
    const fetchNodeDef = (id: string, fsync: boolean) => ({
      id, z: "f1", type: "datasphere-asset-fetch", server: "cfg", directory: join(dir, id), directoryType: "str", layout: "", naming: "key", existing: "overwrite", fsync, wires: [["out"]],
    });
    await helper.load([configNode(), builtNode("datasphere-asset-fetch")], [
      { id: "f1", type: "tab" },
      { id: "cfg", type: "datasphere-config", apiUrl: url, publishUrl: `${url.replace(/^http/, "ws")}/publish/v1/` },
      fetchNodeDef("fsync", true),
      fetchNodeDef("nofsync", false),
      { id: "out", z: "f1", type: "helper" },
    ], { cfg: { token: "bench-token" } });
    const outputs: Array<Record<string, unknown>> = [];
    const errors: string[] = [];
    // Event-driven waiting: a polling wait would add up to its poll period to every measured download.
    let wake: (() => void) | undefined;
    const settled = () => new Promise<void>((resolve) => (wake = resolve));
    helper.getNode("out").on("input", (m: Record<string, unknown>) => {
      outputs.push(m);
      wake?.();
    });
    for (const id of ["fsync", "nofsync"]) {
      helper.getNode(id).on("call:error", (call: { args: unknown[] }) => {
        errors.push(String(call.args[0]));
        wake?.();
      });
    }
    const fetchNode = helper.getNode("fsync");

    async function throughNode(id: string, href: string, size: number, checksum: string): Promise<Sample> {
      global.gc?.();
      const before = process.memoryUsage().rss;
      const stop = rssSampler();
      const started = process.hrtime.bigint();
      const expected = outputs.length + 1;
      const done = settled();
      helper.getNode(id).receive({
        payload: { type: "Feature", stac_version: "1.0.0", id: `bench-${size}`, geometry: null, properties: { datetime: null }, links: [], assets: { data: { href, type: "image/tiff", roles: ["data"], "file:size": size, "file:checksum": checksum } } },
      });
      await done;
      if (outputs.length < expected && errors.length === 0) throw new Error("woken without a result");
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const peak = stop();
      if (errors.length > 0) throw new Error(`node download failed: ${errors[0]}`);
      const files = outputs[outputs.length - 1].files as Array<{ bytes: number; checksum: string; path: string }>;
      if (files[0].bytes !== size || files[0].checksum !== "verified") throw new Error(`node result ${JSON.stringify(files[0])}`);
      rmSync(files[0].path);
      return { seconds, rssGrowthMb: (peak - before) / MB };
    }
    // One untimed warm-up download, so one-time code loading is not counted as memory growth.
    fetchNode.receive({ payload: { type: "Feature", stac_version: "1.0.0", id: "warm-up", geometry: null, properties: { datetime: null }, links: [], assets: { data: { href: `${url}/asset/${MB}`, roles: ["data"] } } } });
    await waitFor(() => outputs.length >= 1 || errors.length > 0, "warm-up download", 60_000);
    if (errors.length > 0) throw new Error(`warm-up failed: ${errors[0]}`);

    for (const size of sizes) {
      const checksum = sha256Multihash(data, size);
      const href = `${url}/asset/${size}`;
      const curlTimes: number[] = [];
      const curlVerifiedTimes: number[] = [];
      const samples: Record<string, Sample[]> = { fsync: [], nofsync: [] };
      for (let round = 0; round < roundsFor(size); round += 1) {
        const curlPath = join(dir, `curl-${size}.bin`);
        const c = await curl(href, curlPath, checksum);
        if (statSync(curlPath).size !== size) throw new Error("curl wrote the wrong size");
        rmSync(curlPath);
        curlTimes.push(c.download);
        curlVerifiedTimes.push(c.verified);
        // Alternate the order of the two node variants from round to round.
        for (const id of round % 2 === 0 ? ["fsync", "nofsync"] : ["nofsync", "fsync"]) samples[id].push(await throughNode(id, href, size, checksum));
      }
      const label = `${Math.round(size / MB)} MB asset`;
      const rate = (times: number[]) => times.map((t) => size / MB / t);
      const curlRate = rate(curlTimes);
      const curlMedian = median(curlRate);
      const verifiedRate = rate(curlVerifiedTimes);
      rows.push({ workload: label, variant: "curl -o (baseline)", value: curlMedian, unit: "MB/s", min: Math.min(...curlRate), max: Math.max(...curlRate), note: `${curlTimes.length} rounds, no verification` });
      rows.push({ workload: label, variant: "curl -o then sha256sum", value: median(verifiedRate), unit: "MB/s", min: Math.min(...verifiedRate), max: Math.max(...verifiedRate), baseline: "curl -o (baseline)", ratio: median(verifiedRate) / curlMedian, note: "download, then verify" });
      for (const [id, variant] of [["nofsync", "asset-fetch node, sha2-256 verified (default: no fsync)"], ["fsync", "asset-fetch node, sha2-256 verified, fsync on"]] as const) {
        const r = rate(samples[id].map((x) => x.seconds));
        rows.push({
          workload: label, variant, value: median(r), unit: "MB/s", min: Math.min(...r), max: Math.max(...r),
          baseline: "curl -o (baseline)", ratio: median(r) / curlMedian,
          peakRssMb: Math.max(...samples[id].map((x) => x.rssGrowthMb)),
          note: "peak RSS = growth over the download's start",
        });
      }
    }
    if (opts.quick && rows.length !== 4) throw new Error("quick run: expected 4 rows");
  } finally {
    await helper.unload().catch(() => undefined);
    await stopHelperServer().catch(() => undefined);
    child.stdin?.end();
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (require.main === module) {
  run({ quick: process.argv.includes("--quick") }).then(
    async (rows) => {
      const { renderTable } = require("./run") as typeof import("./run");
      console.log(renderTable(rows));
      process.exit(0);
    },
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
