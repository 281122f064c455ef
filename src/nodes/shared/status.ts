import type { Node, NodeStatus } from "./node-red";

/**
 * Sends status to the editor at most once per interval: the latest status wins, and a change of
 * colour or shape (a state change) goes out at once.
 */
export class ThrottledStatus {
  private last?: NodeStatus;
  private pending?: NodeStatus;
  private lastSentAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly node: Pick<Node, "status">, private readonly intervalMs = 1000) {}

  set(status: NodeStatus): void {
    const stateChanged = !this.last || this.last.fill !== status.fill || this.last.shape !== status.shape;
    const now = Date.now();
    if (stateChanged || now - this.lastSentAt >= this.intervalMs) {
      this.send(status, now);
      return;
    }
    this.pending = status;
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (this.pending) this.send(this.pending, Date.now());
      }, this.intervalMs - (now - this.lastSentAt));
    }
  }

  clear(): void {
    this.stop();
    this.last = undefined;
    this.node.status({});
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }

  private send(status: NodeStatus, now: number): void {
    this.pending = undefined;
    if (this.last && this.last.fill === status.fill && this.last.shape === status.shape && this.last.text === status.text) return;
    this.last = status;
    this.lastSentAt = now;
    this.node.status(status);
  }
}
