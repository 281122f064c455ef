import { strict as assert } from "node:assert";
import { corpusDocuments, requireCorpus } from "../helpers/corpus";
import { seeded } from "../helpers/sse-test-server";
import { pushInChunks } from "../helpers/sse-chunks";
import { parseSse, SseParser, type SseEvent } from "../../src/core/sse";

/** Parses bytes cut at the given offsets. */
function parseChunks(bytes: Buffer, cuts: number[]): { events: SseEvent[]; lastEventId: string; retryMs?: number } {
  const parser = new SseParser();
  const events = pushInChunks(parser, bytes, cuts);
  parser.end();
  return { events, lastEventId: parser.lastEventId, retryMs: parser.retryMs };
}

function randomCuts(length: number, random: () => number, maxChunk: number): number[] {
  const cuts: number[] = [];
  let at = 0;
  for (;;) {
    at += 1 + Math.floor(random() * maxChunk);
    if (at >= length) return cuts;
    cuts.push(at);
  }
}

/** Every event field in one string: cheap equality for large streams. */
function fingerprint(events: SseEvent[]): string {
  return events.map((e) => `${e.type}\u0001${e.id ?? "\u0002"}\u0001${e.lastEventId}\u0001${e.data}`).join("\u0003");
}

function assertEverySplit(text: string): void {
  const bytes = Buffer.from(text);
  const whole = parseChunks(bytes, []);
  for (let i = 1; i < bytes.length; i++) {
    const split = parseChunks(bytes, [i]);
    assert.deepEqual(split.events, whole.events, `split at byte ${i}`);
    assert.equal(split.lastEventId, whole.lastEventId);
    assert.equal(split.retryMs, whole.retryMs);
  }
  for (let i = 1; i < text.length; i++) {
    const parser = new SseParser();
    const events = parser.push(text.slice(0, i)).concat(parser.push(text.slice(i)));
    assert.deepEqual(events, whole.events, `string split at ${i}`);
  }
}

/** A stream mixing compact, pretty-printed (multi-line data) and bare-line documents, comments, ids and line ends. */
function corpusStream(docs: unknown[]): { text: string; expected: string[] } {
  const eols = ["\n", "\r\n", "\r"];
  let text = "\uFEFF";
  const expected: string[] = [];
  docs.forEach((doc, i) => {
    const eol = eols[i % 3];
    const compact = JSON.stringify(doc);
    if (i % 4 === 0) text += `: comment ${i}${eol}`;
    if (i % 3 === 2) text += `${compact}${eol}`;
    else if (i % 3 === 1) {
      const pretty = JSON.stringify(doc, null, 2);
      text += `id: doc-${i}${eol}${pretty.split("\n").map((l) => `data: ${l}`).join(eol)}${eol}${eol}`;
    } else text += `id: doc-${i}${eol}event: item${eol}data: ${compact}${eol}${eol}`;
    expected.push(compact);
  });
  return { text, expected };
}

