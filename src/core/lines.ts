/**
 * Incremental line splitter: text chunks in, complete lines out. Pure (no I/O, no timers); chunk
 * boundaries never change the result. Lines end at LF or CRLF; the terminator is not part of the
 * line. A leading byte-order mark is dropped. Line numbers start at 1.
 */
export class LineSplitter {
  private rest = "";
  private started = false;
  /** Number of the last line returned. */
  lineNumber = 0;

  /** Complete lines found in this chunk (after what was left over from earlier chunks). */
  push(chunk: string): string[] {
    if (!this.started && chunk.length > 0) {
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    const lines: string[] = [];
    let start = 0;
    let newline = chunk.indexOf("\n");
    if (newline === -1) {
      this.rest += chunk;
      return lines;
    }
    if (this.rest.length > 0) {
      lines.push(stripCr(this.rest + chunk.slice(0, newline)));
      this.rest = "";
      start = newline + 1;
      newline = chunk.indexOf("\n", start);
    }
    while (newline !== -1) {
      lines.push(stripCr(chunk.slice(start, newline)));
      start = newline + 1;
      newline = chunk.indexOf("\n", start);
    }
    this.rest = chunk.slice(start);
    this.lineNumber += lines.length;
    return lines;
  }

  /** The last line when the text did not end with a newline (empty array otherwise). */
  end(): string[] {
    const rest = this.rest;
    this.rest = "";
    if (rest.length === 0) return [];
    this.lineNumber += 1;
    return [stripCr(rest)];
  }

  /** Characters held while waiting for the end of a line. */
  get pending(): number {
    return this.rest.length;
  }
}

function stripCr(line: string): string {
  return line.length > 0 && line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
}

/** Splits a whole text at once (same rules as the incremental splitter). */
export function splitLines(text: string): string[] {
  const splitter = new LineSplitter();
  return [...splitter.push(text), ...splitter.end()];
}
