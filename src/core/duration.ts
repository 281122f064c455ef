/** A duration in seconds for messages, without the unit: "60", "0.4"; whole seconds from 10 s up. */
export function seconds(ms: number): string {
  if (ms >= 10_000) return String(Math.round(ms / 1000));
  return ms % 1000 === 0 ? String(ms / 1000) : (ms / 1000).toFixed(1);
}
