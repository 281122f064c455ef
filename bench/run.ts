// `npm run bench [-- --quick]`: runs every bench/*.ts module and prints one table of medians and
// ratios against the baselines measured in the same run.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { BenchModule, BenchRow } from "./bench-row";
import { runAsBenchMain } from "./worker-protocol";

// Only modules that export run(); servers and workers are started by them.
const SKIP = new Set(["run.js", "bench-row.js", "publish-server.js", "asset-server.js", "dataset-worker.js", "subscribe-worker.js"]);

function format(value: number | undefined, digits = 0): string {
  if (value === undefined || Number.isNaN(value)) return "";
  return value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function renderTable(rows: BenchRow[]): string {
  const header = ["workload", "variant", "median", "unit", "min-max", "vs baseline", "ratio", "peak RSS MB", "note"];
  const lines = rows.map((r) => [
    r.workload,
    r.variant,
    format(r.value, r.value < 100 ? 2 : 0),
    r.unit,
    r.min !== undefined && r.max !== undefined ? `${format(r.min, r.min < 100 ? 2 : 0)}-${format(r.max, r.max < 100 ? 2 : 0)}` : "",
    r.baseline ?? "",
    r.ratio !== undefined ? format(r.ratio, 2) : "",
    format(r.peakRssMb),
    r.note ?? "",
  ]);
  const all = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...all.map((l) => l[i].length)));
  const row = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [row(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...lines.map(row)].join("\n");
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length);
  const files = readdirSync(__dirname).filter((f) => f.endsWith(".js") && !SKIP.has(f) && (!only || f.includes(only))).sort();
  const rows: BenchRow[] = [];
  const failures: string[] = [];
  for (const file of files) {
    const mod = require(join(__dirname, file)) as Partial<BenchModule>;
    if (typeof mod.run !== "function") continue;
    const started = Date.now();
    process.stderr.write(`bench ${file}${quick ? " (quick)" : ""}...\n`);
    try {
      rows.push(...(await mod.run({ quick })));
      process.stderr.write(`bench ${file} done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    } catch (error) {
      failures.push(`${file}: ${(error as Error).stack ?? error}`);
    }
  }
  console.log(renderTable(rows));
  if (failures.length) {
    console.error(`\n${failures.length} benchmark(s) failed:\n${failures.join("\n")}`);
    process.exitCode = 1;
  }
}

if (require.main === module) runAsBenchMain(main);
