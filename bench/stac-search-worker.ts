// One measurement of bench/stac-search.ts, in its own process so that its RSS is its own:
//   raw:  undici request + body.text() + JSON.parse, following the rel=next hrefs (the baseline)
//   core: StacApiClient (landing page, conformance, pages) iterating every Item
//   node: a real Node-RED runtime embedded here running datasphere-stac-search into a fast sink
// Input: one JSON argument. Output: one JSON line on stdout.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { ApiAuth, normalizeSearch, StacApiClient } from "../src/core/stac-search";
import { repoRoot } from "../test/helpers/paths";
import { triggerNodeJs, waitForTrigger, writeBenchNodeSet } from "./bench-node-set";
import { startEmbeddedNodeRed } from "./embedded-node-red";
import { startProfiler } from "./cpu-profile";
import { runAsBenchWorker } from "./worker-protocol";

export interface StacWorkerInput {
  variant: "raw" | "core" | "node";
  /** The STAC API landing page. */
  apiUrl: string;
  /** The first search URL (raw) and the same search as parameters (core, node). */
  searchUrl: string;
  collections: string;
  limit: number;
  window?: number;
}

export interface StacWorkerResult {
  items: number;
  seconds: number;
  peakRssMb: number;
  /** CPU time (user + system, all threads) of the measured section per Item, in microseconds. */
  cpuUsPerItem: number;
  flowControl?: string;
  error?: string;
}

/** Samples peak RSS and CPU time from now; stop() gives the section's figures for `items` Items. */
function sampler(): (items: number) => { peakRssMb: number; cpuUsPerItem: number } {
  let peak = process.memoryUsage.rss();
  const cpu = process.cpuUsage();
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  return (items) => {
    clearInterval(timer);
    const used = process.cpuUsage(cpu);
    return { peakRssMb: Math.max(peak, process.memoryUsage.rss()) / 1048576, cpuUsPerItem: (used.user + used.system) / Math.max(1, items) };
  };
}

async function runRaw(input: StacWorkerInput): Promise<StacWorkerResult> {
  const stopProfiler = await startProfiler("stac-raw");
  const stop = sampler();
  const started = process.hrtime.bigint();
  let items = 0;
  let href: string | undefined = input.searchUrl;
  while (href) {
    const response = await request(href, { headers: { accept: "application/geo+json" } });
    const doc = JSON.parse(await response.body.text()) as { features: unknown[]; links?: Array<{ rel: string; href: string }> };
    items += doc.features.length;
    if (doc.features.length === 0) break;
    href = doc.links?.find((l) => l.rel === "next")?.href;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const measured = stop(items);
  await stopProfiler?.();
  return { items, seconds, ...measured };
}

async function runCore(input: StacWorkerInput): Promise<StacWorkerResult> {
  const stopProfiler = await startProfiler("stac-core");
  const stop = sampler();
  const started = process.hrtime.bigint();
  const api = new StacApiClient({ url: input.apiUrl, auth: new ApiAuth(input.apiUrl, "none", "") });
  let items = 0;
  for await (const item of api.items({ params: normalizeSearch({ collections: input.collections, limit: input.limit }), method: "GET" })) if (item) items++;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const measured = stop(items);
  await stopProfiler?.();
  return { items, seconds, ...measured };
}

const BENCH_NODES_JS = `
module.exports = function (RED) {
  const bench = globalThis.__stacBench;
  ${triggerNodeJs("stac-bench-trigger")}
  RED.nodes.registerType("stac-bench-sink", function (def) {
    RED.nodes.createNode(this, def);
    this.on("input", (msg, send, done) => { bench.count++; done(); });
  });
  RED.nodes.registerType("stac-bench-done", function (def) {
    RED.nodes.createNode(this, def);
    this.on("input", (msg, send, done) => { bench.finished(msg); done(); });
  });
};
`;

async function runNode(input: StacWorkerInput): Promise<StacWorkerResult> {
  const bench = { count: 0, trigger: undefined as undefined | ((msg: unknown) => void), finished: (_msg: any) => {} };
  (globalThis as Record<string, unknown>).__stacBench = bench;
  const userDir = mkdtempSync(join(tmpdir(), "ds-stac-bench-"));
  const benchNodes = writeBenchNodeSet(userDir, "stac-bench-nodes", BENCH_NODES_JS, ["stac-bench-trigger", "stac-bench-sink", "stac-bench-done"]);
  const flows = [
    { id: "tab", type: "tab", label: "bench" },
    { id: "cfg", type: "datasphere-stac-api", url: input.apiUrl, authMode: "none" },
    { id: "trigger", type: "stac-bench-trigger", z: "tab", wires: [["search"]] },
    { id: "search", type: "datasphere-stac-search", z: "tab", server: "cfg", collections: input.collections, collectionsType: "str", limit: String(input.limit), limitType: "num", window: input.window ?? 200, wires: [["sink"], ["fin"]] },
    { id: "sink", type: "stac-bench-sink", z: "tab", wires: [] },
    { id: "fin", type: "stac-bench-done", z: "tab", wires: [] },
  ];
  const RED = await startEmbeddedNodeRed({ userDir, flows, token: "", nodesDir: [benchNodes, join(repoRoot, "nodes")] });
  const trigger = await waitForTrigger(bench);
  const stopProfiler = await startProfiler("stac-node");
  const stop = sampler();
  const started = process.hrtime.bigint();
  const completion = new Promise<any>((resolve) => (bench.finished = resolve));
  trigger({});
  const done = await completion;
  while (bench.count < done.payload.items) await new Promise((r) => setTimeout(r, 5));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const measured = stop(bench.count);
  await stopProfiler?.();
  await RED.stop();
  rmSync(userDir, { recursive: true, force: true });
  return { items: bench.count, seconds, ...measured, flowControl: done.payload.flowControl, error: done.payload.error ? `${done.payload.error.code}: ${done.payload.error.message}` : undefined };
}

if (require.main === module) {
  runAsBenchWorker((input: StacWorkerInput) => (input.variant === "raw" ? runRaw(input) : input.variant === "core" ? runCore(input) : runNode(input)));
}
