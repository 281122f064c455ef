import type { DeliveryTracker } from "../../core/dataset/flow-window";
import type { DeliveryObserver } from "../../core/dataset/pull-session";
import type { MessageHookEvent, Node, NodeAPI, NodeMessage } from "./node-red";

/** Core nodes that keep `done()` until a whole sequence has arrived: their receipt releases the window. */
const SEQUENCE_HOLDERS = new Set(["join", "batch", "sort"]);

interface HookEvent extends MessageHookEvent {
  source?: { id: string; port?: number; node?: Node };
  node?: { id: string };
}

/** True when this Node-RED has message hooks (4.x and later). */
export function hasMessageHooks(RED: NodeAPI): boolean {
  return !!RED.hooks && typeof RED.hooks.add === "function";
}

/**
 * Message hooks see every delivery in the runtime. A message the node sent on output 1 stays in the
 * window until each delivery of it is completed (`onComplete`) by the node it went to, or, for
 * nodes that never call done() or hold it for a whole sequence (join, batch, sort), received
 * (`postReceive`). When every wired node is known, the number of deliveries per message is known
 * up front; otherwise `postDeliver` counts them. Only the hooks needed are added.
 */
export function observeDeliveries(RED: NodeAPI, node: Node & { wires?: string[][] }, tracker: DeliveryTracker, releaseOnReceive: boolean): DeliveryObserver {
  const label = `${node.type.replace(/-(\w)/g, (_m, c: string) => c.toUpperCase())}${node.id.replace(/[^A-Za-z0-9]/g, "")}`;
  const wired = node.wires?.[0] ?? [];
  const onReceipt = new Set<string>();
  const onCompletion = new Set<string>();
  let allKnown = true;
  for (const id of wired) {
    const target = RED.nodes.getNode(id) as (Node & { _expectedDoneCount?: number }) | null;
    if (!target) allKnown = false;
    if (!target || releaseOnReceive || SEQUENCE_HOLDERS.has(target.type) || target._expectedDoneCount === 0) onReceipt.add(id);
    else onCompletion.add(id);
  }
  const ids: string[] = [];
  const add = (hook: string, fn: (event: HookEvent) => void) => {
    RED.hooks.add(`${hook}.${label}`, fn);
    ids.push(`${hook}.${label}`);
  };
  const finishedIf = (msg: NodeMessage | undefined, nodeId: string | undefined, targets: Set<string>) => {
    const id = msg?._msgid;
    if (nodeId !== undefined && targets.has(nodeId) && tracker.isTracked(id)) tracker.finished(id as string);
  };
  if (!allKnown) {
    add("postDeliver", (event) => {
      if (event.source?.id !== node.id || event.source.port !== 0) return;
      const id = event.msg?._msgid;
      if (tracker.isTracked(id)) tracker.delivered(id as string);
    });
  }
  if (onReceipt.size > 0) add("postReceive", (event) => finishedIf(event.msg, event.destination?.id, onReceipt));
  if (onCompletion.size > 0) add("onComplete", (event) => finishedIf(event.msg, event.node?.id, onCompletion));
  return {
    deliveries: allKnown ? wired.length : undefined,
    remove: () => {
      for (const id of ids) RED.hooks.remove(id);
    },
  };
}
