import type { ServerResponse } from "node:http";
import type { ConnectionFaults } from "./faults";
import { writeThenCut } from "./http-util";

export type WriteResult = "ok" | "full" | "gone";

/**
 * Writes a response body while applying one connection's faults: cut after N bytes or N events,
 * go silent after N events. "full" means wait for drain; "gone" means stop producing.
 */
export class FaultyWriter {
  bytes = 0;
  events = 0;
  /** True once cut or stalled: nothing more is written. */
  stopped = false;
  stalled = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly faults: ConnectionFaults,
    private readonly onInjected: () => void,
  ) {}

  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  /** True when a fault counts events, so events must be written one at a time. */
  get countsEvents(): boolean {
    return this.faults.dropAfterEvents !== undefined || this.faults.stallAfterEvents !== undefined || this.faults.malformedEvery !== undefined;
  }

  /** True when a malformed event/line should go before the next real one. */
  malformedDue(): boolean {
    const every = this.faults.malformedEvery;
    return every !== undefined && every > 0 && (this.events + 1) % every === 0;
  }

  write(data: string | Buffer, isEvent: boolean): WriteResult {
    if (this.stopped || this.closed) return "gone";
    const limit = this.faults.dropAfterBytes;
    if (limit !== undefined) {
      const length = Buffer.byteLength(data);
      if (this.bytes + length >= limit) {
        const head = (typeof data === "string" ? Buffer.from(data) : data).subarray(0, Math.max(0, limit - this.bytes));
        this.bytes += head.length;
        this.stop(true);
        writeThenCut(this.res, head);
        return "gone";
      }
      this.bytes += length;
    }
    const ok = this.res.write(data);
    if (isEvent) {
      this.events++;
      if (this.faults.dropAfterEvents !== undefined && this.events >= this.faults.dropAfterEvents) {
        this.stop(true);
        writeThenCut(this.res, undefined);
        return "gone";
      }
      if (this.faults.stallAfterEvents !== undefined && this.events >= this.faults.stallAfterEvents) {
        this.stop(false);
        this.stalled = true;
        return "gone";
      }
    }
    return ok ? "ok" : "full";
  }

  /** Applies a drop that is due before anything is written (dropAfterEvents: 0, dropAfterBytes: 0, stallAfterEvents: 0). */
  checkImmediate(): boolean {
    if (this.faults.dropAfterEvents === 0 || this.faults.dropAfterBytes === 0) {
      this.stop(true);
      writeThenCut(this.res, undefined);
      return false;
    }
    if (this.faults.stallAfterEvents === 0) {
      this.stop(false);
      this.stalled = true;
      return false;
    }
    return true;
  }

  private stop(injected: boolean): void {
    this.stopped = true;
    if (injected || this.faults.stallAfterEvents !== undefined) this.onInjected();
  }
}
