export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor?: number;
  /** 0..1: the delay is drawn from [d*(1-jitter), d]. */
  jitter?: number;
  random?: () => number;
}

/** Jittered exponential backoff; `reset()` after a healthy connection. */
export class Backoff {
  private attempt = 0;
  constructor(private readonly options: BackoffOptions) {}

  get attempts(): number {
    return this.attempt;
  }

  next(atLeastMs = 0): number {
    const { initialMs, maxMs, factor = 2, jitter = 0.5, random = Math.random } = this.options;
    const base = Math.min(maxMs, initialMs * Math.pow(factor, this.attempt));
    this.attempt += 1;
    const delay = base * (1 - jitter * random());
    return Math.max(Math.round(delay), atLeastMs);
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Parses a Retry-After header (delta seconds or HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | string[] | undefined | null, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
