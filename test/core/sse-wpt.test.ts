// Port of the parser-level cases of web-platform-tests `eventsource/` (the byte streams their
// resources/message.py serves, and what the tests expect), run at every split of the bytes.
// message.py ends the message with "\n\n" unless the test asks for newline=none.
import { strict as assert } from "node:assert";
import { SseParser, type SseEvent } from "../../src/core/sse";
import { pushInChunks } from "../helpers/sse-chunks";

interface Case {
  /** The wpt file the bytes and expectations come from. */
  source: string;
  bytes: Buffer;
  /** [type, data, lastEventId] of each event dispatched, in order. */
  expected: Array<[string, string, string]>;
  /** `lastEventId` after the stream ends (what the next connection sends). */
  lastEventId?: string;
  retryMs?: number;
}

const utf8 = (text: string) => Buffer.from(text, "utf8");
const long = "x".repeat(2 * 1024);

const CASES: Case[] = [
  { source: "format-bom.js", bytes: utf8("\uFEFFdata:1\n\n\uFEFFdata:2\n\ndata:3\n\n"), expected: [["message", "1", ""], ["message", "3", ""]] },
  { source: "format-bom-2.any.js", bytes: utf8("\uFEFF\uFEFFdata:1\n\ndata:2\n\ndata:3\n\n"), expected: [["message", "2", ""], ["message", "3", ""]] },
  {
    source: "format-comments.js",
    bytes: utf8(`data:1\r:\0\n:\r\ndata:2\n:${long}\rdata:3\n:data:fail\r:${long}\ndata:4\n\n`),
    expected: [["message", "1\n2\n3\n4", ""]],
  },
  { source: "format-field-data.js", bytes: utf8("data:\n\ndata\ndata\n\ndata:test\n\n"), expected: [["message", "", ""], ["message", "\n", ""], ["message", "test", ""]] },
  { source: "format-field-event.htm", bytes: utf8("event:test\ndata:x\n\ndata:x\n\n"), expected: [["test", "x", ""], ["message", "x", ""]] },
  { source: "format-field-event-empty.htm", bytes: utf8("event: \ndata:data\n\n"), expected: [["message", "data", ""]] },
  {
    source: "format-field-id.htm (resources/last-event-id.php, first connection)",
    bytes: utf8("id: …\nretry: 200\ndata: hello\n\n"),
    expected: [["message", "hello", "…"]],
    lastEventId: "…",
    retryMs: 200,
  },
  {
    source: "format-field-id-3.htm persists (resources/last-event-id2.py type 1)",
    bytes: utf8("id: 1\ndata: 1\n\ndata:2\n\n"),
    expected: [["message", "1", "1"], ["message", "2", "1"]],
    lastEventId: "1",
  },
  {
    source: "format-field-id-3.htm changes and persists (type 2)",
    bytes: utf8("id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n"),
    expected: [["message", "1", "1"], ["message", "2", "2"], ["message", "3", "2"]],
    lastEventId: "2",
  },
  {
    source: "format-field-id-3.htm resets (type 3)",
    bytes: utf8("id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n"),
    expected: [["message", "1", "1"], ["message", "2", ""], ["message", "3", ""]],
    lastEventId: "",
  },
  {
    // The HTML standard ignores an id containing U+0000 (the stored version of this test predates that rule;
    // what both agree on: the id is never sent as Last-Event-ID).
    source: "format-field-id-null.htm (resources/last-event-id.py?idvalue=%00%00)",
    bytes: utf8("id: \0\0\nretry: 200\ndata: hello\n\n"),
    expected: [["message", "hello", ""]],
    lastEventId: "",
    retryMs: 200,
  },
  { source: "format-field-retry.htm", bytes: utf8("retry:02000\ndata:x\n\n"), expected: [["message", "x", ""]], retryMs: 2000 },
  { source: "format-field-retry-bogus.htm", bytes: utf8("retry:2000\nretry:1000x\ndata:x\n\n"), expected: [["message", "x", ""]], retryMs: 2000 },
  { source: "format-null-character.html", bytes: utf8("data:\0\n\n"), expected: [["message", "\0", ""]] },
  {
    source: "format-data-before-final-empty-line.js (newline=none: the last event is never completed)",
    bytes: utf8("retry:1000\ndata:test1\n\nid:test\ndata:test2"),
    expected: [["message", "test1", ""]],
    lastEventId: "",
    retryMs: 1000,
  },
  { source: "format-utf-8.any.js (served as charset=windows-1252: always UTF-8)", bytes: Buffer.from("data:ok\xE2\x80\xA6\n\n", "latin1"), expected: [["message", "ok…", ""]] },
];

function run(bytes: Buffer, cuts: number[]): { events: SseEvent[]; parser: SseParser } {
  const parser = new SseParser();
  const events = pushInChunks(parser, bytes, cuts);
  events.push(...parser.end());
  return { events, parser };
}

describe("core/sse: web-platform-tests eventsource format cases", () => {
  for (const c of CASES) {
    it(`${c.source}: at every split, and one byte at a time`, () => {
      const splits: number[][] = [[]];
      for (let i = 1; i < c.bytes.length; i++) splits.push([i]);
      splits.push(Array.from({ length: c.bytes.length - 1 }, (_, i) => i + 1));
      for (const cuts of splits) {
        const { events, parser } = run(c.bytes, cuts);
        const where = cuts.length === 1 ? `split at byte ${cuts[0]}` : cuts.length === 0 ? "whole" : "one byte at a time";
        assert.deepEqual(
          events.map((e) => [e.type, e.data, e.lastEventId]),
          c.expected,
          where,
        );
        if (c.lastEventId !== undefined) assert.equal(parser.lastEventId, c.lastEventId, `lastEventId, ${where}`);
        assert.equal(parser.retryMs, c.retryMs, `retry, ${where}`);
        assert.equal(parser.failure, undefined);
      }
    });
  }
});
