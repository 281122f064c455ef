import { randomBytes } from "node:crypto";

/**
 * `_msgid`s for a node that sends a message per Item: 16 hex digits like Node-RED's own
 * (`RED.util.generateId()`), a random half drawn once and a counter, so a message costs one
 * increment instead of eight random draws. A new random half when the counter wraps.
 */
export function messageIdSequence(): () => string {
  let prefix = randomBytes(4).toString("hex");
  let n = 0;
  return () => {
    n = (n + 1) >>> 0;
    if (n === 0) prefix = randomBytes(4).toString("hex");
    return prefix + n.toString(16).padStart(8, "0");
  };
}
