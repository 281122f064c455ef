import { SseParser, type SseEvent } from "../../src/core/sse";

/** Pushes `bytes` into `parser` cut at the offsets `cuts` (ascending) and returns the events it completed; does not call end(). */
export function pushInChunks(parser: SseParser, bytes: Buffer, cuts: number[]): SseEvent[] {
  const events: SseEvent[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    for (const e of parser.push(bytes.subarray(from, cut))) events.push(e);
    from = cut;
  }
  return events;
}
