import { clampDelay } from "../clock";

export interface ReconnectDelayOptions {
  /** The reconnection time: the server's `retry:` or our default. */
  initialMs: number;
  /** Cap of the exponential growth (the base before jitter). */
  maxMs: number;
  /** Floor whatever the server says (`retry: 0` must not mean a connection storm). */
  floorMs: number;
  /** 0..1: the delay is drawn from [d, d * (1 + jitter)]: jitter only lengthens (WHATWG: at least the retry time). */
  jitter?: number;
  random?: () => number;
}

/** Exponential reconnect delay that never goes below the reconnection time; `reset()` after a healthy connection. */
export class ReconnectDelay {
  private attempt = 0;
  constructor(private readonly options: ReconnectDelayOptions) {}

  get attempts(): number {
    return this.attempt;
  }

  /** The next delay; never below `atLeastMs` (Retry-After), the reconnection time or the floor. */
  next(atLeastMs = 0): number {
    const { initialMs, maxMs, floorMs, jitter = 0.25, random = Math.random } = this.options;
    const first = Math.max(initialMs, floorMs);
    const base = Math.max(first, Math.min(maxMs, first * Math.pow(2, this.attempt)));
    this.attempt += 1;
    return clampDelay(Math.max(base * (1 + jitter * random()), atLeastMs));
  }

  reset(): void {
    this.attempt = 0;
  }
}
