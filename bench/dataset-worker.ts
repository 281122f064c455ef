// One measurement of bench/dataset.ts, in its own process so that its RSS is its own:
//   raw:  undici request + StringDecoder + line splitter + JSON.parse (a baseline)
//   raw-http: the same over node:http (the other baseline; the node is compared with the faster one)
//   node-floor: the same runtime with a minimal source node instead of dataset-pull (node:http +
//         StringDecoder + line splitter + JSON.parse + one send per Item, no window): what Node-RED's
//         per-message delivery costs any node
//   node: a real Node-RED runtime embedded here (RED.init/RED.start; not node-red-node-test-helper,
//         whose sinon spies keep every message) running datasphere-dataset-pull into a sink node.
//   node-arrays: the same with dataset-pull's `output: "array"`, `arraySize: 100` (the fast sink
//         counts payload.length)
// Input: one JSON argument. Output: one JSON line on stdout.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { request } from "undici";
import { LineSplitter } from "../src/core/lines";
import { repoRoot } from "../test/helpers/paths";
import { triggerNodeJs, waitForTrigger, writeBenchNodeSet } from "./bench-node-set";
import { startProfiler } from "./cpu-profile";
import { warmUpClients } from "./warm-up";
import { startEmbeddedNodeRed } from "./embedded-node-red";
import { runAsBenchWorker } from "./worker-protocol";

export interface WorkerInput {
  variant: "raw" | "raw-http" | "node" | "node-arrays" | "node-floor";
  apiUrl: string;
  token: string;
  package: string;
  query: string;
  /** node: "fast" counts and calls done(); "slow" clones each message and waits, one at a time. */
  sink?: "fast" | "slow";
  window?: number;
}

export interface WorkerResult {
  items: number;
  seconds: number;
  idleRssMb: number;
  peakRssMb: number;
  peakHeapMb?: number;
  /** Heap used after the pull and a full GC, minus the same before it: what the pull left behind. */
  retainedHeapMb?: number;
  flowControl?: string;
  /** Messages the fast sink received (node variants). */
  messages?: number;
  error?: string;
  /** CPU time (user + system, all threads) of this process per Item while measuring. */
  cpuUsPerItem?: number;
}

function rssMb(): number {
  return process.memoryUsage.rss() / 1048576;
}

async function settle(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 100));
  }
  return rssMb();
}

/** The HTTP clients' first request, untimed (see warmUpClients): a one-Item stream. */
const warmUp = (input: WorkerInput) => warmUpClients(`${input.apiUrl}/api/dataset/v1/replay-1/stream/?order=old`, { authorization: `Token ${input.token}` });

let peakHeapMb = 0;
/** CPU time of the last sampled section, in microseconds. */
let sectionCpuUs = 0;

function sampler(): { stop(): number } {
  let peak = rssMb();
  const cpu = process.cpuUsage();
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb());
    peakHeapMb = Math.max(peakHeapMb, process.memoryUsage().heapUsed / 1048576);
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      const used = process.cpuUsage(cpu);
      sectionCpuUs = used.user + used.system;
      return Math.max(peak, rssMb());
    },
  };
}

async function runRaw(input: WorkerInput): Promise<WorkerResult> {
  await warmUp(input);
  const idle = await settle();
  const peak = sampler();
  const started = process.hrtime.bigint();
  const url = `${input.apiUrl}/api/dataset/v1/${encodeURIComponent(input.package)}/stream/?${input.query}`;
  const response = await request(url, { headers: { authorization: `Token ${input.token}` }, bodyTimeout: 60_000 });
  const decoder = new StringDecoder("utf8");
  const splitter = new LineSplitter();
  let items = 0;
  let keep: unknown;
  for await (const chunk of response.body) {
    for (const line of splitter.push(decoder.write(chunk as Buffer))) {
      if (line.length === 0) continue;
      keep = JSON.parse(line);
      items++;
    }
  }
  for (const line of splitter.end()) if (line.length > 0 && JSON.parse(line)) items++;
  void keep;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { items, seconds, idleRssMb: idle, peakRssMb: peak.stop() };
}

async function runRawHttp(input: WorkerInput): Promise<WorkerResult> {
  await warmUp(input);
  const idle = await settle();
  const peak = sampler();
  const started = process.hrtime.bigint();
  const url = `${input.apiUrl}/api/dataset/v1/${encodeURIComponent(input.package)}/stream/?${input.query}`;
  const decoder = new StringDecoder("utf8");
  const splitter = new LineSplitter();
  let items = 0;
  let keep: unknown;
  await new Promise<void>((resolve, reject) => {
    const { get } = require("node:http") as typeof import("node:http");
    get(url, { headers: { authorization: `Token ${input.token}` } }, (res) => {
      res.on("data", (chunk: Buffer) => {
        for (const line of splitter.push(decoder.write(chunk))) {
          if (line.length === 0) continue;
          keep = JSON.parse(line);
          items++;
        }
      });
      res.on("end", resolve);
      res.on("error", reject);
    }).on("error", reject);
  });
  for (const line of splitter.end()) if (line.length > 0 && JSON.parse(line)) items++;
  void keep;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { items, seconds, idleRssMb: idle, peakRssMb: peak.stop() };
}

