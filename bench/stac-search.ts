// STAC search: Items/s through datasphere-stac-search into a fast downstream node, and through the
// core client alone, vs the raw baseline (undici + JSON.parse of the same pages, following the next
// links) in the same run. Pages of 500 Items: recorded once from the sandbox's STAC API and replayed
// from memory (the server is never the bottleneck), and read from the sandbox itself.
//   node build/bench/stac-search.js [--quick]
// Each measurement runs in its own process (bench/stac-search-worker.ts). The servers run here.
import { request } from "undici";
import { startSandbox } from "../src/sandbox";
import { startReplayStacApi, type ReplayStacApi } from "../test/helpers/replay-stac-api";
import { median, type BenchRow } from "./bench-row";
import type { StacWorkerInput, StacWorkerResult } from "./stac-search-worker";
import { forkBenchWorker } from "./worker-protocol";

const LIMIT = 500;
const DISTINCT_PAGES = 10;
const COLLECTION = "sentinel-2-l2a-bench";

async function runWorker(input: StacWorkerInput): Promise<StacWorkerResult> {
  const result = await forkBenchWorker<StacWorkerResult>("stac-search-worker.js", input, { timeoutMs: 15 * 60_000, label: `stac bench worker ${input.variant}` });
  if (result.error) throw new Error(`stac bench worker ${input.variant}: ${result.error}`);
  return result;
}

/** A STAC API serving `pages` pages: the recorded ones in turn, each with a next link to the following page. */
function startReplayApi(recorded: string[], pages: number): Promise<ReplayStacApi> {
  const bodies = recorded.map((text) => {
    const doc = JSON.parse(text) as { features: unknown[] };
    return JSON.stringify({ type: "FeatureCollection", features: doc.features, links: "__LINKS__" });
  });
  return startReplayStacApi((page, base) => {
    const links = page + 1 < pages ? `[{"rel":"next","method":"GET","href":"${base}/search?collections=${COLLECTION}&limit=${LIMIT}&page=${page + 1}"}]` : "[]";
    return bodies[page % bodies.length].replace('"__LINKS__"', links);
  });
}

export async function run(opts: { quick: boolean }): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const sb = await startSandbox({ port: 0, seed: 1, rate: 0, heartbeatMs: 0, keepAliveMs: 0 });
  sb.addDataset("stac-bench", { count: 200_000, collection: COLLECTION, stepMs: 60_000 });
  const recorded: string[] = [];
  let href: string | undefined = `${sb.stacApi.url}search?collections=${COLLECTION}&limit=${LIMIT}`;
  while (href && recorded.length < DISTINCT_PAGES) {
    const text: string = await (await request(href)).body.text();
    recorded.push(text);
    href = (JSON.parse(text) as { links: Array<{ rel: string; href: string }> }).links.find((l) => l.rel === "next")?.href;
  }
  const items = opts.quick ? 20_000 : 100_000;
  const replay = await startReplayApi(recorded, items / LIMIT);
  try {
    const rounds = opts.quick ? 1 : 3;
    const input = { apiUrl: replay.url, searchUrl: `${replay.url}search?collections=${COLLECTION}&limit=${LIMIT}`, collections: COLLECTION, limit: LIMIT, window: 200 };
    const results: Record<"raw" | "core" | "node", StacWorkerResult[]> = { raw: [], core: [], node: [] };
    for (let r = 0; r < rounds; r++) {
      const order: Array<"raw" | "core" | "node"> = r % 2 === 0 ? ["raw", "core", "node"] : ["node", "core", "raw"];
      for (const variant of order) {
        const result = await runWorker({ ...input, variant });
        if (result.items !== items) throw new Error(`${variant}: ${result.items} Items, expected ${items}`);
        results[variant].push(result);
      }
    }
    const rate = (x: StacWorkerResult) => x.items / x.seconds;
    const rawRate = median(results.raw.map(rate));
    const rawCpu = median(results.raw.map((x) => x.cpuUsPerItem));
    const workload = `stac search ${items.toLocaleString("en-US")} Items, pages of ${LIMIT} (${DISTINCT_PAGES} sandbox pages replayed from memory)`;
    const row = (variant: string, list: StacWorkerResult[], baseline?: boolean, note = ""): BenchRow => {
      const rates = list.map(rate);
      const cpu = median(list.map((x) => x.cpuUsPerItem));
      const cpuNote = `; CPU ${cpu.toFixed(1)} us/Item${baseline ? ` (${(cpu / rawCpu).toFixed(2)}x raw)` : ""}`;
      return {
        workload, variant, value: median(rates), unit: "Items/s", min: Math.min(...rates), max: Math.max(...rates), peakRssMb: Math.max(...list.map((x) => x.peakRssMb)),
        ...(baseline ? { baseline: "raw", ratio: median(rates) / rawRate } : {}), note: `${rounds} round(s)${cpuNote}${note}`,
      };
    };
    rows.push(row("raw: undici + JSON.parse, next links", results.raw));
    rows.push(row("core: StacApiClient.items()", results.core, true));
    rows.push(row("node -> fast sink (window 200)", results.node, true, `; goal >= 0.80; flow control: ${results.node[0].flowControl}`));

    if (!opts.quick) {
      const fromSandbox = 20_000;
      const sbInput = { apiUrl: sb.stacApi.url, searchUrl: `${sb.stacApi.url}search?collections=sentinel-2-l2a-sample&limit=${LIMIT}`, collections: "sentinel-2-l2a-sample", limit: LIMIT };
      sb.addDataset("sample-20k", { count: fromSandbox, collection: "sentinel-2-l2a-sample", stepMs: 60_000 });
      const sbRaw = await runWorker({ ...sbInput, variant: "raw" });
      const sbNode = await runWorker({ ...sbInput, variant: "node", window: 200 });
      const w = `stac search ${fromSandbox.toLocaleString("en-US")} Items from the sandbox's STAC API`;
      rows.push({ workload: w, variant: "raw: undici + JSON.parse, next links", value: rate(sbRaw), unit: "Items/s", peakRssMb: sbRaw.peakRssMb, note: "1 round; the sandbox generating Items is the limit" });
      rows.push({ workload: w, variant: "node -> fast sink (window 200)", value: rate(sbNode), unit: "Items/s", baseline: "raw", ratio: rate(sbNode) / rate(sbRaw), peakRssMb: sbNode.peakRssMb, note: "1 round" });
    }
  } finally {
    replay.close();
    await sb.close();
  }
  return rows;
}

if (require.main === module) {
  run({ quick: process.argv.includes("--quick") }).then(
    (rows) => {
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
