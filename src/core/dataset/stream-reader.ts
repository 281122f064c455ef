import { StringDecoder } from "node:string_decoder";
import { DatasphereError, toDatasphereError } from "../errors";
import { LineSplitter } from "../lines";
import type { DatasetEvent, ItemsEvent } from "./events";
import { withRetries, type ReaderOptions } from "./http";
import { openStreamBody } from "./stream-body";
import { interpretLine } from "./stream-lines";

export interface StreamReaderOptions extends ReaderOptions {
  /** A line longer than this fails the pull (a server that never sends a newline). Default 32 MiB. */
  maxLineChars?: number;
}

/**
 * Reads a dataset `stream` endpoint: NDJSON (or `data:`-framed) lines, one Item each. Only the
 * request is retried; once bytes flow, a cut or idle timeout ends the iteration with an error (the
 * caller resumes from its cursor), after every complete line received before it. Back-pressure:
 * reading pauses when more than 1 MiB waits for the consumer (never per chunk).
 */
export async function* readStream(url: string, options: StreamReaderOptions): AsyncGenerator<DatasetEvent, void, undefined> {
  const what = "dataset stream";
  const body = await withRetries(url, options, () => openStreamBody(url, options, what, "text/event-stream, application/x-ndjson, application/json"));
  const decoder = new StringDecoder("utf8");
  const splitter = new LineSplitter();
  const maxLine = options.maxLineChars ?? 32 * 1024 * 1024;
  try {
    for (let chunk = await body.next(); chunk !== null; chunk = await body.next()) {
      const lines = splitter.push(decoder.write(chunk));
      if (splitter.pending > maxLine) throw new DatasphereError("PROTOCOL", `${what}: a line longer than ${maxLine} characters`);
      if (lines.length > 0) yield* interpret(lines, splitter.lineNumber - lines.length);
    }
    const tail = splitter.push(decoder.end());
    tail.push(...splitter.end());
    if (tail.length > 0) yield* interpret(tail, splitter.lineNumber - tail.length);
  } catch (error) {
    throw toDatasphereError(error, `${what} interrupted`);
  } finally {
    body.close();
  }
}

function* interpret(lines: string[], firstLineNumber: number): Generator<DatasetEvent> {
  let batch: ItemsEvent | undefined;
  for (let i = 0; i < lines.length; i++) {
    const result = interpretLine(lines[i]);
    if (result.kind === "item") {
      if (!batch) batch = { kind: "items", items: [] };
      batch.items.push(result.item);
    } else if (result.kind === "malformed") {
      if (batch) yield batch;
      batch = undefined;
      yield { kind: "malformed", lineNumber: firstLineNumber + i + 1, preview: result.preview, reason: result.reason };
    }
  }
  if (batch) yield batch;
}
