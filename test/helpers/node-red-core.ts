import { dirname } from "node:path";
import { nodeRedPath } from "./node-red";

/** A node file's export as Node-RED (or the test helper) loads it. */
export type NodeModule = (RED: any) => void;

const nodeRedDir = dirname(nodeRedPath);

/** A core node file of the Node-RED under test, e.g. "sequence/17-split.js". */
export function coreNode(file: string): NodeModule {
  return require(require.resolve(`@node-red/nodes/core/${file}`, { paths: [nodeRedDir] }));
}

/** The core join node (with split, sort, batch) of the Node-RED under test. */
export const joinNode: NodeModule = coreNode("sequence/17-split.js");

/** The runtime's message hooks, which the test helper's mock runtime does not hand to nodes although its flows trigger them. */
export const runtimeHooks = require(require.resolve("@node-red/util", { paths: [nodeRedDir] })).hooks;

/** The node as the real runtime loads it: RED.hooks present. */
export function withRuntimeHooks(module: NodeModule): NodeModule {
  return (RED) => {
    RED.hooks = runtimeHooks;
    return module(RED);
  };
}
