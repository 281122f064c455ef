// Reading editor properties: an empty or absent value means the default, so flows saved before a
// property existed stay valid.

export function numberOr(value: unknown, fallback: number, min: number): number {
  const n = typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
  return Number.isFinite(n) && n >= min ? n : fallback;
}

export function positiveInt(value: unknown, fallback: number): number {
  return Math.floor(numberOr(value, fallback, 1));
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
