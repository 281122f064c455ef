// Dataset pull: Items/s through datasphere-dataset-pull into a fast downstream node vs the raw
// baseline (undici + StringDecoder + line splitter + JSON.parse) in the same run, at 10k, 100k and 1M
// Items (--quick: 10k), and peak RSS while pulling into a deliberately slow downstream node (goal:
// < 150 MB above the idle runtime).
//   node build/bench/dataset.js [--quick]   (BENCH_DATASET_ROUNDS=n gives --quick more rounds)
// Throughput variants: raw (undici), raw-http (node:http), node (one message per Item), node-arrays
// (output "array", arraySize 100), node-floor. BENCH_DATASET_VARIANTS=raw,raw-http,node-arrays,...
// picks some of them and skips the sandbox and memory workloads (for targeted runs).
// Each measurement runs in its own process (bench/dataset-worker.ts). The server runs here.
import { request } from "undici";
import { startSandbox, type Sandbox } from "../src/sandbox";
import { median, type BenchRow } from "./bench-row";
import type { WorkerInput, WorkerResult } from "./dataset-worker";
import { startReplayServer, type ReplayServer } from "./replay-server";
import { forkBenchWorker } from "./worker-protocol";

const TOKEN = "sandbox-token";
const BIG = "sentinel-2-l2a-1m";
const START = Date.parse("2024-01-01T00:00:00Z");
const STEP = 60_000;
const REPLAY_DISTINCT = 2000;
/** The node's default window. */
const WINDOW = 200;

/** order=old and a `to` bound that selects the first `count` Items of the 1M package. */
function firstItems(count: number): string {
  return count >= 1_000_000 ? "order=old" : `order=old&to=${encodeURIComponent(new Date(START + (count - 1) * STEP).toISOString())}`;
}

function runWorker(input: WorkerInput): Promise<WorkerResult> {
  return forkBenchWorker<WorkerResult>("dataset-worker.js", input, { execArgv: ["--expose-gc"], timeoutMs: 15 * 60_000, label: `bench worker ${input.variant}/${input.sink ?? ""}` });
}

