import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Writes a node set of bench-only nodes into `userDir`/bench-nodes: `name`.js holding `js`, and `name`.html
 * registering each of `types` in the editor. Returns the folder, for Node-RED's nodesDir.
 */
export function writeBenchNodeSet(userDir: string, name: string, js: string, types: string[]): string {
  const dir = join(userDir, "bench-nodes");
  mkdirSync(dir);
  writeFileSync(join(dir, `${name}.js`), js);
  writeFileSync(join(dir, `${name}.html`), types.map((t) => `<script type="text/javascript">RED.nodes.registerType('${t}',{category:'function',defaults:{},inputs:1,outputs:1});</script>`).join("\n"));
  return dir;
}

/**
 * Node-set source (inside `module.exports = function (RED) { const bench = ...; ... }`) of a node of
 * type `type` that hands the worker `bench.trigger`: calling it sends a message into the flow.
 */
export function triggerNodeJs(type: string): string {
  return `RED.nodes.registerType(${JSON.stringify(type)}, function (def) {
    RED.nodes.createNode(this, def);
    bench.trigger = (msg) => this.send(msg);
  });`;
}

/** Waits (up to 60 s) until the flow's trigger node has started; returns the `bench.trigger` it set. */
export async function waitForTrigger<T>(bench: { trigger?: T }): Promise<T> {
  const deadline = Date.now() + 60_000;
  while (!bench.trigger && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (!bench.trigger) throw new Error("the bench flow did not start");
  return bench.trigger;
}
