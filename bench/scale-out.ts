// `npm run build && node build/bench/scale-out.js [--items=60] [--rounds=3] [--mib=4]`
// Throughput of the scale-out pattern (examples scale-out-publisher + scale-out-worker over a real
// Mosquitto): Items downloaded per second with 1 worker (the baseline) and with 3 workers, each a
// Node-RED process, on this machine. Not part of `npm run bench` (it needs mosquitto and starts 6
// Node-RED processes). Prints one table; no timing is asserted anywhere.
import { startSandbox } from "../src/sandbox";
import { startMosquitto } from "../test/helpers/mosquitto";
import { waitFor } from "../test/helpers/wait";
import { startFleet, WorkObserver } from "../test/e2e/scale-out-fleet";
import { median, type BenchRow } from "./bench-row";
import { renderTable } from "./run";
import { runAsBenchMain } from "./worker-protocol";

const LIVE = "sentinel-2-l2a-live";

function arg(name: string, fallback: number): number {
  const value = Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

/** Items per second of `rounds` batches of `items` Items through a fleet of `workers` workers. */
async function measure(workers: number, items: number, rounds: number, mib: number): Promise<number[]> {
  const sandbox = await startSandbox({ port: 0, token: "bench-token", seed: 5, rate: 0, assetSizes: { visual: mib * 1024 * 1024 }, assetVariants: 4 });
  const broker = await startMosquitto();
  const observer = await WorkObserver.connect(broker.port);
  const fleet = await startFleet({ sandbox, broker, workers });
  try {
    await waitFor(() => sandbox.liveSubscriberCount(LIVE) >= 1, "the publisher's subscription", 60_000);
    const batch = async (n: number): Promise<number> => {
      const before = observer.done.length;
      const started = process.hrtime.bigint();
      for (let i = 0; i < n; i++) sandbox.publishLive(LIVE);
      await waitFor(() => observer.done.length - before >= n, `${n} Items done by ${workers} worker(s)`, 600_000, 10);
      return Number(process.hrtime.bigint() - started) / 1e9;
    };
    await batch(workers * 2); // warm-up: connections, JIT, checksums of the bodies
    const rates: number[] = [];
    for (let r = 0; r < rounds; r++) rates.push(items / (await batch(items)));
    return rates;
  } finally {
    await fleet.stop();
    await observer.close();
    await broker.close();
    await sandbox.close();
  }
}

async function main(): Promise<void> {
  const items = arg("items", 60);
  const rounds = arg("rounds", 3);
  const mib = arg("mib", 4);
  const rows: BenchRow[] = [];
  const one = await measure(1, items, rounds, mib);
  const three = await measure(3, items, rounds, mib);
  const base = median(one);
  const note = `${items} Items x ${mib} MiB per round, ${rounds} rounds`;
  rows.push({ workload: "scale-out", variant: "1 worker", value: base, unit: "Items/s", min: Math.min(...one), max: Math.max(...one), note });
  rows.push({
    workload: "scale-out", variant: "3 workers", value: median(three), unit: "Items/s", min: Math.min(...three), max: Math.max(...three),
    baseline: "1 worker", ratio: median(three) / base, note,
  });
  console.log(renderTable(rows));
}

if (require.main === module) runAsBenchMain(main);
