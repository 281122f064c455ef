import { systemClock, type Clock, type TimerHandle } from "../../core/clock";
import type { Node, NodeStatus } from "./node-red";

/** Counts and rates reach the editor (and Status nodes) at most this often. */
export const STATUS_INTERVAL_MS = 5_000;

/**
 * A node's status as the editor and Status nodes see it. A state (`set`: connecting, connected,
 * retrying, failed, done…) goes out at once; progress (`progress`: counts and rates) at most once per
 * interval, the latest winning, so a busy node does not flood a Status node.
 */
export class ThrottledStatus {
  private last?: NodeStatus;
  private pending?: NodeStatus;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private timer?: TimerHandle;

  constructor(
    private readonly node: Pick<Node, "status">,
    private readonly intervalMs = STATUS_INTERVAL_MS,
    private readonly clock: Clock = systemClock,
  ) {}

  /** A state change: shown at once; a pending progress update is dropped. */
  set(status: NodeStatus): void {
    this.cancelPending();
    this.send(status);
  }

  /** Counts or rates: shown at once when the colour or shape changes, else at most once per interval. */
  progress(status: NodeStatus): void {
    const now = this.clock.now();
    const newState = !this.last || this.last.fill !== status.fill || this.last.shape !== status.shape;
    if (newState || now - this.lastSentAt >= this.intervalMs) {
      this.cancelPending();
      this.send(status);
      return;
    }
    this.pending = status;
    if (this.timer === undefined) {
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        const next = this.pending;
        this.pending = undefined;
        if (next) this.send(next);
      }, this.intervalMs - (now - this.lastSentAt));
    }
  }

  clear(): void {
    this.stop();
    this.last = undefined;
    this.node.status({});
  }

  stop(): void {
    this.cancelPending();
  }

  private cancelPending(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }

  private send(status: NodeStatus): void {
    if (this.last && this.last.fill === status.fill && this.last.shape === status.shape && this.last.text === status.text) return;
    this.last = status;
    this.lastSentAt = this.clock.now();
    this.node.status(status);
  }
}
