import { strict as assert } from "node:assert";
import { StringDecoder } from "node:string_decoder";
import { LineSplitter, splitLines } from "../../src/core/lines";

function splitInChunks(bytes: Buffer, sizes: (i: number) => number): string[] {
  const decoder = new StringDecoder("utf8");
  const splitter = new LineSplitter();
  const out: string[] = [];
  let offset = 0;
  for (let i = 0; offset < bytes.length; i++) {
    const n = Math.max(1, sizes(i));
    out.push(...splitter.push(decoder.write(bytes.subarray(offset, offset + n))));
    offset += n;
  }
  out.push(...splitter.push(decoder.end()), ...splitter.end());
  return out;
}

describe("core/lines", () => {
  it("splits LF and CRLF, keeps empty lines, returns the unterminated last line on end()", () => {
    assert.deepEqual(splitLines("a\nb\r\n\nc"), ["a", "b", "", "c"]);
    assert.deepEqual(splitLines("a\n"), ["a"]);
    assert.deepEqual(splitLines(""), []);
  });

  it("drops a leading BOM only at the very start", () => {
    assert.deepEqual(splitLines("\ufeffa\n\ufeffb\n"), ["a", "\ufeffb"]);
  });

  it("gives the same lines for every chunking, multi-byte characters split across chunks included", () => {
    const text = ['{"a":"日本語✓é"}', "", "data: x", '{"b":"\u{1F600}"}\r', "last"].join("\n");
    const bytes = Buffer.from(text, "utf8");
    const expected = splitLines(text);
    assert.equal(expected.length, 5);
    for (const size of [1, 2, 3, 5, 7, 64]) assert.deepEqual(splitInChunks(bytes, () => size), expected, `chunks of ${size}`);
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 11) + 1;
    for (let round = 0; round < 20; round++) assert.deepEqual(splitInChunks(bytes, random), expected);
  });

  it("counts line numbers across chunks and reports what it holds", () => {
    const splitter = new LineSplitter();
    assert.deepEqual(splitter.push("one\ntw"), ["one"]);
    assert.equal(splitter.lineNumber, 1);
    assert.equal(splitter.pending, 2);
    assert.deepEqual(splitter.push("o\nthree\nfo"), ["two", "three"]);
    assert.equal(splitter.lineNumber, 3);
    assert.deepEqual(splitter.end(), ["fo"]);
    assert.equal(splitter.lineNumber, 4);
  });
});
