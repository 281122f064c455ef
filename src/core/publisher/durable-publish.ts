import type { DatasphereError } from "../errors";
import type { DurableOutbox } from "./durable-outbox";
import type { Delivery, OutboxLimits, SettleInfo } from "./outbox";

type Settle = (err?: DatasphereError, info?: SettleInfo) => void;

interface PublishTarget {
  publish(data: Buffer, owner: object, limits: OutboxLimits, settle: Settle, delivery: Delivery): void;
}

/**
 * Ends a durable record with its message, except when the publisher closed before sending it
 * (a redeploy or a restart): then the record stays and the message goes out after the next start.
 */
function settleDurably(durable: DurableOutbox, id: number, settle: Settle): Settle {
  return (err, info) => {
    if (!err || err.code !== "CLOSED") durable.remove(id);
    settle(err, info);
  };
}

/** Queues a message already recorded in the file (`durable.add` gave `id`). */
export function publishRecorded(durable: DurableOutbox, id: number, target: PublishTarget, data: Buffer, owner: object, limits: OutboxLimits, delivery: Delivery, settle: Settle): void {
  target.publish(data, owner, limits, settleDurably(durable, id, settle), delivery);
}

/**
 * Queues again what the file held at start (oldest first): messages that were waiting, or written
 * and not proven, when Node-RED stopped. They may have reached the server before, so they count as
 * possible duplicates. Those past their age limit are dropped and counted.
 */
export function replayRecorded(durable: DurableOutbox, target: PublishTarget, owner: object, limits: OutboxLimits, delivery: Delivery, now: number, settle: Settle): { replayed: number; expired: number } {
  const pending = durable.pending();
  let replayed = 0;
  let expired = 0;
  for (const record of pending) {
    const left = limits.maxAgeMs > 0 ? record.offeredAt + limits.maxAgeMs - now : 0;
    if (limits.maxAgeMs > 0 && left <= 0) {
      durable.remove(record.id);
      expired++;
      continue;
    }
    const own = { ...limits, maxAgeMs: left, maxMessages: Math.max(limits.maxMessages, pending.length) };
    target.publish(record.data, owner, own, settleDurably(durable, record.id, (err) => settle(err, err ? undefined : { possibleDuplicate: true })), delivery);
    replayed++;
  }
  return { replayed, expired };
}
