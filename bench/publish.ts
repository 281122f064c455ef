// Publish throughput: messages/s from an inject loop through datasphere-publish-out (real Node-RED
// runtime; 1, 2 and 4 nodes on one config sharing the socket) into a local counting WebSocket server
// in another process, next to a raw `ws` client that serialises the same wire messages and follows
// the same backpressure rule (pause at 1 MiB bufferedAmount, resume on send callbacks), in
// alternating rounds of the same run. The delivery variants: at-least-once (done when a pong proves the
// server read the message) and at-least-once with the durable outbox file (default fsync policy: every
// second). `node build/bench/publish.js [--quick]`.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { WebSocket } from "ws";
import { median, medianRow, type BenchRow } from "./bench-row";

const MAX_BUFFERED = 1 << 20;

/**
 * Whether `ws` masks frames with the native `bufferutil` (an optional dependency). The raw client and
 * the node run in this one process on the same `ws` module (the node bundle keeps `ws` external), so
 * both get the same answer.
 */
function bufferutilNote(): string {
  if (process.env.WS_NO_BUFFER_UTIL) return "without bufferutil (WS_NO_BUFFER_UTIL set), raw and node alike";
  try {
    require.resolve("bufferutil");
    const wsMain = require.resolve("ws");
    const nodeWs = require.resolve("ws", { paths: [join(__dirname, "..", "..", "nodes")] });
    return wsMain === nodeWs ? "with bufferutil, raw client and node alike (one ws module)" : `with bufferutil; note: raw uses ${wsMain}, node ${nodeWs}`;
  } catch {
    return "without bufferutil (not installed), raw and node alike";
  }
}
const TOKEN = "bench-token";
const WINDOW = 300;

/** A STAC Item of about 6.5 KB, like a Sentinel-2 L2A Item with a dozen assets. */
export function benchItem(i: number): Record<string, unknown> {
  const assets: Record<string, unknown> = {};
  for (const band of ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12", "SCL", "visual"]) {
    assets[band] = {
      href: `https://example.com/sentinel-2-l2a/2024/04/19/S2B_MSIL2A_20240419T095549_R122_T47XML_${i}/${band}.tif`,
      type: "image/tiff; application=geotiff; profile=cloud-optimized",
      roles: ["data"],
      title: `Band ${band}`,
      "file:size": 100_000_000 + i,
      "raster:bands": [{ nodata: 0, data_type: "uint16", spatial_resolution: 10, scale: 0.0001, offset: -0.1 }],
    };
  }
  return {
    type: "Feature",
    stac_version: "1.0.0",
    stac_extensions: ["https://stac-extensions.github.io/eo/v1.1.0/schema.json", "https://stac-extensions.github.io/file/v2.1.0/schema.json"],
    id: `S2B_MSIL2A_20240419T095549_R122_T47XML_${i}`,
    collection: "sentinel-2-l2a",
    geometry: { type: "Polygon", coordinates: [[[99.0, 79.1], [104.2, 79.1], [104.2, 80.0], [99.0, 80.0], [99.0, 79.1]]] },
    bbox: [99.0, 79.1, 104.2, 80.0],
    properties: { datetime: "2024-04-19T09:55:49.024000Z", platform: "sentinel-2b", "eo:cloud_cover": 12.5, "proj:epsg": 32647, "s2:mgrs_tile": "47XML" },
    links: [{ rel: "collection", href: "https://example.com/collections/sentinel-2-l2a", type: "application/json" }],
    assets,
  };
}

export class CountingServer {
  private constructor(readonly url: string, private readonly child: ChildProcess) {}

  static async start(): Promise<CountingServer> {
    const child = spawn(process.execPath, [join(__dirname, "publish-server.js")], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once("line", resolve);
      child.once("exit", (code) => reject(new Error(`publish bench server exited (${code})`)));
    });
    return new CountingServer((JSON.parse(line) as { url: string }).url, child);
  }

  /** Arms the counter; the promise of the returned function resolves when n frames arrived. */
  async expect(n: number): Promise<() => Promise<void>> {
    const received = new Promise<void>((resolve) => {
      const on = (m: { received?: number }) => {
        if (m.received !== undefined) {
          this.child.off("message", on);
          resolve();
        }
      };
      this.child.on("message", on);
    });
    await new Promise<void>((resolve) => {
      const on = (m: { ready?: boolean }) => {
        if (m.ready) {
          this.child.off("message", on);
          resolve();
        }
      };
      this.child.on("message", on);
      this.child.send({ expect: n });
    });
    return () => received;
  }

  stop(): void {
    this.child.disconnect();
    this.child.kill();
  }
}

