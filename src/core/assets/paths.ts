import { isAbsolute, relative, resolve, sep } from "node:path";
import { DatasphereError } from "../errors";
import { printablePreview } from "../redact";

/** Characters that are unsafe in a file name on some platform (backslash is a separator everywhere). */
const UNSAFE_CHARS = /[<>:"|?*\u0000-\u001f\u007f\\/]/g;
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;
const DRIVE_LETTER = /^[A-Za-z]:/;
const MAX_SEGMENT_BYTES = 200;

/**
 * Why a name taken from a document (id, key, collection, file:local_path) may not decide a path,
 * or undefined when it may. These are refused, not repaired: NUL, `.`/`..` segments, absolute
 * paths, drive letters and UNC paths. Backslashes count as separators on every platform.
 */
export function unsafeReason(value: string): string | undefined {
  if (value.includes("\u0000")) return "contains a NUL character";
  if (value.trim() === "") return "is empty";
  if (value.startsWith("/") || value.startsWith("\\")) return "is an absolute path";
  if (DRIVE_LETTER.test(value)) return "starts with a drive letter";
  if (value.split(/[\\/]+/).some((s) => s !== "" && /^[.\s]+$/.test(s))) return "has a '.' or '..' segment";
  return undefined;
}

/** One folder or file name: separators and platform-unsafe characters become `_`. Linear in the name's length. */
export function sanitizeSegment(value: string): string {
  // Replacing a character by "_" never adds bytes: cut first, so a huge name costs no more than a short one.
  let out = truncateToBytes(value.slice(0, MAX_SEGMENT_BYTES).replace(UNSAFE_CHARS, "_"), MAX_SEGMENT_BYTES);
  let end = out.length;
  while (end > 0 && (out[end - 1] === "." || out[end - 1] === " ")) end -= 1;
  out = (out.slice(0, end) + "_".repeat(out.length - end)).trim();
  if (out === "" || out === "." || out === "..") out = "_";
  if (WINDOWS_RESERVED.test(out)) out = truncateToBytes(`_${out}`, MAX_SEGMENT_BYTES);
  return out;
}

/** The longest prefix of `text` that fits in `max` UTF-8 bytes, never splitting a surrogate pair. */
export function truncateToBytes(text: string, max: number): string {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: only the first `max` units can matter.
  let out = text.length > max ? text.slice(0, max) : text;
  if (Buffer.byteLength(out) <= max) return out;
  const bytes = Buffer.from(out);
  out = bytes.subarray(0, max).toString("utf8");
  // A cut inside a multi-byte character leaves U+FFFD at the end: drop it.
  while (out.endsWith("\ufffd") && Buffer.byteLength(out) > 0 && !text.startsWith(out)) out = out.slice(0, -1);
  return out;
}

/** A relative path (file:local_path) split on `/` and `\`, each segment sanitized. Throws when unsafe. */
export function sanitizeRelativePath(value: string): string[] {
  const reason = unsafeReason(value);
  if (reason) throw new DatasphereError("UNSAFE_PATH", `path "${preview(value)}" ${reason}`);
  return value.split(/[\\/]+/).filter((s) => s !== "").map(sanitizeSegment);
}

/**
 * Joins segments under root and proves the result stays inside it: the last line of defence,
 * whatever the segments went through before.
 */
export function containedPath(root: string, segments: ReadonlyArray<string>): string {
  for (const s of segments) {
    const reason = unsafeReason(s);
    if (reason) throw new DatasphereError("UNSAFE_PATH", `path segment "${preview(s)}" ${reason}`);
    if (/[\\/]/.test(s)) throw new DatasphereError("UNSAFE_PATH", `path segment "${preview(s)}" contains a separator`);
  }
  const base = resolve(root);
  const target = resolve(base, ...segments);
  const rel = relative(base, target);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new DatasphereError("UNSAFE_PATH", `path "${preview(segments.join("/"))}" would leave the target folder`);
  }
  return target;
}

function preview(text: string): string {
  return printablePreview(text, 80);
}
