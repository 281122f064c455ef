/** Removes every occurrence of the given secrets from a text (for errors and logs built from server data). */
export function redact(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join("***");
  }
  return out;
}

/** The first n characters of a text, for error messages that quote bad input. */
export function preview(text: string, n = 200): string {
  return text.length > n ? `${text.slice(0, n)}…` : text;
}

/** `preview` of a name or path taken from outside data, with control characters shown as `\xNN`. */
export function printablePreview(text: string, n: number): string {
  return preview(text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`), n);
}