function rssSampler(): () => number {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  return () => {
    clearInterval(timer);
    return Math.max(peak, process.memoryUsage().rss) / (1024 * 1024);
  };
}

interface Sample {
  perSecond: number;
  /** CPU time of this process (client side only; the server is another process) per message. */
  cpuUsPerMessage: number;
  peakRssMb: number;
}

function cpuMeter(): (n: number) => number {
  const start = process.cpuUsage();
  return (n) => {
    const used = process.cpuUsage(start);
    return (used.user + used.system) / n;
  };
}

/** The baseline: a plain ws client, one JSON.stringify per message, the same backpressure rule. */
export async function rawRound(server: CountingServer, items: Array<Record<string, unknown>>, n: number): Promise<Sample> {
  const ws = new WebSocket(server.url, { perMessageDeflate: false, headers: { authorization: `Token ${TOKEN}` } });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  const received = await server.expect(n);
  const peak = rssSampler();
  const cpu = cpuMeter();
  const started = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    let i = 0;
    let pending: Buffer | undefined;
    const pump = () => {
      while (i < n) {
        const data = pending ?? Buffer.from(JSON.stringify({ active_parent: "bench", data: items[i % items.length], subscribable: true }));
        const buffered = ws.bufferedAmount;
        if (buffered > 0 && buffered + data.length > MAX_BUFFERED) {
          pending = data;
          return;
        }
        pending = undefined;
        i++;
        ws.send(data, { binary: false }, afterSend);
      }
      resolve();
    };
    const afterSend = () => {
      if (i < n) pump();
    };
    pump();
  });
  await received();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpuUsPerMessage = cpu(n);
  const peakRssMb = peak();
  ws.close();
  return { perSecond: n / seconds, cpuUsPerMessage, peakRssMb };
}

type Helpers = typeof import("../test/helpers/node-red");

/** Through the node(s): an inject-style loop hands the Items to k publish nodes round-robin. */
export async function nodeRound(h: Helpers, server: CountingServer, items: Array<Record<string, unknown>>, n: number, k: number, extra: Record<string, unknown> = {}): Promise<Sample> {
  const flow: object[] = [{ id: "cfg", type: "datasphere-config", apiUrl: "http://127.0.0.1:1", publishUrl: server.url, authMode: "header" }];
  for (let j = 0; j < k; j++) {
    flow.push({ id: `pub${j}`, type: "datasphere-publish-out", server: "cfg", activeParent: "bench", subscribable: true, outboxSize: n, outboxAge: 0, overflow: "reject-newest", ...extra });
  }
  await h.helper.load([h.configNode(), h.builtNode("datasphere-publish-out")], flow, { cfg: { token: TOKEN } });
  // The test helper wraps Node-RED's log and node methods in sinon spies that record every call
  // (each message's metric events included); a deployed runtime has none, so measure without them.
  (h.helper as unknown as { _sandbox: { restore(): void } })._sandbox.restore();
  const nodes = Array.from({ length: k }, (_, j) => h.helper.getNode(`pub${j}`));
  // The publisher belongs to the config node (its connection accessor).
  const connection = h.helper.getNode("cfg").publishConnection;
  await h.waitFor(() => connection.publisher?.status.state === "connected", "publisher connected", 10_000);
  let failed = 0;
  let ok = 0;
  const publisher = connection.publisher;
  const received = await server.expect(n);
  const peak = rssSampler();
  const cpu = cpuMeter();
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    // The inject loop keeps at most WINDOW messages unfinished (not yet done()), as a flow-controlled
    // producer would; without it every message would wait serialised in the outbox at once.
    while (i - publisher.stats.flushed >= WINDOW) await new Promise((r) => setImmediate(r));
    // What an inject node does: a fresh msg object per message; Node-RED delivers it to the node.
    const msg = { _msgid: `m${i}`, payload: items[i % items.length] };
    nodes[i % k].receive(msg);
  }
  await received();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpuUsPerMessage = cpu(n);
  const peakRssMb = peak();
  ok = publisher.stats.flushed;
  failed = publisher.stats.failed;
  await h.helper.unload();
  if (ok !== n || failed !== 0) throw new Error(`node round: ${ok} flushed, ${failed} failed, expected ${n}`);
  return { perSecond: n / seconds, cpuUsPerMessage, peakRssMb };
}

