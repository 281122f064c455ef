import { join, resolve } from "node:path";
import helper = require("node-red-node-test-helper");

/** The Node-RED under test: this checkout's dev dependency, or NODE_RED_PATH (CI's Node-RED 5 run). */
export const nodeRedPath = process.env.NODE_RED_PATH ? resolve(process.env.NODE_RED_PATH) : require.resolve("node-red");
helper.init(nodeRedPath);

export { repoRoot } from "./paths";
import { repoRoot } from "./paths";

/** The built node file as Node-RED loads it. */
export function builtNode(name: string): (RED: unknown) => void {
  return require(join(repoRoot, "nodes", `${name}.js`));
}

export const configNode = () => builtNode("datasphere-config");

export function startHelperServer(): Promise<void> {
  return new Promise((done, fail) => {
    const r = helper.startServer((err?: Error) => (err ? fail(err) : done()));
    if (r && typeof (r as Promise<void>).then === "function") (r as Promise<void>).then(done, fail);
  });
}

export function stopHelperServer(): Promise<void> {
  return new Promise((done, fail) => {
    const r = helper.stopServer((err?: Error) => (err ? fail(err) : done()));
    if (r && typeof (r as Promise<void>).then === "function") (r as Promise<void>).then(done, fail);
  });
}

export { sleep, waitFor } from "./wait";

export { helper };
