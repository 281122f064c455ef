"use strict";
// Reduces an esbuild source map to one mapping per original source line: a stack trace still names
// the src/ file and line (the column is where that line's code starts), at a fraction of the size.
const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DIGIT = new Map([...BASE64].map((c, i) => [c, i]));

function decodeSegment(text) {
  const values = [];
  let value = 0;
  let shift = 0;
  for (const c of text) {
    const digit = DIGIT.get(c);
    value += (digit & 31) << shift;
    if (digit & 32) { shift += 5; continue; }
    values.push(value & 1 ? -(value >>> 1) : value >>> 1);
    value = 0;
    shift = 0;
  }
  return values;
}

function encodeValue(n) {
  let v = n < 0 ? (-n << 1) | 1 : n << 1;
  let out = "";
  do {
    let digit = v & 31;
    v >>>= 5;
    if (v > 0) digit |= 32;
    out += BASE64[digit];
  } while (v > 0);
  return out;
}

function toLineSourceMap(mapText) {
  const map = JSON.parse(mapText);
  let source = 0, line = 0, column = 0;
  let outSource = 0, outLine = 0, outColumn = 0;
  const lines = map.mappings.split(";").map((generatedLine) => {
    let genColumn = 0, outGenColumn = 0;
    let kept = "";
    const segments = [];
    for (const segment of generatedLine ? generatedLine.split(",") : []) {
      const v = decodeSegment(segment);
      genColumn += v[0];
      if (v.length < 4) continue;
      source += v[1]; line += v[2]; column += v[3];
      if (kept === `${source}:${line}`) continue;
      kept = `${source}:${line}`;
      segments.push(encodeValue(genColumn - outGenColumn) + encodeValue(source - outSource) + encodeValue(line - outLine) + encodeValue(column - outColumn));
      outGenColumn = genColumn; outSource = source; outLine = line; outColumn = column;
    }
    return segments.join(",");
  });
  return JSON.stringify({ ...map, names: [], mappings: lines.join(";") });
}

module.exports = { toLineSourceMap };
