// One measurement of bench/subscribe.ts, in its own process (so its RSS is its own):
//   json:        JSON.parse alone on the same data strings (the CPU floor; strings read first, untimed)
//   raw:         undici.request + our SseParser + JSON.parse, no Node-RED (the raw baseline)
//   memory:      our SseParser + JSON.parse on the same bytes already in memory (no socket)
//   eventsource: the `eventsource` npm package (v4) + JSON.parse; skipped when it cannot be required
//   undici-es:   undici's EventSource + JSON.parse
//   node:        a real Node-RED runtime (RED.init/RED.start) running datasphere-subscribe-in into a sink node
//   node-arrays: the same with subscribe-in's arrays mode (arrays of up to 100 Items; the sink counts payload.length)
//   raw-in-runtime: the raw-http reader in a process that also hosts the node rows' Node-RED runtime, idle
//   node-floor:  the same runtime with a minimal source node instead (node:http + SseParser + JSON.parse +
//                send): what Node-RED's per-message delivery costs any node
// Input: one JSON argument. Output: one JSON line on stdout.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { SseParser } from "../src/core/sse";
import { Subscription } from "../src/core/subscription";
import { openStream } from "../src/core/stream-dispatch";
import { repoRoot } from "../test/helpers/paths";
import { triggerNodeJs, waitForTrigger, writeBenchNodeSet } from "./bench-node-set";
import { startProfiler } from "./cpu-profile";
import { warmUpClients } from "./warm-up";
import { startEmbeddedNodeRed } from "./embedded-node-red";
import { runAsBenchWorker } from "./worker-protocol";

export type Variant = "bytes" | "bytes-http" | "raw-http" | "raw-dispatch" | "core" | "json" | "json-hot" | "raw" | "eventsource" | "undici-es" | "node" | "node-arrays" | "node-floor" | "memory" | "raw-in-runtime";

export interface WorkerInput {
  variant: Variant;
  /** Subscription URL that serves `count` events, then ends. */
  url: string;
  apiUrl: string;
  pkg: string;
  token: string;
  count: number;
}

export interface WorkerResult {
  items: number;
  seconds: number;
  peakRssMb: number;
  /** Messages the downstream node received (node variants). */
  messages?: number;
  /** CPU time of this process per Item (less noisy than wall time on a shared machine). */
  cpuUsPerItem?: number;
  skipped?: string;
}

function rssMb(): number {
  return process.memoryUsage.rss() / 1048576;
}

/** CPU time (user + system, all threads) of the last sampled section, in microseconds. */
let sectionCpuUs = 0;

/** Samples peak RSS (and CPU time) from now until stop(). */
function sampler(): { stop(): number } {
  let peak = rssMb();
  const cpu = process.cpuUsage();
  const timer = setInterval(() => (peak = Math.max(peak, rssMb())), 20);
  return {
    stop() {
      clearInterval(timer);
      const used = process.cpuUsage(cpu);
      sectionCpuUs = used.user + used.system;
      return Math.max(peak, rssMb());
    },
  };
}

async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 2; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Settles the heap, then starts the clock and the RSS sampler; the returned function stops both and makes the result. */
async function startMeasuring(input: WorkerInput): Promise<(items: number) => Promise<WorkerResult>> {
  const variant = input.variant;
  await warmUp(input);
  await settle();
  const peak = sampler();
  const profiler = await startProfiler(`subscribe-${variant}`);
  const started = process.hrtime.bigint();
  return async (items) => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const peakRssMb = peak.stop();
    await profiler?.();
    return { items, seconds, peakRssMb };
  };
}

const headers = (input: WorkerInput) => ({ authorization: `Token ${input.token}`, accept: "text/event-stream" });

/** The HTTP clients' first request, untimed (see warmUpClients): a one-event subscription. */
const warmUp = (input: WorkerInput) => warmUpClients(`${input.apiUrl}/subscription/v1/?package=replay-1`, headers(input));

/** Reads the stream with undici + SseParser; `onData` gets each event's data. */
async function readStream(input: WorkerInput, onData: (data: string) => void): Promise<void> {
  const response = await request(input.url, { headers: headers(input), bodyTimeout: 0 });
  const parser = new SseParser();
  for await (const chunk of response.body) for (const event of parser.push(chunk as Buffer)) onData(event.data);
}

/** Reads the stream over node:http; `onData` gets each chunk as the socket delivered it. */
function readStreamHttp(input: WorkerInput, onData: (chunk: Buffer) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const { get } = require("node:http") as typeof import("node:http");
    get(input.url, { headers: headers(input) }, (res) => {
      res.on("data", onData);
      res.on("end", resolve);
      res.on("error", reject);
    }).on("error", reject);
  });
}