/** The sink and trigger nodes, as a node set Node-RED loads from a nodesDir. They report through globalThis. */
const BENCH_NODES_JS = `
module.exports = function (RED) {
  const bench = globalThis.__datasetBench;
  ${triggerNodeJs("bench-trigger")}
  RED.nodes.registerType("bench-floor", function (def) {
    RED.nodes.createNode(this, def);
    this.on("input", (msg, send, done) => {
      const decoder = new bench.StringDecoder("utf8");
      const splitter = new bench.LineSplitter();
      let items = 0;
      const sendLines = (lines) => {
        for (const line of lines) if (line.length > 0) { this.send([{ payload: JSON.parse(line), topic: "floor" }, null]); items++; }
      };
      require("node:http").get(msg.url, { headers: bench.headers }, (res) => {
        res.on("data", (buf) => sendLines(splitter.push(decoder.write(buf))));
        res.on("end", () => { sendLines(splitter.end()); this.send([null, { payload: { items, flowControl: "none" } }]); done(); });
      });
    });
  });
  RED.nodes.registerType("bench-fast-sink", function (def) {
    RED.nodes.createNode(this, def);
    this.on("input", (msg, send, done) => { bench.messages++; bench.count += Array.isArray(msg.payload) ? msg.payload.length : 1; done(); });
  });
  RED.nodes.registerType("bench-slow-sink", function (def) {
    RED.nodes.createNode(this, def);
    const queue = [];
    let busy = false;
    const work = async () => {
      busy = true;
      while (queue.length > 0) {
        const { msg, done } = queue.shift();
        RED.util.cloneMessage(msg);
        bench.count++;
        if (bench.count % 20 === 0) await new Promise((r) => setTimeout(r, 1));
        done();
      }
      busy = false;
    };
    this.on("input", (msg, send, done) => { queue.push({ msg, done }); if (!busy) work(); });
  });
  RED.nodes.registerType("bench-done", function (def) {
    RED.nodes.createNode(this, def);
    this.on("input", (msg, send, done) => { bench.finished(msg); done(); });
  });
};
`;

/** A real Node-RED runtime embedded in this process (RED.init + RED.start), loading the built nodes. */
async function runNode(input: WorkerInput): Promise<WorkerResult> {
  const bench = { count: 0, messages: 0, trigger: undefined as undefined | ((msg: unknown) => void), finished: (_msg: any) => {}, StringDecoder, LineSplitter, headers: { authorization: `Token ${input.token}` } };
  (globalThis as Record<string, unknown>).__datasetBench = bench;
  const userDir = mkdtempSync(join(tmpdir(), "ds-bench-"));
  const arrays = input.variant === "node-arrays" ? { output: "array", arraySize: 100 } : {};
  const benchNodes = writeBenchNodeSet(userDir, "bench-nodes", BENCH_NODES_JS, ["bench-trigger", "bench-floor", "bench-fast-sink", "bench-slow-sink", "bench-done"]);
  const flows = [
    { id: "tab", type: "tab", label: "bench" },
    { id: "cfg", type: "datasphere-config", apiUrl: input.apiUrl, publishUrl: "ws://127.0.0.1:1/publish/v1/", authMode: "header" },
    { id: "trigger", type: "bench-trigger", z: "tab", wires: [[input.variant === "node-floor" ? "floor" : "pull"]] },
    { id: "floor", type: "bench-floor", z: "tab", wires: [["sink"], ["fin"]] },
    { id: "pull", type: "datasphere-dataset-pull", z: "tab", server: "cfg", package: input.package, mode: "stream", window: input.window ?? 500, ...arrays, wires: [["sink"], ["fin"]] },
    { id: "sink", type: input.sink === "slow" ? "bench-slow-sink" : "bench-fast-sink", z: "tab", wires: [] },
    { id: "fin", type: "bench-done", z: "tab", wires: [] },
  ];
  const RED = await startEmbeddedNodeRed({ userDir, flows, token: input.token, nodesDir: [benchNodes, join(repoRoot, "nodes")] });
  const trigger = await waitForTrigger(bench);
  await warmUp(input);
  const idle = await settle();
  const idleHeap = process.memoryUsage().heapUsed / 1048576;
  const peak = sampler();
  const profiler = await startProfiler("dataset");
  const started = process.hrtime.bigint();
  const completion = new Promise<any>((resolve) => (bench.finished = resolve));
  const url = `${input.apiUrl}/api/dataset/v1/${encodeURIComponent(input.package)}/stream/?${input.query}`;
  trigger({ url });
  const done = await completion;
  while (bench.count < done.payload.items) await new Promise((r) => setTimeout(r, 5));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const peakRss = peak.stop();
  await profiler?.();
  await settle();
  const retainedHeapMb = process.memoryUsage().heapUsed / 1048576 - idleHeap;
  await RED.stop();
  rmSync(userDir, { recursive: true, force: true });
  return {
    items: bench.count,
    messages: bench.messages,
    seconds,
    idleRssMb: idle,
    peakRssMb: peakRss,
    peakHeapMb,
    retainedHeapMb,
    flowControl: done.payload.flowControl,
    error: done.payload.error ? `${done.payload.error.code}: ${done.payload.error.message}` : undefined,
  };
}

if (require.main === module) {
  runAsBenchWorker(async (input: WorkerInput) => {
    const result = await (input.variant === "raw" ? runRaw(input) : input.variant === "raw-http" ? runRawHttp(input) : runNode(input));
    if (result.items > 0) result.cpuUsPerItem = sectionCpuUs / result.items;
    return result;
  });
}
