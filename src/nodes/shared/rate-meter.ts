/** Counts something (Items, bytes) and reports its rate per second once a second while running. */
export class RateMeter {
  private count = 0;
  private lastAt = Date.now();
  private timer?: NodeJS.Timeout;

  add(n = 1): void {
    this.count += n;
  }

  /** The rate since the last reading (per second), and a new period starts. */
  read(): number {
    const now = Date.now();
    const seconds = (now - this.lastAt) / 1000;
    const rate = seconds > 0 ? this.count / seconds : 0;
    this.count = 0;
    this.lastAt = now;
    return rate;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Starts a new period, and calls `tick` with the rate every second until stop(). */
  start(tick: (perSecond: number) => void): void {
    this.stop();
    this.read();
    this.timer = setInterval(() => tick(this.read()), 1000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Bytes per second for a status line. */
export function formatRate(bytesPerSecond: number): string {
  if (bytesPerSecond >= 1024 * 1024) return `${(bytesPerSecond / (1024 * 1024)).toFixed(1)} MB/s`;
  if (bytesPerSecond >= 1024) return `${(bytesPerSecond / 1024).toFixed(0)} kB/s`;
  return `${Math.round(bytesPerSecond)} B/s`;
}
