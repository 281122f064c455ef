import { preview } from "../redact";

/** One stream line, classified: an Item, nothing (blank, comment, SSE field) or a malformed line. */
export type LineResult = { kind: "item"; item: Record<string, unknown> } | { kind: "skip" } | { kind: "malformed"; preview: string; reason: string };

const SKIP: LineResult = { kind: "skip" };
const SSE_FIELD = /^(id|event|retry)(:|$)/;

/**
 * Accepts an NDJSON line or an SSE `data:` line holding one JSON object. Blank lines, SSE comments
 * (`:`) and `id:`/`event:`/`retry:` fields are skipped. Pure.
 */
export function interpretLine(line: string): LineResult {
  let text = line;
  const first = text.charCodeAt(0);
  if (first === 123 /* { */) return parseObject(text);
  if (text.trim() === "") return SKIP;
  if (text.startsWith("data:")) {
    text = text.charCodeAt(5) === 32 ? text.slice(6) : text.slice(5);
    if (text.trim() === "") return SKIP;
  } else if (first === 58 /* : */ || SSE_FIELD.test(text)) {
    return SKIP;
  }
  return parseObject(text);
}

function parseObject(text: string): LineResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { kind: "malformed", preview: preview(text, 200), reason: `invalid JSON (${(error as Error).message})` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { kind: "malformed", preview: preview(text, 200), reason: "not a JSON object" };
  }
  return { kind: "item", item: value as Record<string, unknown> };
}
