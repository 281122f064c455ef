/**
 * Dataset packages as index arithmetic: a package is a count of Items with increasing datetimes;
 * `order`, `from` and `to` select an index range, and position p of the answer maps to one index.
 */
export interface DatasetSource {
  readonly count: number;
  /** Datetime (ms) of item i. */
  datetimeOf(index: number): number;
  /** Inclusive index range of Items with from <= datetime <= to (lo > hi when empty). */
  range(fromMs: number | undefined, toMs: number | undefined): [number, number];
}

export class GeneratedSource implements DatasetSource {
  constructor(readonly count: number, readonly startMs: number, readonly stepMs: number) {}

  datetimeOf(index: number): number {
    return this.startMs + index * this.stepMs;
  }

  range(fromMs: number | undefined, toMs: number | undefined): [number, number] {
    let lo = 0;
    let hi = this.count - 1;
    if (fromMs !== undefined) lo = Math.max(lo, this.stepMs > 0 ? Math.ceil((fromMs - this.startMs) / this.stepMs) : fromMs <= this.startMs ? 0 : this.count);
    if (toMs !== undefined) hi = Math.min(hi, this.stepMs > 0 ? Math.floor((toMs - this.startMs) / this.stepMs) : toMs >= this.startMs ? hi : -1);
    return [lo, hi];
  }
}

/** Items published under an active_parent, kept sorted by datetime. */
export class StoredSource implements DatasetSource {
  readonly entries: { ms: number; text: string }[] = [];

  get count(): number {
    return this.entries.length;
  }

  add(ms: number, text: string): void {
    let at = this.entries.length;
    while (at > 0 && this.entries[at - 1].ms > ms) at--;
    this.entries.splice(at, 0, { ms, text });
  }

  datetimeOf(index: number): number {
    return this.entries[index].ms;
  }

  range(fromMs: number | undefined, toMs: number | undefined): [number, number] {
    const lower = (ms: number) => {
      let a = 0;
      let b = this.entries.length;
      while (a < b) {
        const m = (a + b) >> 1;
        if (this.entries[m].ms < ms) a = m + 1;
        else b = m;
      }
      return a;
    };
    const lo = fromMs === undefined ? 0 : lower(fromMs);
    const hi = toMs === undefined ? this.entries.length - 1 : lower(toMs + 1) - 1;
    return [lo, hi];
  }
}

export interface DatasetQuery {
  order: "new" | "old";
  fromMs?: number;
  toMs?: number;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$/;

/** A date (whole UTC day) or an RFC 3339 timestamp; `end` makes a plain date mean the end of that day. */
export function parseInstant(text: string, end: boolean): number | undefined {
  const value = text.trim();
  if (DATE_ONLY.test(value)) {
    const ms = Date.parse(`${value}T00:00:00Z`);
    return Number.isNaN(ms) ? undefined : end ? ms + 86_400_000 - 1 : ms;
  }
  if (!RFC3339.test(value)) return undefined;
  const hasZone = /([Zz]|[+-]\d{2}:?\d{2})$/.test(value);
  const ms = Date.parse(hasZone ? value.replace(" ", "T") : `${value.replace(" ", "T")}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Parses order/from/to; a string is the 400 reason. */
export function parseDatasetQuery(params: URLSearchParams): DatasetQuery | string {
  const order = params.get("order") ?? "new";
  if (order !== "new" && order !== "old") return `order must be "new" or "old", not "${order.slice(0, 40)}"`;
  const query: DatasetQuery = { order };
  const from = params.get("from");
  const to = params.get("to");
  if (from !== null) {
    const ms = parseInstant(from, false);
    if (ms === undefined) return `from is not a date or RFC 3339 timestamp: "${from.slice(0, 40)}"`;
    query.fromMs = ms;
  }
  if (to !== null) {
    const ms = parseInstant(to, true);
    if (ms === undefined) return `to is not a date or RFC 3339 timestamp: "${to.slice(0, 40)}"`;
    query.toMs = ms;
  }
  if (query.fromMs !== undefined && query.toMs !== undefined && query.fromMs > query.toMs) return "from is after to";
  return query;
}

/** The ordered selection: position p (0-based) -> item index. */
export class Selection {
  readonly length: number;
  constructor(readonly lo: number, readonly hi: number, readonly order: "new" | "old") {
    this.length = Math.max(0, hi - lo + 1);
  }

  indexAt(position: number): number {
    return this.order === "old" ? this.lo + position : this.hi - position;
  }
}

export const PAGE_SIZE = 50;

export function encodeCursor(position: number): string {
  return Buffer.from(`p:${position}`).toString("base64url");
}

export function decodeCursor(cursor: string): number | undefined {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const match = /^p:(\d{1,12})$/.exec(text);
  return match ? Number(match[1]) : undefined;
}