/** Serves sandbox Items (recorded once) again and again from memory: a server that is never the bottleneck. */
export async function startDatasetReplayServer(sb: Sandbox, batchBytes = 64 * 1024): Promise<ReplayServer> {
  const response = await request(`${sb.url}/api/dataset/v1/${BIG}/stream/?${firstItems(REPLAY_DISTINCT)}`, { headers: { authorization: `Token ${TOKEN}` } });
  const text = await response.body.text();
  const lines = text.split("\n").filter((l) => l.length > 0).map((l) => Buffer.from(`${l}\n`));
  if (lines.length !== REPLAY_DISTINCT) throw new Error(`recorded ${lines.length} Items, not ${REPLAY_DISTINCT}`);
  return startReplayServer((req) => ({
    count: Number(/^\/api\/dataset\/v1\/replay-(\d+)\/stream\//.exec(req.url ?? "")?.[1] ?? 0),
    piece: (i) => [lines[i % lines.length]],
  }), batchBytes);
}

function check(result: WorkerResult, expected: number, what: string): WorkerResult {
  if (result.error) throw new Error(`${what}: pull failed: ${result.error}`);
  if (result.items !== expected) throw new Error(`${what}: ${result.items} Items, expected ${expected}`);
  return result;
}

type Variant = WorkerInput["variant"];

const LABELS: Record<Variant, string> = {
  raw: "raw: undici + lines + JSON.parse",
  "raw-http": "raw: node:http + lines + JSON.parse",
  node: `node -> fast sink (window ${WINDOW})`,
  "node-arrays": `node, arrays of 100 (output "array", arraySize 100) -> fast sink (window ${WINDOW} messages)`,
  "node-floor": "floor: minimal Node-RED node (node:http + lines + JSON.parse + send, no window) -> fast sink",
};
/** Measured in alternating rounds against both servers; each node is compared with the faster raw reader. */
const VARIANTS: Variant[] = ["raw", "raw-http", "node", "node-arrays", "node-floor"];

function datasetVariants(): Variant[] {
  const env = process.env.BENCH_DATASET_VARIANTS;
  if (!env) return VARIANTS;
  const picked = env.split(",").map((v) => v.trim()) as Variant[];
  const unknown = picked.filter((v) => !VARIANTS.includes(v));
  if (unknown.length) throw new Error(`BENCH_DATASET_VARIANTS: unknown ${unknown.join(", ")} (use ${VARIANTS.join(", ")})`);
  return picked;
}

/** The rows of one throughput workload: each variant's median, and each node against the faster raw reader and the floor. */
function throughputRows(workload: string, rounds: number, results: Map<Variant, WorkerResult[]>): BenchRow[] {
  const rate = (x: WorkerResult) => x.items / x.seconds;
  const rates = (v: Variant) => results.get(v)?.map(rate) ?? [];
  const measured = (v: Variant) => rates(v).length > 0;
  const seconds = (v: Variant) => median(results.get(v)!.map((x) => x.seconds)).toFixed(1);
  const cpu = (v: Variant) => median(results.get(v)!.map((x) => x.cpuUsPerItem ?? NaN));
  const fastest = (["raw-http", "raw"] as Variant[]).filter(measured).sort((a, b) => median(rates(b)) - median(rates(a)))[0];
  const rows: BenchRow[] = [];
  for (const v of results.keys()) {
    if (!measured(v)) continue;
    const list = rates(v);
    const row: BenchRow = {
      workload,
      variant: LABELS[v],
      value: median(list),
      unit: "Items/s",
      min: Math.min(...list),
      max: Math.max(...list),
      peakRssMb: Math.max(...results.get(v)!.map((x) => x.peakRssMb)),
      note: `${rounds} round(s); ${seconds(v)} s; CPU ${cpu(v).toFixed(0)} us/Item`,
    };
    if (v !== "raw" && v !== "raw-http" && fastest) {
      row.baseline = `fastest raw (${fastest === "raw-http" ? "node:http" : "undici"})`;
      row.ratio = row.value / median(rates(fastest));
      row.note += `, ${(cpu(v) / cpu(fastest)).toFixed(2)} x fastest raw`;
      if (v === "node-floor") row.note += ": what Node-RED's delivery costs any node";
      else {
        row.note += ` (goal <= 1.3); goal >= 0.9; flow control: ${results.get(v)![0].flowControl}`;
        if (v === "node-arrays") row.note += `; ${median(results.get(v)!.map((x) => x.items / (x.messages ?? NaN))).toFixed(1)} Items per message`;
        if (measured("node-floor")) row.note += `; ${(row.value / median(rates("node-floor"))).toFixed(2)} x the minimal Node-RED node, CPU ${(cpu(v) / cpu("node-floor")).toFixed(2)} x`;
      }
    }
    rows.push(row);
  }
  return rows;
}

export async function run(opts: { quick: boolean }): Promise<BenchRow[]> {
  const quick = opts.quick;
  const rows: BenchRow[] = [];
  const sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs: 0, keepAliveMs: 0 });
  const replay = await startDatasetReplayServer(sb);
  const perLine = await startDatasetReplayServer(sb, 0);
  try {
    // 1. Throughput and its growth: raw baseline vs the node into a fast sink, alternating rounds,
    // replay server, at 10k, 100k and 1M Items (time should grow linearly, peak RSS stay flat).
    const plan: Array<{ n: number; rounds: number }> = quick
      ? [{ n: 10_000, rounds: Number(process.env.BENCH_DATASET_ROUNDS ?? 2) }]
      : [
          { n: 10_000, rounds: 5 },
          { n: 100_000, rounds: 5 },
          { n: 1_000_000, rounds: 1 },
        ];
    const rate = (x: WorkerResult) => x.items / x.seconds;
    const variants = datasetVariants();
    const servers = [
      { kind: "batched server (64 KiB writes)", url: replay.url },
      { kind: "one line per write", url: perLine.url },
    ];
    for (const { kind, url } of servers) for (const { n, rounds } of plan) {
      const results = new Map<Variant, WorkerResult[]>(variants.map((v) => [v, []]));
      const replayInput = { apiUrl: url, token: TOKEN, package: `replay-${n}`, query: "order=old" };
      for (let r = 0; r < rounds; r++) {
        for (const variant of r % 2 === 0 ? variants : [...variants].reverse()) {
          const input: WorkerInput = { ...replayInput, variant };
          if (variant !== "raw" && variant !== "raw-http") input.sink = "fast";
          if (variant === "node" || variant === "node-arrays") input.window = WINDOW;
          results.get(variant)!.push(check(await runWorker(input), n, variant));
        }
      }
      const workload = `stream ${n.toLocaleString("en-US")} Items, ${kind} (${REPLAY_DISTINCT} sandbox Items replayed from memory)`;
      rows.push(...throughputRows(workload, rounds, results));
    }

    // 2. The same from the sandbox itself (it generates each Item: usually the bottleneck).
    if (!quick && !process.env.BENCH_DATASET_VARIANTS) {
      const m = 100_000;
      const sbInput = { apiUrl: sb.url, token: TOKEN, package: BIG, query: firstItems(m) };
      const sbRaw = check(await runWorker({ ...sbInput, variant: "raw" }), m, "sandbox raw");
      const sbNode = check(await runWorker({ ...sbInput, variant: "node", sink: "fast", window: WINDOW }), m, "sandbox node");
      const w = `stream ${m.toLocaleString("en-US")} Items from the sandbox`;
      rows.push({ workload: w, variant: "raw: undici + lines + JSON.parse", value: rate(sbRaw), unit: "Items/s", peakRssMb: sbRaw.peakRssMb, note: "1 round; the sandbox generating Items is the limit" });
      rows.push({ workload: w, variant: `node -> fast sink (window ${WINDOW})`, value: rate(sbNode), unit: "Items/s", baseline: "raw", ratio: rate(sbNode) / rate(sbRaw), peakRssMb: sbNode.peakRssMb, note: "1 round" });
    }

    // 3. Memory: the whole package through the node into a slow sink (clones each message, waits).
    if (process.env.BENCH_DATASET_VARIANTS) return rows;
    const big = quick ? 10_000 : 1_000_000;
    const slow = check(await runWorker({ variant: "node", sink: "slow", window: WINDOW, apiUrl: sb.url, token: TOKEN, package: BIG, query: firstItems(big) }), big, "node slow");
    rows.push({
      workload: `stream ${big.toLocaleString("en-US")} sandbox Items into a slow sink (clone + wait)`,
      variant: `node, window ${WINDOW}: peak RSS above idle`,
      value: slow.peakRssMb - slow.idleRssMb,
      unit: "MB",
      peakRssMb: slow.peakRssMb,
      note: `goal < 150 MB; idle ${slow.idleRssMb.toFixed(0)} MB; peak heap ${slow.peakHeapMb?.toFixed(0)} MB, retained after GC ${slow.retainedHeapMb?.toFixed(1)} MB; ${Math.round(rate(slow))} Items/s (the sink's pace)`,
    });

    // 4. Contrast: no effective window (1e9), same slow sink, fewer Items (it grows without bound).
    const u = quick ? 10_000 : 40_000;
    const unbounded = check(await runWorker({ variant: "node", sink: "slow", window: 1e9, apiUrl: replay.url, token: TOKEN, package: `replay-${u}`, query: "order=old" }), u, "node unbounded");
    rows.push({
      workload: `stream ${u.toLocaleString("en-US")} Items into the slow sink, no window`,
      variant: "node, window 1e9 (unbounded): peak RSS above idle",
      value: unbounded.peakRssMb - unbounded.idleRssMb,
      unit: "MB",
      peakRssMb: unbounded.peakRssMb,
      note: `contrast: what the window prevents; grows with the Item count; peak heap ${unbounded.peakHeapMb?.toFixed(0)} MB`,
    });
  } finally {
    await replay.close();
    await perLine.close();
    await sb.close();
  }
  return rows;
}

if (require.main === module) {
  const quick = process.argv.includes("--quick");
  run({ quick }).then(
    (rows) => {
      for (const r of rows) {
        const fmt = (v?: number) => (v === undefined ? "" : v.toLocaleString("en-US", { maximumFractionDigits: v < 100 ? 2 : 0 }));
        console.log(`${r.workload} | ${r.variant} | ${fmt(r.value)} ${r.unit}${r.min !== undefined ? ` (${fmt(r.min)}-${fmt(r.max)})` : ""}${r.ratio !== undefined ? ` | ratio ${r.ratio.toFixed(2)} vs ${r.baseline}` : ""} | peak RSS ${fmt(r.peakRssMb)} MB | ${r.note ?? ""}`);
      }
    },
    (error) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
