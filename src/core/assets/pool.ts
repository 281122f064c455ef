import { abortError } from "../abort";

interface Waiter {
  host: string;
  grant: (release: () => void) => void;
  fail: (error: Error) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * Bounded concurrency, global and per host: at most `global` slots in use, at most `perHost` of them
 * for one host. Waiters are served in arrival order, skipping those whose host is full.
 */
export class TransferPool {
  private active = 0;
  private readonly perHostActive = new Map<string, number>();
  private readonly queue: Waiter[] = [];

  constructor(readonly global: number, readonly perHost: number) {
    if (!(global >= 1) || !(perHost >= 1)) throw new RangeError("pool limits must be at least 1");
  }

  get inUse(): number {
    return this.active;
  }

  get waiting(): number {
    return this.queue.length;
  }

  inUseFor(host: string): number {
    return this.perHostActive.get(host) ?? 0;
  }

  /** Resolves with a release function once a slot for this host is free; rejects when the signal fires. */
  acquire(host: string, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortError("transfer"));
    return new Promise((grant, fail) => {
      const waiter: Waiter = { host, grant, fail, signal };
      if (signal) {
        waiter.onAbort = () => {
          const at = this.queue.indexOf(waiter);
          if (at >= 0) this.queue.splice(at, 1);
          fail(abortError("transfer"));
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      this.drain();
    });
  }

  private drain(): void {
    for (let i = 0; i < this.queue.length && this.active < this.global; ) {
      const waiter = this.queue[i];
      if (this.inUseFor(waiter.host) >= this.perHost) {
        i += 1;
        continue;
      }
      this.queue.splice(i, 1);
      if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener("abort", waiter.onAbort);
      this.active += 1;
      this.perHostActive.set(waiter.host, this.inUseFor(waiter.host) + 1);
      let released = false;
      waiter.grant(() => {
        if (released) return;
        released = true;
        this.active -= 1;
        const left = this.inUseFor(waiter.host) - 1;
        if (left > 0) this.perHostActive.set(waiter.host, left);
        else this.perHostActive.delete(waiter.host);
        this.drain();
      });
    }
  }
}