/** What every raw reader does per chunk: our SSE parser, then JSON.parse of each event's data. */
function sseJsonItems(): { push(chunk: Uint8Array): void; readonly items: number } {
  const parser = new SseParser();
  let items = 0;
  let keep: unknown;
  return {
    push(chunk) {
      for (const event of parser.push(chunk)) {
        keep = JSON.parse(event.data);
        items++;
      }
      void keep;
    },
    get items() {
      return items;
    },
  };
}

/** Counts events by their blank line ("\n\n") without parsing them: the read-and-discard readers. */
function eventEndCounter(): { push(chunk: Buffer): void; readonly items: number } {
  let items = 0;
  let lastWasLf = false;
  return {
    push(buf) {
      let i = buf.indexOf(10);
      while (i !== -1) {
        if ((i === 0 && lastWasLf) || (i > 0 && buf[i - 1] === 10)) items++;
        i = buf.indexOf(10, i + 1);
      }
      lastWasLf = buf[buf.length - 1] === 10;
    },
    get items() {
      return items;
    },
  };
}

/** Reads the whole stream (untimed): how many events, and each distinct event data once. */
async function distinctEventData(input: WorkerInput): Promise<{ received: number; strings: string[] }> {
  const seen = new Set<string>();
  let received = 0;
  await readStream(input, (d) => {
    received++;
    seen.add(d);
  });
  return { received, strings: [...seen] };
}

/**
 * JSON.parse alone on the same Items, made fair: every parse gets a fresh string (decoded from the
 * Item's bytes, untimed, in batches of 10,000, ~75 MB, larger than the CPU caches), and only the
 * JSON.parse calls are timed. Re-parsing the same 1,000 strings instead keeps them hot in the cache
 * and overstates the floor by ~1.5-2x.
 */
async function runJson(input: WorkerInput): Promise<WorkerResult> {
  const { received, strings } = await distinctEventData(input);
  const distinct = strings.map((d) => Buffer.from(d));
  strings.length = 0;
  await settle();
  const peak = sampler();
  const BATCH = 10_000;
  const batch: string[] = new Array(BATCH);
  let timed = 0n;
  let keep: unknown;
  for (let done = 0; done < received; done += BATCH) {
    const n = Math.min(BATCH, received - done);
    for (let i = 0; i < n; i++) batch[i] = distinct[(done + i) % distinct.length].toString("utf8");
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) keep = JSON.parse(batch[i]);
    timed += process.hrtime.bigint() - started;
  }
  void keep;
  return { items: received, seconds: Number(timed) / 1e9, peakRssMb: peak.stop() };
}

/**
 * Our SSE parser + JSON.parse on the stream's bytes already in memory (read first, untimed, in the
 * chunks the socket delivered): the raw readers' cost without the socket.
 */
async function runMemory(input: WorkerInput): Promise<WorkerResult> {
  const chunks: Buffer[] = [];
  const response = await request(input.url, { headers: headers(input), bodyTimeout: 0 });
  for await (const chunk of response.body) chunks.push(chunk as Buffer);
  const measured = await startMeasuring(input);
  const reader = sseJsonItems();
  for (const chunk of chunks) reader.push(chunk);
  return measured(reader.items);
}

/** The old floor, for comparison: the same 1,000 strings parsed again and again (hot in the CPU cache). */
async function runJsonHot(input: WorkerInput): Promise<WorkerResult> {
  const { received, strings } = await distinctEventData(input);
  await settle();
  const peak = sampler();
  const started = process.hrtime.bigint();
  let keep: unknown;
  for (let i = 0; i < received; i++) keep = JSON.parse(strings[i % strings.length]);
  void keep;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { items: received, seconds, peakRssMb: peak.stop() };
}

/** How a raw reader gets the stream's chunks; resolves at the end of the stream. */
type Transport = (input: WorkerInput, onData: (chunk: Buffer) => void) => Promise<void>;

const viaUndiciRequest: Transport = async (input, onData) => {
  const response = await request(input.url, { headers: headers(input), bodyTimeout: 0 });
  for await (const chunk of response.body) onData(chunk as Buffer);
};
const viaNodeHttp: Transport = readStreamHttp;
/** undici's dispatch API (no Readable body): what the Subscription reads through. */
const viaUndiciDispatch: Transport = (input, onData) => openStream({ url: input.url, headers: headers(input) }, { onHead: () => undefined, onData }).done;

