// Subscribe: Items/s through datasphere-subscribe-in into a downstream node in a real Node-RED
// runtime (one message per Item, and in its arrays mode: arrays of up to 100 Items), next to (same run, alternating rounds): reading and discarding the bytes (the I/O
// ceiling), JSON.parse alone on the same Items (the CPU floor, fresh strings, only the parse timed;
// also the old hot-cache variant on request), the raw readers (our SSE parser + JSON.parse over
// undici request, node:http and undici dispatch: each node is compared with the fastest of them),
// the `eventsource` package and undici's EventSource. Against two servers: 64 KiB batched writes,
// and one event per write (a live server flushing each event). At 10k and 100k Items (--quick: 10k,
// one round).
//   node build/bench/subscribe.js [--quick]
// Each measurement runs in its own process (bench/subscribe-worker.ts). The SSE server runs here and
// serves sandbox Items (3-12 KB, recorded once, encoded once) from memory.
// BENCH_SUBSCRIBE_VARIANTS=raw,raw-http,... picks other variants (bytes-http and raw-http use node:http);
// BENCH_SUBSCRIBE_ROUNDS=n gives --quick more rounds, BENCH_SUBSCRIBE_COUNT=n more Items (default 10,000).
import { request } from "undici";
import { startSandbox } from "../src/sandbox";
import { median, type BenchRow } from "./bench-row";
import type { Variant, WorkerInput, WorkerResult } from "./subscribe-worker";
import { startReplayServer, type ReplayServer } from "./replay-server";
import { forkBenchWorker } from "./worker-protocol";

const TOKEN = "sandbox-token";
const DISTINCT = 1000;

/** Sandbox Items resized to 3-12 KB (assets removed to shrink, a padding property to grow). */
export async function recordItems(): Promise<string[]> {
  const sb = await startSandbox({ port: 0, token: TOKEN, seed: 1, rate: 0, heartbeatMs: 0, keepAliveMs: 0 });
  try {
    const to = new Date(Date.parse("2024-01-01T00:00:00Z") + (DISTINCT - 1) * 60_000).toISOString();
    const response = await request(`${sb.url}/api/dataset/v1/sentinel-2-l2a-1m/stream/?order=old&to=${encodeURIComponent(to)}`, { headers: { authorization: `Token ${TOKEN}` } });
    const lines = (await response.body.text()).split("\n").filter((l) => l.length > 0);
    return lines.map((line, i) => {
      const target = 3000 + ((i * 7919) % 9000);
      const item = JSON.parse(line) as { assets: Record<string, unknown>; properties: Record<string, unknown> };
      for (const key of Object.keys(item.assets)) {
        if (JSON.stringify(item).length <= target) break;
        delete item.assets[key];
      }
      const length = JSON.stringify(item).length;
      if (length + 16 < target) item.properties["bench:pad"] = "x".repeat(target - length - 16);
      return JSON.stringify(item);
    });
  } finally {
    await sb.close();
  }
}

/**
 * `/subscription/v1/?package=replay-<n>`: n SSE events (ids 1..n) in ~64 KiB writes, then the end.
 * Items are encoded once; each write is one Buffer.concat, so the server (its own process) stays far
 * above what any reader here can take (see the "read and discard" row).
 */
export async function startSseReplayServer(items: string[], batchBytes = 64 * 1024): Promise<ReplayServer> {
  const encoded = items.map((item) => Buffer.from(`data: ${item}\n\n`));
  return startReplayServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const count = Number(/^replay-(\d+)$/.exec(url.searchParams.get("package") ?? "")?.[1] ?? 0);
    if (req.headers.authorization !== `Token ${TOKEN}`) {
      res.writeHead(401).end();
      return null;
    }
    return { count, piece: (i) => [Buffer.from(`id: ${i + 1}\n`, "latin1"), encoded[i % encoded.length]] };
  }, batchBytes);
}

function runWorker(input: WorkerInput): Promise<WorkerResult> {
  // A stuck worker fails the run (naming the variant) instead of holding it: 120 s, or 250 Items/s.
  return forkBenchWorker<WorkerResult>("subscribe-worker.js", input, { execArgv: ["--expose-gc", "--no-warnings"], timeoutMs: Math.max(120_000, input.count * 4), label: `bench worker ${input.variant} (${input.count} Items)` });
}

