/**
 * Peak RSS of a sandbox child process while a client reads a whole dataset stream: memory must stay
 * flat however many Items the package has (1,000,000 in the full run). Not a timed test.
 *
 *   node build/bench/sandbox-memory.js [--quick]
 */
import { fork, type ChildProcess } from "node:child_process";
import { request } from "undici";
import { startSandbox } from "../src/sandbox";
import { median, type BenchRow } from "./bench-row";

type ChildMessage = { type: "ready"; url: string } | { type: "peak"; peakRss: number; rss: number };

const TOKEN = "sandbox-token";
const MB = 1024 * 1024;

/** In the child: a sandbox with the two packages, sampling its own RSS. */
async function child(): Promise<void> {
  const sb = await startSandbox({ port: 0, token: TOKEN, rate: 0 });
  const small = Number(process.argv[3]);
  const large = Number(process.argv[4]);
  sb.addDataset("bench-small", { count: small, stepMs: 60_000 });
  sb.addDataset("bench-large", { count: large, stepMs: 60_000 });
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  process.on("message", (message: { type: string }) => {
    if (message.type === "peak") {
      const rss = process.memoryUsage().rss;
      peak = Math.max(peak, rss);
      process.send?.({ type: "peak", peakRss: peak, rss } satisfies ChildMessage);
      peak = rss;
    } else if (message.type === "stop") {
      clearInterval(timer);
      void sb.close().then(() => process.exit(0));
    }
  });
  process.send?.({ type: "ready", url: sb.url } satisfies ChildMessage);
}

function nextMessage<T extends ChildMessage["type"]>(proc: ChildProcess, type: T): Promise<Extract<ChildMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ChildMessage) => {
      if (message.type !== type) return;
      proc.off("message", onMessage);
      proc.off("exit", onExit);
      resolve(message as Extract<ChildMessage, { type: T }>);
    };
    const onExit = (code: number | null) => reject(new Error(`sandbox child exited (${code}) before "${type}"`));
    proc.on("message", onMessage);
    proc.once("exit", onExit);
  });
}

async function peakOf(proc: ChildProcess): Promise<{ peakRss: number; rss: number }> {
  const answer = nextMessage(proc, "peak");
  proc.send({ type: "peak" });
  return answer;
}

/** Reads the whole stream, counting lines; returns count and seconds. */
async function readStream(url: string): Promise<{ count: number; seconds: number; bytes: number }> {
  const started = process.hrtime.bigint();
  const response = await request(url, { headers: { authorization: `Token ${TOKEN}` } });
  if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}`);
  let count = 0;
  let bytes = 0;
  for await (const chunk of response.body) {
    const buf = chunk as Buffer;
    bytes += buf.length;
    let at = -1;
    while ((at = buf.indexOf(10, at + 1)) >= 0) count++;
  }
  return { count, bytes, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

export async function run(opts: { quick: boolean }): Promise<BenchRow[]> {
  const small = opts.quick ? 2_000 : 10_000;
  const large = opts.quick ? 20_000 : 1_000_000;
  const rounds = opts.quick ? 3 : 1;
  const proc = fork(__filename, ["--child", String(small), String(large)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  try {
    const { url } = await nextMessage(proc, "ready");
    await new Promise((r) => setTimeout(r, 200));
    const idle = await peakOf(proc);
    const smallPeaks: number[] = [];
    const largePeaks: number[] = [];
    const largeRates: number[] = [];
    const smallRates: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // Alternate which goes first so warm-up does not favour one side.
      const order = round % 2 === 0 ? ["small", "large"] : ["large", "small"];
      for (const which of order) {
        const count = which === "small" ? small : large;
        const result = await readStream(`${url}/api/dataset/v1/bench-${which}/stream/`);
        if (result.count !== count) throw new Error(`read ${result.count} Items of bench-${which}, expected ${count}`);
        const { peakRss } = await peakOf(proc);
        (which === "small" ? smallPeaks : largePeaks).push(peakRss);
        (which === "small" ? smallRates : largeRates).push(result.count / result.seconds);
      }
    }
    const idleMb = idle.peakRss / MB;
    const smallMb = median(smallPeaks) / MB;
    const largeMb = median(largePeaks) / MB;
    const spread = (values: number[]) => ({ min: round1(Math.min(...values) / MB), max: round1(Math.max(...values) / MB) });
    return [
      { workload: "sandbox idle", variant: "child RSS", value: round1(idleMb), unit: "MB", peakRssMb: round1(idleMb) },
      {
        workload: `stream ${small.toLocaleString("en")} Items`, variant: "sandbox child peak RSS", value: round1(smallMb), unit: "MB",
        baseline: "idle sandbox", ratio: round2(smallMb / idleMb), peakRssMb: round1(smallMb), ...spread(smallPeaks), note: `${rounds} round(s)`,
      },
      {
        workload: `stream ${large.toLocaleString("en")} Items`, variant: "sandbox child peak RSS", value: round1(largeMb), unit: "MB",
        baseline: `stream ${small.toLocaleString("en")} Items`, ratio: round2(largeMb / smallMb), peakRssMb: round1(largeMb), ...spread(largePeaks),
        note: `${rounds} round(s); flat memory = ratio near 1`,
      },
      {
        workload: `stream ${large.toLocaleString("en")} Items`, variant: "Items/s (client and child on one machine)", value: Math.round(median(largeRates)), unit: "Items/s",
        baseline: `stream ${small.toLocaleString("en")} Items`, ratio: round2(median(largeRates) / median(smallRates)),
        min: Math.round(Math.min(...largeRates)), max: Math.round(Math.max(...largeRates)),
      },
    ];
  } finally {
    if (proc.connected) proc.send({ type: "stop" });
    if (proc.exitCode === null) await new Promise((r) => {
      const kill = setTimeout(() => proc.kill(), 5000);
      proc.once("exit", () => {
        clearTimeout(kill);
        r(undefined);
      });
    });
  }
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

if (require.main === module) {
  if (process.argv[2] === "--child") {
    void child();
  } else {
    run({ quick: process.argv.includes("--quick") }).then(
      (rows) => console.table(rows),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  }
}
