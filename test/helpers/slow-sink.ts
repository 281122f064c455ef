import type { NodeModule } from "./node-red-core";

/**
 * `slow-sink`: a downstream node that completes each message after `holdMs` (0: on the next turn)
 * and records how many it holds at once (`held`, `maxHeld`) and how many it got (`count`). It keeps
 * the messages in `received` unless `keep` is "ids" (only `payload.id`, in `ids`) or "count" (nothing:
 * for memory tests).
 */
export const slowSink: NodeModule = (RED) => {
  RED.nodes.registerType("slow-sink", function (this: any, def: { holdMs?: number | string; keep?: "messages" | "ids" | "count" }) {
    RED.nodes.createNode(this, def);
    const node = this;
    const keep = def.keep ?? "messages";
    node.held = 0;
    node.maxHeld = 0;
    node.count = 0;
    node.received = [] as Record<string, any>[];
    node.ids = [] as string[];
    node.on("input", (msg: Record<string, any>, _send: unknown, done: () => void) => {
      node.count++;
      if (keep === "messages") node.received.push(msg);
      else if (keep === "ids") node.ids.push(msg.payload.id);
      node.held++;
      node.maxHeld = Math.max(node.maxHeld, node.held);
      const finish = () => {
        node.held--;
        done();
      };
      const holdMs = Number(def.holdMs ?? 0);
      if (holdMs > 0) setTimeout(finish, holdMs);
      else setImmediate(finish);
    });
  });
};