describe("core/sse parser", () => {
  it("follows the WHATWG field rules", () => {
    const events = parseSse(
      [
        ": comment",
        "data: first",
        "",
        "id: 7",
        "event: update",
        "data:  two spaces keep one",
        "data",
        "data:third",
        "",
        "retry: 1500",
        "retry: 15x0",
        "unknown: field",
        "data: inherits id",
        "",
        "id: a\u0000b",
        "data: NUL id ignored",
        "",
        "id",
        "data: empty id resets",
        "",
        "event: only-type",
        "",
        "data: unfinished",
      ].join("\n"),
    );
    assert.deepEqual(events, [
      { type: "message", data: "first", lastEventId: "" },
      { type: "update", data: " two spaces keep one\n\nthird", id: "7", lastEventId: "7" },
      { type: "message", data: "inherits id", lastEventId: "7" },
      { type: "message", data: "NUL id ignored", lastEventId: "7" },
      { type: "message", data: "empty id resets", id: "", lastEventId: "" },
    ]);
    const parser = new SseParser();
    parser.push("retry: 1500\nretry: 15x0\nid: 9\n\n");
    assert.equal(parser.retryMs, 1500);
    assert.equal(parser.lastEventId, "9", "an id-only block still sets the last event id");
  });

  it("accepts CR, LF and CRLF line ends and strips one leading BOM", () => {
    const expected = [
      { type: "message", data: "a\nb", id: "1", lastEventId: "1" },
      { type: "message", data: "\uFEFFc", lastEventId: "1" },
    ];
    for (const eol of ["\n", "\r", "\r\n"]) {
      const text = `\uFEFFid: 1${eol}data: a${eol}data: b${eol}${eol}data: \uFEFFc${eol}${eol}`;
      assert.deepEqual(parseSse(text), expected, JSON.stringify(eol));
      assert.deepEqual(parseSse(Buffer.from(text)), expected);
    }
    assert.deepEqual(parseSse("data: x\r\n\r\ndata: y\r\r"), [
      { type: "message", data: "x", lastEventId: "" },
      { type: "message", data: "y", lastEventId: "" },
    ]);
  });

  it("takes bare JSON lines as complete events (NDJSON and the documented examples)", () => {
    const events = parseSse('{"id":"a"}\n[1,2]\nid: 3\n{"id":"b"}\n\n\n{"id":"c"}\n');
    assert.deepEqual(events, [
      { type: "message", data: '{"id":"a"}', lastEventId: "" },
      { type: "message", data: "[1,2]", lastEventId: "" },
      { type: "message", data: '{"id":"b"}', id: "3", lastEventId: "3" },
      { type: "message", data: '{"id":"c"}', lastEventId: "3" },
    ]);
  });

  it("gives the same events for a split at every byte offset (small streams)", () => {
    assertEverySplit("\uFEFF: hi\r\nid: 1\r\ndata: {\"a\":\"é€😀\"}\r\n\r\nretry: 10\rdata: x\rdata: y\r\revent: e\ndata: z\n\n{\"bare\":true}\n");
    assertEverySplit('id: 42\ndata: {"type":"Feature","id":"S2B_ü"}\n\n:keepalive\n\ndata\n\nid\ndata: last\n\n');
  });

  it("gives the same events under every chunking of a corpus stream (every offset of a small one, random for the large one)", function () {
    requireCorpus(this);
    this.timeout(120_000);
    const docs = corpusDocuments("valid");
    assert.ok(docs.length > 10, "corpus has documents");
    const random = seeded(4);
    const { text, expected } = corpusStream(docs.map((d) => d.json));
    const bytes = Buffer.from(text);
    const whole = parseChunks(bytes, []);
    assert.deepEqual(whole.events.map((e) => JSON.stringify(JSON.parse(e.data))), expected, "every document parses back to itself");

    // Every byte offset of a stream of the four smallest documents
    const smallest = [...docs].sort((a, b) => a.text.length - b.text.length).slice(0, 4);
    const small = Buffer.from(corpusStream(smallest.map((d) => d.json)).text);
    const smallWhole = parseChunks(small, []).events;
    assert.equal(smallWhole.length, 4);
    const smallPrint = fingerprint(smallWhole);
    for (let i = 1; i < small.length; i++) assert.equal(fingerprint(parseChunks(small, [i]).events), smallPrint, `split at ${i}`);

    const reference = fingerprint(whole.events);
    const rounds = 2000;
    for (let r = 0; r < rounds; r++) {
      // Chunk sizes from a few bytes to 512 KiB; every tenth round uses the small sizes.
      const maxChunk = [7, 64, 1024, 16_384, 65_536][r % 5];
      const cuts = randomCuts(bytes.length, random, r % 10 === 9 ? maxChunk : maxChunk * 8);
      const got = parseChunks(bytes, cuts);
      assert.equal(fingerprint(got.events), reference, `random chunking round ${r}`);
    }
  });

  it("never crashes on random bytes, and gives the same result for any chunking of them", () => {
    const random = seeded(99);
    const alphabet = Buffer.from("data:id:event:retry: \r\n\n\n{}[]\":,0123456789ab\u0000");
    for (let round = 0; round < 2000; round++) {
      const length = Math.floor(random() * 600);
      const bytes = Buffer.alloc(length);
      for (let i = 0; i < length; i++) bytes[i] = round % 2 === 0 ? Math.floor(random() * 256) : alphabet[Math.floor(random() * alphabet.length)];
      const whole = parseChunks(bytes, []);
      for (const e of whole.events) assert.equal(typeof e.data, "string");
      const ascii = round % 2 === 1 && bytes.every((b) => b < 0x80);
      const chunked = parseChunks(bytes, randomCuts(length, random, 17));
      if (ascii) assert.deepEqual(chunked.events, whole.events, `round ${round}`);
    }
  });

  it("refuses a line longer than its limit with a PROTOCOL failure, after returning the events completed before it", () => {
    const parser = new SseParser({ maxLength: 100 });
    const events = parser.push(`id: 1\ndata: {"a":1}\n\ndata: ${"x".repeat(200)}`);
    assert.deepEqual(events.map((e) => e.data), ['{"a":1}']);
    assert.equal(parser.failure?.code, "PROTOCOL");
    assert.match(parser.failure?.message ?? "", /line longer than 100 characters/);
    assert.ok(!parser.failure?.message.includes("xxx"), "no stream content in the message");
    assert.deepEqual(parser.push("\n\ndata: {}\n\n"), [], "a failed parser takes nothing more");

    const split = new SseParser({ maxLength: 100 });
    assert.deepEqual(split.push("data: {\"b\":2}\n\n").length, 1);
    for (let i = 0; i < 20; i++) split.push("y".repeat(10));
    assert.equal(split.failure?.code, "PROTOCOL", "a line arriving in small pieces is bounded too");

    const data = new SseParser({ maxLength: 100 });
    const out = data.push(`data: {"c":3}\n\n${"data: 0123456789\n".repeat(12)}`);
    assert.equal(out.length, 1);
    assert.match(data.failure?.message ?? "", /event data longer than 100 characters/, "many short data lines add up");
  });
});