export async function run(opts: { quick: boolean }): Promise<BenchRow[]> {
  const h = require("../test/helpers/node-red") as Helpers;
  const n = opts.quick ? 3_000 : 20_000;
  const rounds = opts.quick ? 1 : Number(process.env.BENCH_ROUNDS ?? 5);
  const items = Array.from({ length: 200 }, (_, i) => benchItem(i));
  const size = Buffer.byteLength(JSON.stringify({ active_parent: "bench", data: items[0], subscribable: true }));
  const server = await CountingServer.start();
  await h.startHelperServer();
  const userDir = mkdtempSync(join(tmpdir(), "ds-bench-publish-"));
  h.helper.settings({ userDir });
  const variants: Array<{ name: string; k: number; extra?: Record<string, unknown> }> = [
    { name: "raw ws client", k: 0 },
    { name: "publish node x1", k: 1 },
    { name: "publish node x1, at-least-once", k: 1, extra: { delivery: "at-least-once" } },
    { name: "publish node x1, at-least-once + durable outbox (fsync 1 s)", k: 1, extra: { delivery: "at-least-once", durable: true, fsync: "interval" } },
    { name: "publish nodes x2 (one socket)", k: 2 },
    { name: "publish nodes x4 (one socket)", k: 4 },
  ];
  const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
  try {
    // Warm-up (JIT, sockets), not counted.
    await rawRound(server, items, Math.min(n, 2_000));
    await nodeRound(h, server, items, Math.min(n, 2_000), 1);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) {
        const sample = v.k === 0 ? await rawRound(server, items, n) : await nodeRound(h, server, items, n, v.k, v.extra);
        samples.get(v.name)!.push(sample);
      }
    }
  } finally {
    await h.stopHelperServer();
    server.stop();
    rmSync(userDir, { recursive: true, force: true });
  }
  const rawMedian = median(samples.get("raw ws client")!.map((s) => s.perSecond));
  const rawCpu = median(samples.get("raw ws client")!.map((s) => s.cpuUsPerMessage));
  const versusRaw = (k: number, value: number, raw: number) => (k === 0 ? {} : { baseline: "raw ws client", ratio: value / raw });
  const cpuRows: BenchRow[] = variants.map((v) => {
    const values = samples.get(v.name)!.map((x) => x.cpuUsPerMessage);
    return medianRow("publish: client CPU per message (lower is better)", v.name, values, "us/msg", versusRaw(v.k, median(values), rawCpu));
  });
  const rateRows: BenchRow[] = variants.map((v) => {
    const s = samples.get(v.name)!;
    const values = s.map((x) => x.perSecond);
    return medianRow(`publish ${n.toLocaleString("en-US")} x ${(size / 1024).toFixed(1)} KB Items`, v.name, values, "msg/s", {
      ...versusRaw(v.k, median(values), rawMedian),
      peakRssMb: Math.max(...s.map((x) => x.peakRssMb)),
      note: `${rounds} round(s), median; ${bufferutilNote()}`,
    });
  });
  return [...rateRows, ...cpuRows];
}

if (require.main === module) {
  run({ quick: process.argv.includes("--quick") }).then(
    (rows) => {
      for (const r of rows) {
        const digits = r.value < 100 ? 1 : 0;
        console.log(`${r.variant.padEnd(32)} ${r.value.toFixed(digits).padStart(8)} ${r.unit}  (${(r.min ?? 0).toFixed(digits)}-${(r.max ?? 0).toFixed(digits)})${r.ratio !== undefined ? `  ratio ${r.ratio.toFixed(2)}` : ""}${r.peakRssMb ? `  peak RSS ${Math.round(r.peakRssMb)} MB` : ""}`);
      }
      process.exit(0);
    },
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