/** A raw reader: one transport, and one thing done with each chunk; timed from before the request. */
function rawReader(transport: Transport, perChunk: () => { push(chunk: Buffer): void; readonly items: number }) {
  return async (input: WorkerInput): Promise<WorkerResult> => {
    const measured = await startMeasuring(input);
    const reader = perChunk();
    await transport(input, (chunk) => reader.push(chunk));
    return measured(reader.items);
  };
}

/** Our core Subscription (reconnecting reader, de-dup, yields after each chunk), no Node-RED. */
async function runCore(input: WorkerInput): Promise<WorkerResult> {
  const measured = await startMeasuring(input);
  let items = 0;
  let keep: unknown;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${items} Items`)), 10 * 60_000);
    const sub = new Subscription({
      url: input.url,
      auth: { headersFor: () => ({ authorization: `Token ${input.token}` }) },
      onItem: (event) => {
        keep = event.item;
        if (++items === input.count) {
          clearTimeout(timer);
          void sub.close().then(resolve);
        }
      },
    });
    sub.start();
  });
  void keep;
  return measured(items);
}

interface EventSourceLike {
  onmessage: ((event: { data: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  close(): void;
}
type EventSourceCtor = new (url: string, init?: Record<string, unknown>) => EventSourceLike;

async function runEventSource(input: WorkerInput, Ctor: EventSourceCtor, init: Record<string, unknown>): Promise<WorkerResult> {
  const measured = await startMeasuring(input);
  let items = 0;
  let keep: unknown;
  await new Promise<void>((resolve, reject) => {
    const es = new Ctor(input.url, init);
    const timer = setTimeout(() => {
      es.close();
      reject(new Error(`timed out after ${items} Items`));
    }, 10 * 60_000);
    es.onmessage = (event) => {
      keep = JSON.parse(event.data);
      if (++items === input.count) {
        clearTimeout(timer);
        es.close();
        resolve();
      }
    };
  });
  void keep;
  return measured(items);
}

async function runEventsourcePackage(input: WorkerInput): Promise<WorkerResult> {
  let mod: { EventSource?: EventSourceCtor };
  try {
    mod = require("eventsource");
  } catch (error) {
    return { items: 0, seconds: 0, peakRssMb: 0, skipped: `eventsource not installed (${(error as Error).message.split("\n")[0]})` };
  }
  if (!mod.EventSource) return { items: 0, seconds: 0, peakRssMb: 0, skipped: "eventsource: no EventSource export (need v3+)" };
  const token = input.token;
  // v3/v4: headers go through a custom fetch.
  const fetchWithAuth = (url: string | URL, init: RequestInit = {}) =>
    fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Token ${token}` } });
  return runEventSource(input, mod.EventSource, { fetch: fetchWithAuth });
}

async function runUndiciEventSource(input: WorkerInput): Promise<WorkerResult> {
  // undici's EventSource takes a dispatcher; the auth header goes in through a dispatcher interceptor.
  const undici = require("undici") as { EventSource: EventSourceCtor; Agent: new () => { compose(i: unknown): unknown } };
  const dispatcher = new undici.Agent().compose((dispatch: any) => (opts: any, handler: any) => {
    const h = Array.isArray(opts.headers) ? opts.headers : Object.entries(opts.headers ?? {}).flat();
    return dispatch({ ...opts, headers: [...h, "authorization", `Token ${input.token}`] }, handler);
  });
  return runEventSource(input, undici.EventSource, { dispatcher });
}

/** Sink and trigger nodes for the embedded runtime; they report through globalThis. */
const BENCH_NODES_JS = `
module.exports = function (RED) {
  const bench = globalThis.__subscribeBench;
  ${triggerNodeJs("bench-sub-trigger")}
  // The floor of any Node-RED source node: node:http + our SSE parser + JSON.parse + one send per
  // Item, nothing else (no reconnect, de-dup, status or flow control).
  RED.nodes.registerType("bench-sub-floor", function (def) {
    RED.nodes.createNode(this, def);
    this.on("input", (msg, send, done) => {
      const parser = new bench.SseParser();
      require("node:http").get(bench.url, { headers: bench.headers }, (res) => {
        res.on("data", (buf) => {
          for (const event of parser.push(buf)) this.send({ payload: JSON.parse(event.data), topic: "floor" });
        });
        res.on("end", () => done());
      });
    });
  });
  RED.nodes.registerType("bench-sub-sink", function (def) {
    RED.nodes.createNode(this, def);
    this.on("input", (msg, send, done) => {
      bench.messages++;
      bench.count += Array.isArray(msg.payload) ? msg.payload.length : 1;
      if (bench.count >= bench.target) bench.finished();
      done();
    });
  });
};
`;

