// Reading editor properties: an empty or absent value means the default, so flows saved before a
// property existed stay valid.

export function numberOr(value: unknown, fallback: number, min: number): number {
  const n = typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
  return Number.isFinite(n) && n >= min ? n : fallback;
}

/** Names a numeric property whose value cannot be used, and the default used instead. */
export type SettingWarning = (property: string, value: string, expected: string, fallback: number) => void;

/**
 * A node's numeric properties, read after `${VAR}` expansion. Empty or absent means the default.
 * Any other value that is not what the property takes ("abc", 0, 2.5 for a whole number) also gives
 * the default, after `warn` names the property, the value and what it takes.
 */
export class NumericSettings {
  constructor(
    private readonly def: object,
    private readonly env: (value: string | undefined) => string,
    private readonly warn: SettingWarning,
  ) {}

  /** A whole number >= min. */
  integer(property: string, fallback: number, min = 1): number {
    return this.read(property, fallback, min, true);
  }

  /** Any number >= min (seconds, megabytes). */
  number(property: string, fallback: number, min: number): number {
    return this.read(property, fallback, min, false);
  }

  private read(property: string, fallback: number, min: number, whole: boolean): number {
    const raw = (this.def as Record<string, unknown>)[property];
    const text = this.env(raw === undefined || raw === null ? "" : String(raw)).trim();
    if (text === "") return fallback;
    const n = Number(text);
    if (Number.isFinite(n) && n >= min && (!whole || Number.isInteger(n))) return n;
    this.warn(property, text.slice(0, 40), `${whole ? "a whole number" : "a number"} >= ${min}`, fallback);
    return fallback;
  }
}

export function oneOf<T extends string>(value: unknown, allowed: readonly T[], fallback: T): T {
  return allowed.includes(value as T) ? (value as T) : fallback;
}

/** `true`/`false` or their strings; anything else is undefined (the caller picks the default). */
export function booleanFrom(value: unknown): boolean | undefined {
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  return undefined;
}
