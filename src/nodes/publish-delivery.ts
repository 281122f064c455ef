import { homedir } from "node:os";
import { join } from "node:path";
import { DurableOutbox, type FsyncPolicy } from "../core/publisher/durable-outbox";
import type { Delivery } from "../core/publisher";
import type { Node, NodeAPI } from "./shared/node-red";

/** The node's delivery option; at-most-once unless at-least-once is chosen. */
export function deliveryOf(value: unknown): Delivery {
  return value === "at-least-once" ? "at-least-once" : "at-most-once";
}

/** `<userDir>/datasphere-outbox/<node id>.outbox`: where a publish node keeps its durable outbox. */
export function outboxFile(RED: NodeAPI, node: Node): string {
  const userDir = (RED.settings as { userDir?: string }).userDir ?? join(homedir(), ".node-red");
  return join(userDir, "datasphere-outbox", `${node.id.replace(/[^A-Za-z0-9._-]/g, "_")}.outbox`);
}

export const DEFAULT_FILE_MB = 256;
const MAX_FILE_MB = 4096;

/** Opens the node's durable outbox when the option is on; a file that cannot be opened is reported and the node runs without it. */
export function openNodeOutbox(RED: NodeAPI, node: Node, def: { durable?: boolean | string; fsync?: string }, fileMb: number, report: (text: string) => void): DurableOutbox | undefined {
  if (def.durable !== true && def.durable !== "true") return undefined;
  const fsync: FsyncPolicy = def.fsync === "always" || def.fsync === "never" ? def.fsync : "interval";
  const maxBytes = Math.round(Math.min(MAX_FILE_MB, fileMb) * 1024 * 1024);
  try {
    return DurableOutbox.open({ file: outboxFile(RED, node), fsync, maxBytes });
  } catch (error) {
    report(`durable outbox unavailable, messages are kept in memory only: ${(error as Error).message}`);
    return undefined;
  }
}