/** The embedded Node-RED runtime of the node rows (subscribe-in or the floor node wired to a sink), started and idle. */
async function startBenchRuntime(input: WorkerInput) {
  const floor = input.variant === "node-floor";
  const arrays = input.variant === "node-arrays" ? { messages: "array", arraySize: 100 } : {};
  const bench = { count: 0, messages: 0, target: input.count, trigger: undefined as undefined | ((msg: unknown) => void), finished: () => {}, SseParser, url: input.url, headers: headers(input) };
  (globalThis as Record<string, unknown>).__subscribeBench = bench;
  const userDir = mkdtempSync(join(tmpdir(), "ds-sub-bench-"));
  const benchNodes = writeBenchNodeSet(userDir, "bench-sub-nodes", BENCH_NODES_JS, ["bench-sub-trigger", "bench-sub-floor", "bench-sub-sink"]);
  const flows = [
    { id: "tab", type: "tab", label: "bench" },
    { id: "cfg", type: "datasphere-config", apiUrl: input.apiUrl, publishUrl: "ws://127.0.0.1:1/publish/v1/", authMode: "header" },
    { id: "trigger", type: "bench-sub-trigger", z: "tab", wires: [[floor ? "floor" : "sub"]] },
    { id: "floor", type: "bench-sub-floor", z: "tab", wires: [["sink"]] },
    { id: "sub", type: "datasphere-subscribe-in", z: "tab", server: "cfg", package: input.pkg, autoConnect: false, output: "object", stacCheck: "off", ...arrays, wires: [["sink"]] },
    { id: "sink", type: "bench-sub-sink", z: "tab", wires: [] },
  ];
  const RED = await startEmbeddedNodeRed({ userDir, flows, token: input.token, nodesDir: [benchNodes, join(repoRoot, "nodes")] });
  const trigger = await waitForTrigger(bench);
  return {
    bench,
    trigger,
    async stop() {
      await RED.stop();
      rmSync(userDir, { recursive: true, force: true });
    },
  };
}

async function runNode(input: WorkerInput): Promise<WorkerResult> {
  const runtime = await startBenchRuntime(input);
  const { bench } = runtime;
  await warmUp(input);
  await settle();
  const peak = sampler();
  const profiler = await startProfiler(`subscribe-${input.variant}`);
  const finished = new Promise<void>((r) => (bench.finished = r));
  const started = process.hrtime.bigint();
  runtime.trigger({ action: "connect" });
  await finished;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const peakRssMb = peak.stop();
  await profiler?.();
  await runtime.stop();
  return { items: bench.count, messages: bench.messages, seconds, peakRssMb };
}

/**
 * The node:http raw reader run in a process that also hosts the node rows' Node-RED runtime, idle (no
 * message sent): what the host process itself (its heap, its collector) costs a reader.
 */
async function runRawInRuntime(input: WorkerInput): Promise<WorkerResult> {
  const runtime = await startBenchRuntime(input);
  try {
    return await rawReader(viaNodeHttp, sseJsonItems)(input);
  } finally {
    await runtime.stop();
  }
}

const RUNNERS: Record<Variant, (input: WorkerInput) => Promise<WorkerResult>> = {
  // Read and discard the bytes (the ceiling the server and loopback allow), over undici and node:http.
  bytes: rawReader(viaUndiciRequest, eventEndCounter),
  "bytes-http": rawReader(viaNodeHttp, eventEndCounter),
  json: runJson,
  "json-hot": runJsonHot,
  raw: rawReader(viaUndiciRequest, sseJsonItems),
  "raw-http": rawReader(viaNodeHttp, sseJsonItems),
  "raw-dispatch": rawReader(viaUndiciDispatch, sseJsonItems),
  "raw-in-runtime": runRawInRuntime,
  core: runCore,
  eventsource: runEventsourcePackage,
  "undici-es": runUndiciEventSource,
  node: runNode,
  "node-arrays": runNode,
  "node-floor": runNode,
  memory: runMemory,
};

if (require.main === module) {
  runAsBenchWorker(async (input: WorkerInput) => {
    const result = await RUNNERS[input.variant](input);
    if (!result.skipped && result.items > 0) result.cpuUsPerItem = (input.variant === "json" ? result.seconds * 1e6 : sectionCpuUs) / result.items;
    return result;
  });
}
