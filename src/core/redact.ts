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
