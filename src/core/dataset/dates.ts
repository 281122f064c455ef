import { DatasphereError } from "../errors";

const PLAIN_DATE = /^\d{4}-\d{2}-\d{2}$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const NO_ZONE = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(:\d{2}(\.\d+)?)?)$/;

/**
 * A `from`/`to` value as the service gets it: RFC 3339 UTC. A plain date (`2024-05-01`) and an
 * RFC 3339 UTC text pass through unchanged (full precision); a date picker's `2024-05-01T10:30`
 * (no zone) is taken as UTC; an offset is converted to UTC; a Date or epoch milliseconds too.
 * Empty means "not set". Anything else is a BAD_REQUEST naming the field.
 */
export function normalizeDateParam(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (value instanceof Date) return isoOrThrow(value, field, String(value));
  if (typeof value === "number") return isoOrThrow(new Date(value), field, String(value));
  if (typeof value !== "string") throw new DatasphereError("BAD_REQUEST", `${field}: expected a date text, a Date or epoch milliseconds`);
  const text = value.trim();
  if (text === "") return undefined;
  if (PLAIN_DATE.test(text) || RFC3339_UTC.test(text)) return text;
  const local = NO_ZONE.exec(text);
  if (local) {
    const time = local[2].length === 5 ? `${local[2]}:00` : local[2];
    return isoOrThrow(new Date(`${local[1]}T${time}Z`), field, text);
  }
  if (/^\d{4}-\d{2}-\d{2}T/.test(text)) return isoOrThrow(new Date(text), field, text);
  throw new DatasphereError("BAD_REQUEST", `${field}: "${text.slice(0, 60)}" is not a date (use 2024-05-01 or 2024-05-01T10:30:00Z)`);
}

function isoOrThrow(date: Date, field: string, shown: string): string {
  if (Number.isNaN(date.getTime())) throw new DatasphereError("BAD_REQUEST", `${field}: "${shown.slice(0, 60)}" is not a valid date`);
  return date.toISOString();
}
