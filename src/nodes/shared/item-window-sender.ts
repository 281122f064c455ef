import type { DeliveryObserver } from "../../core/dataset/pull-session";
import { ItemsInFlight, type ItemsInFlightOptions } from "../../core/subscription/items-in-flight";
import { hasMessageHooks, observeDeliveries } from "./delivery-hooks";
import type { Node, NodeAPI, NodeMessage } from "./node-red";

/**
 * Sends a node's messages while counting their Items until the next nodes complete them (subscribe-in's
 * flow control). The message hooks are added at the first message, when the wired nodes exist.
 */
export class ItemWindowSender {
  private readonly window: ItemsInFlight;
  private observer?: DeliveryObserver;

  constructor(
    private readonly RED: NodeAPI,
    private readonly node: Node & { wires?: string[][] },
    options: ItemsInFlightOptions,
  ) {
    this.window = new ItemsInFlight(options);
  }

  send(msg: NodeMessage & { _msgid: string }, items: number): void {
    this.observer ??= observeDeliveries(this.RED, this.node, this.window.tracker, false);
    this.window.sent(msg._msgid, items, this.observer.deliveries);
    this.node.send(msg);
    this.window.afterSend(msg._msgid);
  }

  /** A new subscription: what the previous one sent no longer counts. */
  reset(): void {
    this.window.reset();
  }

  close(): void {
    this.window.reset();
    this.observer?.remove();
  }
}

/** The sender when the runtime has message hooks; without them, no flow control (undefined). */
export function itemWindowSender(RED: NodeAPI, node: Node, options: ItemsInFlightOptions): ItemWindowSender | undefined {
  return hasMessageHooks(RED) ? new ItemWindowSender(RED, node, options) : undefined;
}
