import type { NodeModule } from "./node-red-core";

/** `throwing-sink`: a next node that throws on its first `throwFirst` messages (Node-RED logs it; done() is never called for them), then completes each at once. Keeps every message in `received`. */
export const throwingSink: NodeModule = (RED) => {
  RED.nodes.registerType("throwing-sink", function (this: any, def: { throwFirst?: number | string }) {
    RED.nodes.createNode(this, def);
    const node = this;
    node.received = [] as Array<Record<string, unknown>>;
    node.on("input", (msg: Record<string, unknown>, _send: unknown, done: () => void) => {
      node.received.push(msg);
      if (node.received.length <= Number(def.throwFirst ?? 0)) throw new Error("sink failed");
      done();
    });
  });
};
