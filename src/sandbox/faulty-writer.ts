import type { ServerResponse } from "node:http";
import type { ConnectionFaults } from "./faults";
import { drained, writeThenCut } from "./http-util";

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
    const ok = this.#emit(data);
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

  #pump: Promise<void> | undefined;

  /**
   * Writes; under `chunkBytes`, pieces go out one per event-loop turn (so they reach the client as
   * separate reads) and the write reports "full" until they are out: callers wait with `ready()`.
   */
  #emit(data: string | Buffer): boolean {
    const size = this.faults.chunkBytes;
    if (!size || size <= 0) return this.res.write(data);
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    this.#pump = (async () => {
      for (let at = 0; at < buf.length && !this.closed; at += size) {
        if (!this.res.write(buf.subarray(at, at + size))) await drained(this.res);
        await new Promise((r) => setImmediate(r));
      }
    })();
    return false;
  }

  /** Resolves when the response can take the next write. */
  async ready(): Promise<void> {
    if (this.#pump) {
      await this.#pump;
      this.#pump = undefined;
    }
    if (this.res.writableNeedDrain && !this.closed) await drained(this.res);
  }

  /** Ends the body once everything written is handed over. */
  async end(): Promise<void> {
    await this.ready();
    if (!this.stopped && !this.closed) this.res.end();
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
