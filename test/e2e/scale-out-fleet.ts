import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connectAsync, type MqttClient } from "mqtt";
import type { Sandbox } from "../../src/sandbox";
import type { Mosquitto } from "../helpers/mosquitto";
import { startNodeRed, type NodeRedProcess } from "../helpers/node-red-process";
import { repoRoot } from "../helpers/paths";
import { freshUserDir, linkCheckout, removeDir } from "./support";

/**
 * The scale-out pattern as users run it: examples/scale-out-publisher.json in one Node-RED process and
 * examples/scale-out-worker.json in N others, all on one Mosquitto. Used by the e2e test and the bench.
 */

export const SHARED_FILTER = "$share/datasphere-workers/datasphere/work/items";
export const CONFIG_ID = "datasphere.config.env";

type FlowNode = Record<string, unknown> & { id: string; type: string };

/** An example's flows, with the MQTT broker node pointed at this broker (what a user edits). */
export function exampleFlows(name: string, brokerPort: number, patch: (node: FlowNode) => void = () => undefined): FlowNode[] {
  const flows = JSON.parse(readFileSync(join(repoRoot, "examples", `${name}.json`), "utf8")) as FlowNode[];
  for (const node of flows) {
    if (node.type === "mqtt-broker") Object.assign(node, { broker: "127.0.0.1", port: String(brokerPort) });
    patch(node);
  }
  return flows;
}

export interface Worker {
  name: string;
  userDir: string;
  nr: NodeRedProcess;
}

export interface Fleet {
  publisher: NodeRedProcess;
  workers: Worker[];
  /** Starts one more worker and waits until it is subscribed. */
  addWorker(name: string): Promise<Worker>;
  stop(): Promise<void>;
}

export interface FleetOptions {
  sandbox: Sandbox;
  broker: Mosquitto;
  workers: number;
  /** Changes to the worker flow's nodes (e.g. a shorter idle timeout in the kill test). */
  workerPatch?: (node: FlowNode) => void;
}

/** Starts the publisher and the workers (in parallel) and waits until all of them are subscribed. */
export async function startFleet(o: FleetOptions): Promise<Fleet> {
  const dirs: string[] = [];
  const started: NodeRedProcess[] = [];
  const env = (worker?: string): Record<string, string> => ({
    DATASPHERE_API_URL: o.sandbox.url,
    DATASPHERE_PUBLISH_URL: o.sandbox.publishUrl,
    DATASPHERE_TOKEN: o.sandbox.token,
    ...(worker ? { DATASPHERE_WORKER: worker } : {}),
  });
  // The token also goes in as a stored credential, so this runs before and after the config node's
  // "token from environment variable" option exists.
  const credentials = { [CONFIG_ID]: { token: o.sandbox.token } };
  const start = async (label: string, flows: FlowNode[], worker?: string): Promise<{ nr: NodeRedProcess; userDir: string }> => {
    const userDir = freshUserDir(label);
    dirs.push(userDir);
    linkCheckout(userDir);
    const nr = await startNodeRed({ userDir, flows, credentials, env: env(worker) });
    started.push(nr);
    return { nr, userDir };
  };
  const stop = async () => {
    await Promise.all(started.map((nr) => nr.stop()));
    for (const dir of dirs) removeDir(dir);
  };
  try {
    const names = Array.from({ length: o.workers }, (_, i) => `worker-${i + 1}`);
    const [pub, ...workers] = await Promise.all([
      start("scale-out-publisher", exampleFlows("scale-out-publisher", o.broker.port)),
      ...names.map((name) => start(`scale-out-${name}`, exampleFlows("scale-out-worker", o.broker.port, o.workerPatch), name)),
    ]);
    await o.broker.waitForSubscriptions(SHARED_FILTER, o.workers);
    await o.broker.waitForSubscriptions("datasphere/work/gone", 1);
    await o.broker.waitForSubscriptions("datasphere/work/done", 1);
    await o.broker.waitForSubscriptions("datasphere/work/taken", 1);
    let members = o.workers;
    const addWorker = async (name: string): Promise<Worker> => {
      const worker = { name, ...(await start(`scale-out-${name}`, exampleFlows("scale-out-worker", o.broker.port, o.workerPatch), name)) };
      await o.broker.waitForSubscriptions(SHARED_FILTER, ++members);
      return worker;
    };
    return { publisher: pub.nr, workers: workers.map((w, i) => ({ name: names[i], ...w })), addWorker, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Ids of the Items with a complete file (renamed from .part) in a worker's `datasphere-downloads/<collection>/<id>/`. */
export function downloadedIds(userDir: string): string[] {
  const root = join(userDir, "datasphere-downloads");
  if (!existsSync(root)) return [];
  const ids: string[] = [];
  for (const collection of readdirSync(root)) {
    for (const id of readdirSync(join(root, collection))) {
      if (readdirSync(join(root, collection, id)).some((f) => !f.endsWith(".part"))) ids.push(id);
    }
  }
  return ids;
}

export interface Report {
  id: string;
  worker: string;
}

/** Listens to every message of the pattern (`datasphere/work/#`) on the broker, as a third party. */
export class WorkObserver {
  /** Item id -> how many times it was handed out on datasphere/work/items. */
  readonly handedOut = new Map<string, number>();
  readonly taken: Report[] = [];
  readonly done: Report[] = [];
  readonly gone: string[] = [];

  private constructor(private readonly client: MqttClient) {
    client.on("message", (topic, payload) => {
      const text = payload.toString("utf8");
      if (topic === "datasphere/work/items") {
        const id = String((JSON.parse(text) as { id?: unknown }).id);
        this.handedOut.set(id, (this.handedOut.get(id) ?? 0) + 1);
      } else if (topic === "datasphere/work/taken") this.taken.push(JSON.parse(text) as Report);
      else if (topic === "datasphere/work/done") this.done.push(JSON.parse(text) as Report);
      else if (topic === "datasphere/work/gone") this.gone.push(text);
    });
  }

  static async connect(port: number): Promise<WorkObserver> {
    const client = await connectAsync({ host: "127.0.0.1", port, protocolVersion: 5, clientId: "test-observer", reconnectPeriod: 0 });
    await client.subscribeAsync("datasphere/work/#", { qos: 1 });
    return new WorkObserver(client);
  }

  /** What happened to these Items, for failure messages. */
  describe(ids: string[]): string {
    return ids
      .map((id) => `${id}: handed out ${this.handedOut.get(id) ?? 0}, taken by [${this.taken.filter((t) => t.id === id).map((t) => t.worker)}], done by [${this.done.filter((d) => d.id === id).map((d) => d.worker)}]`)
      .join("\n");
  }

  doneIds(): Set<string> {
    return new Set(this.done.map((d) => d.id));
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}
