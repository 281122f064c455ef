import { StringDecoder } from "node:string_decoder";
import { DatasphereError } from "./errors";

/** One dispatched Server-Sent Event. */
export interface SseEvent {
  /** The `event:` field, "message" when absent. */
  type: string;
  data: string;
  /** The `id:` field of this event's own block, when it had one. */
  id?: string;
  /** The last event id in effect at dispatch (WHATWG): this event's id or an earlier one. */
  lastEventId: string;
}

export interface SseParserOptions {
  /** Longest line or event data accepted, in characters (default 32 Mi). */
  maxLength?: number;
  /** The last event id carried over from an earlier connection (WHATWG keeps it across reconnects). */
  lastEventId?: string;
}

const LF = 10;
const COLON = 58;
const SPACE = 32;
const BRACE = 123;
const BRACKET = 91;

/**
 * Incremental Server-Sent Events parser (WHATWG rules): `id`, `data` (multi-line joined with "\n"),
 * `event`, `retry`, comments, CR / LF / CRLF line ends, a leading BOM. A bare JSON line (starting
 * with `{` or `[`, no field name) is taken as a data line that completes an event on its own.
 * Chunk boundaries never change the result. No I/O, no timers.
 */
export class SseParser {
  /** The reconnection time from the last valid `retry:` field. */
  retryMs?: number;
  /** The last event id string set by a dispatch (what `Last-Event-ID` should carry). */
  lastEventId = "";
  /**
   * Set when a line or an event's data went over the limit (a PROTOCOL error): the events completed
   * before it were returned, and every later push returns nothing. The caller ends the connection.
   */
  failure?: DatasphereError;

  private readonly decoder = new StringDecoder("utf8");
  private readonly maxLength: number;
  /** Pieces of the unfinished line (none of them holds a line end). */
  private rest: string[] = [];
  private restLength = 0;
  private started = false;
  private skipLF = false;
  private hasData = false;
  private dataBuf = "";
  private eventType = "";
  private blockId: string | undefined;
  private idBuf = "";

  constructor(options: SseParserOptions = {}) {
    this.maxLength = options.maxLength ?? 32 * 1024 * 1024;
    this.lastEventId = this.idBuf = options.lastEventId ?? "";
  }

  /** Feeds a chunk (bytes are decoded as UTF-8 across chunk boundaries); returns the events it completes. */
  push(chunk: string | Uint8Array): SseEvent[] {
    const out: SseEvent[] = [];
    if (this.failure) return out;
    let text = typeof chunk === "string" ? chunk : this.decoder.write(chunk as Buffer);
    if (text.length === 0) return out;
    if (!this.started) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.skipLF && text.length > 0) {
      this.skipLF = false;
      if (text.charCodeAt(0) === LF) text = text.slice(1);
    }
    let lf = text.indexOf("\n");
    let cr = text.indexOf("\r");
    if (lf === -1 && cr === -1) {
      // No line end yet: keep the piece, so a long line arriving in small chunks costs linear time.
      this.rest.push(text);
      this.restLength += text.length;
      if (this.restLength > this.maxLength) this.fail(`event stream line longer than ${this.maxLength} characters`);
      return out;
    }
    let buf = text;
    if (this.restLength > 0) {
      const offset = this.restLength;
      this.rest.push(text);
      buf = this.rest.join("");
      if (lf !== -1) lf += offset;
      if (cr !== -1) cr += offset;
      // the line end found in `text` is the first one: earlier pieces held none
    }
    this.clearRest();
    const length = buf.length;
    let pos = 0;
    for (;;) {
      if (lf !== -1 && lf < pos) lf = buf.indexOf("\n", pos);
      if (cr !== -1 && cr < pos) cr = buf.indexOf("\r", pos);
      let end: number;
      let next: number;
      if (lf === -1 && cr === -1) break;
      if (cr === -1 || (lf !== -1 && lf < cr)) {
        end = lf;
        next = lf + 1;
      } else {
        end = cr;
        if (cr + 1 < length) next = buf.charCodeAt(cr + 1) === LF ? cr + 2 : cr + 1;
        else {
          next = cr + 1;
          this.skipLF = true;
        }
      }
      this.line(buf, pos, end, out);
      if (this.failure) return out;
      pos = next;
    }
    if (pos < length) {
      const tail = buf.slice(pos);
      this.rest.push(tail);
      this.restLength = tail.length;
      if (this.restLength > this.maxLength) this.fail(`event stream line longer than ${this.maxLength} characters`);
    }
    return out;
  }

  /** End of stream: an unfinished line or event is discarded (WHATWG). */
  end(): SseEvent[] {
    this.decoder.end();
    this.clearRest();
    this.skipLF = false;
    this.hasData = false;
    this.dataBuf = "";
    this.eventType = "";
    this.blockId = undefined;
    return [];
  }

  private fail(message: string): void {
    this.failure = new DatasphereError("PROTOCOL", `${message}: the connection is dropped and opened again`);
    this.clearRest();
    this.hasData = false;
    this.dataBuf = "";
  }

  private clearRest(): void {
    if (this.restLength > 0 || this.rest.length > 0) {
      this.rest = [];
      this.restLength = 0;
    }
  }

  private line(buf: string, start: number, end: number, out: SseEvent[]): void {
    if (start === end) {
      this.dispatch(out);
      return;
    }
    const first = buf.charCodeAt(start);
    if (first === COLON) return;
    if (first === BRACE || first === BRACKET) {
      this.appendData(buf.slice(start, end));
      if (!this.failure) this.dispatch(out);
      return;
    }
    // The field name is compared in place (no string per line); only the value is sliced.
    let colon = buf.indexOf(":", start);
    if (colon === -1 || colon >= end) colon = end;
    let v = colon + 1;
    if (v < end && buf.charCodeAt(v) === SPACE) v++;
    const value = v < end ? buf.slice(v, end) : "";
    switch (colon - start) {
      case 4:
        if (buf.startsWith("data", start)) this.appendData(value);
        break;
      case 5:
        if (buf.startsWith("event", start)) this.eventType = value;
        else if (buf.startsWith("retry", start) && /^[0-9]+$/.test(value)) this.retryMs = Number(value);
        break;
      case 2:
        if (buf.startsWith("id", start) && value.indexOf("\0") === -1) {
          this.idBuf = value;
          this.blockId = value;
        }
        break;
      default:
        break;
    }
  }

  private appendData(value: string): void {
    if (this.hasData) {
      this.dataBuf += "\n" + value;
      if (this.dataBuf.length > this.maxLength) this.fail(`event data longer than ${this.maxLength} characters`);
    } else {
      this.dataBuf = value;
      this.hasData = true;
    }
  }

  private dispatch(out: SseEvent[]): void {
    this.lastEventId = this.idBuf;
    if (this.hasData) {
      const event: SseEvent = { type: this.eventType || "message", data: this.dataBuf, lastEventId: this.idBuf };
      if (this.blockId !== undefined) event.id = this.blockId;
      out.push(event);
    }
    this.hasData = false;
    this.dataBuf = "";
    this.eventType = "";
    this.blockId = undefined;
  }
}

/** Parses a whole stream at once (tests, small bodies). */
export function parseSse(input: string | Uint8Array): SseEvent[] {
  const parser = new SseParser();
  return parser.push(input).concat(parser.end());
}