const LABELS: Record<Variant, string> = {
  bytes: "read and discard the bytes (undici; the ceiling)",
  "bytes-http": "read and discard the bytes (node:http)",
  json: "JSON.parse alone on the same Items (CPU floor; fresh strings, only parse timed)",
  "json-hot": "JSON.parse re-parsing 1,000 hot strings (the old, unfair floor)",
  raw: "raw: undici + our SSE parser + JSON.parse",
  "raw-http": "node:http + our SSE parser + JSON.parse",
  "raw-dispatch": "undici dispatch + our SSE parser + JSON.parse",
  core: "core: our Subscription class, no Node-RED",
  eventsource: "eventsource package + JSON.parse",
  "undici-es": "undici EventSource + JSON.parse",
  node: "node: subscribe-in -> downstream node (Node-RED)",
  "node-arrays": "node, arrays of 100: subscribe-in (Messages: arrays of up to 100 Items) -> downstream node",
  memory: "in memory: our SSE parser + JSON.parse on the bytes already read (no socket)",
  "node-floor": "floor: minimal Node-RED node (node:http + our parser + JSON.parse + send) -> downstream node",
  "raw-in-runtime": "node:http + our SSE parser + JSON.parse in a process hosting an idle Node-RED runtime (no messages)",
};

/** Every variant at 10k and 100k Items; the slow peers sit out the 1M round (minutes each, nothing new). */
const VARIANTS: Variant[] = ["bytes", "json", "memory", "raw", "raw-http", "raw-dispatch", "raw-in-runtime", "core", "node", "node-arrays", "node-floor", "eventsource", "undici-es"];
const VARIANTS_1M: Variant[] = ["bytes", "json", "memory", "raw", "raw-http", "raw-dispatch", "raw-in-runtime", "core", "node", "node-arrays", "node-floor", "eventsource"];
/** The raw readers: each node is compared with the fastest of them in the same run. */
const RAW: Variant[] = ["raw", "raw-http", "raw-dispatch"];

function variantsFor(count: number): Variant[] {
  const env = process.env.BENCH_SUBSCRIBE_VARIANTS;
  if (env) return env.split(",").map((v) => v.trim()) as Variant[];
  return count >= 1_000_000 ? VARIANTS_1M : VARIANTS;
}

