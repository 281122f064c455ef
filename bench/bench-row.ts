/** One line of the benchmark table. `ratio` is value / baseline's value, measured in the same run. */
export interface BenchRow {
  workload: string;
  variant: string;
  value: number;
  unit: string;
  baseline?: string;
  ratio?: number;
  peakRssMb?: number;
  min?: number;
  max?: number;
  note?: string;
}

export interface BenchOptions {
  quick: boolean;
}

export type BenchModule = { run(opts: BenchOptions): Promise<BenchRow[]> };

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A row whose value is the median of `values`, with their min-max. */
export function medianRow(workload: string, variant: string, values: number[], unit: string, extra: Partial<BenchRow> = {}): BenchRow {
  return { workload, variant, value: median(values), unit, min: Math.min(...values), max: Math.max(...values), ...extra };
}