/** One workload: `rounds` rounds, each running every variant once (order reversed every other round). */
async function measure(serverUrl: string, count: number, rounds: number, avgKb: number, serverKind: string): Promise<BenchRow[]> {
  const variants = variantsFor(count);
  const results = new Map<Variant, WorkerResult[]>(variants.map((v) => [v, []]));
  const skipped = new Map<Variant, string>();
  const pkg = `replay-${count}`;
  const input = { url: `${serverUrl}/subscription/v1/?package=${pkg}`, apiUrl: serverUrl, pkg, token: TOKEN, count };
  for (let r = 0; r < rounds; r++) {
    for (const variant of r % 2 === 0 ? variants : [...variants].reverse()) {
      if (skipped.has(variant)) continue;
      const result = await runWorker({ ...input, variant });
      if (result.skipped) {
        skipped.set(variant, result.skipped);
        continue;
      }
      if (result.items !== count) throw new Error(`subscribe ${variant}: ${result.items} Items, expected ${count}`);
      results.get(variant)!.push(result);
    }
  }
  const workload = `subscribe ${count.toLocaleString("en-US")} Items, ${serverKind} (${DISTINCT} sandbox Items, 3-12 KB, avg ${avgKb.toFixed(1)} KB)`;
  const rate = (x: WorkerResult) => x.items / x.seconds;
  const medians = new Map<Variant, number>();
  for (const v of variants) if (results.get(v)!.length) medians.set(v, median(results.get(v)!.map(rate)));
  const floor = medians.get("json");
  const cpu = (v: Variant) => median(results.get(v)!.map((x) => x.cpuUsPerItem ?? NaN));
  const fastestRaw = RAW.filter((v) => medians.has(v)).sort((a, b) => medians.get(b)! - medians.get(a)!)[0];
  const rows: BenchRow[] = [];
  for (const v of variants) {
    const list = results.get(v)!;
    if (list.length === 0) {
      rows.push({ workload, variant: LABELS[v], value: NaN, unit: "Items/s", note: `skipped: ${skipped.get(v)}` });
      continue;
    }
    const rates = list.map(rate);
    const row: BenchRow = {
      workload,
      variant: LABELS[v],
      value: medians.get(v)!,
      unit: "Items/s",
      min: Math.min(...rates),
      max: Math.max(...rates),
      peakRssMb: Math.max(...list.map((x) => x.peakRssMb)),
      note: `${list.length} round(s)`,
    };
    if (v !== "json" && floor) {
      row.baseline = "JSON.parse alone";
      row.ratio = medians.get(v)! / floor;
    }
    if (v === "json") row.note += "; RSS holds a batch of 10,000 fresh strings";
    row.note += `; CPU ${cpu(v).toFixed(0)} us/Item`;
    if ((v === "node" || v === "node-arrays" || v === "core" || v === "node-floor" || v === "raw-in-runtime") && fastestRaw) {
      const es = medians.get("eventsource");
      const raw = medians.get(fastestRaw)!;
      const floorNode = medians.get("node-floor");
      row.note +=
        `; ${(medians.get(v)! / raw).toFixed(2)} x fastest raw (${fastestRaw}; goal >= 0.9)` +
        `; CPU/Item ${(cpu(v) / cpu(fastestRaw)).toFixed(2)} x raw (goal <= 1.3)` +
        (es ? `; ${(medians.get(v)! / es).toFixed(2)} x eventsource (goal >= 1.5)` : "") +
        (v === "node-arrays" ? `; ${(count / median(list.map((x) => x.messages ?? NaN))).toFixed(1)} Items per message` : "") +
        ((v === "node" || v === "node-arrays") && floorNode ? `; ${(medians.get(v)! / floorNode).toFixed(2)} x the minimal Node-RED node, CPU ${(cpu(v) / cpu("node-floor")).toFixed(2)} x` : "");
    }
    rows.push(row);
  }
  return rows;
}

export async function run(opts: { quick: boolean }): Promise<BenchRow[]> {
  const items = await recordItems();
  const avgKb = items.reduce((n, s) => n + s.length, 0) / items.length / 1024;
  const servers = [
    { kind: "batched server (64 KiB writes)", server: await startSseReplayServer(items) },
    { kind: "one event per write", server: await startSseReplayServer(items, 0) },
  ];
  // Cost growth: time should grow linearly with the count, peak RSS stay flat.
  const plan: Array<{ count: number; rounds: number }> = opts.quick
    ? [{ count: Number(process.env.BENCH_SUBSCRIBE_COUNT ?? 10_000), rounds: Number(process.env.BENCH_SUBSCRIBE_ROUNDS ?? 1) }]
    : [
        { count: 10_000, rounds: 5 },
        { count: 100_000, rounds: 3 },
      ];
  const rows: BenchRow[] = [];
  try {
    for (const { kind, server } of servers) for (const { count, rounds } of plan) rows.push(...(await measure(server.url, count, rounds, avgKb, kind)));
  } finally {
    for (const { server } of servers) await server.close();
  }
  return rows;
}

if (require.main === module) {
  const quick = process.argv.includes("--quick");
  run({ quick }).then(
    (rows) => {
      const fmt = (v?: number) => (v === undefined || Number.isNaN(v) ? "-" : v.toLocaleString("en-US", { maximumFractionDigits: v < 100 ? 2 : 0 }));
      for (const r of rows) {
        console.log(`${r.workload} | ${r.variant} | ${fmt(r.value)} ${r.unit}${r.min !== undefined ? ` (${fmt(r.min)}-${fmt(r.max)})` : ""}${r.ratio !== undefined ? ` | ratio ${r.ratio.toFixed(2)} vs ${r.baseline}` : ""} | peak RSS ${fmt(r.peakRssMb)} MB | ${r.note ?? ""}`);
      }
    },
    (error) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
