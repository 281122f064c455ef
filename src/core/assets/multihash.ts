/** The multihash algorithms we can compute, by their lowercase hex prefix (code varint + length). */
const ALGORITHMS: ReadonlyArray<{ prefix: string; code: number; name: string; node: string; digestBytes: number }> = [
  { prefix: "1220", code: 0x12, name: "sha2-256", node: "sha256", digestBytes: 32 },
  { prefix: "1340", code: 0x13, name: "sha2-512", node: "sha512", digestBytes: 64 },
  { prefix: "1620", code: 0x16, name: "sha3-256", node: "sha3-256", digestBytes: 32 },
  { prefix: "d50110", code: 0xd5, name: "md5", node: "md5", digestBytes: 16 },
  { prefix: "1114", code: 0x11, name: "sha1", node: "sha1", digestBytes: 20 },
];

/** Longest `file:checksum` read: a sha2-512 multihash is 132 hex digits. */
const MAX_MULTIHASH_HEX = 256;

export type ParsedChecksum =
  | { kind: "supported"; algorithm: string; nodeAlgorithm: string; digestHex: string; multihash: string }
  | { kind: "unsupported"; multihash: string; reason: string };

/**
 * Reads a `file:checksum` multihash (hex: varint code, varint digest length, digest). Algorithms we
 * cannot compute, and values we cannot read, are "unsupported", with a reason that says which part
 * is wrong (e.g. a length byte that does not match the digest).
 */
export function parseMultihash(value: unknown): ParsedChecksum | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") return { kind: "unsupported", multihash: String(value).slice(0, 40), reason: "file:checksum is not a string" };
  const text = value.trim().toLowerCase();
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  if (text.length > MAX_MULTIHASH_HEX) return { kind: "unsupported", multihash: shown, reason: `file:checksum is ${text.length} characters long, no multihash we know is` };
  if (!/^[0-9a-f]+$/.test(text) || text.length % 2 !== 0) return { kind: "unsupported", multihash: shown, reason: "file:checksum is not a hex string of whole bytes" };
  const bytes = Buffer.from(text, "hex");
  const code = readVarint(bytes, 0);
  const length = code && readVarint(bytes, code.next);
  if (!code || !length) return { kind: "unsupported", multihash: text, reason: "file:checksum is too short to be a multihash" };
  const digestBytes = bytes.length - length.next;
  const alg = ALGORITHMS.find((a) => a.code === code.value);
  if (!alg) return { kind: "unsupported", multihash: text, reason: `multihash code 0x${code.value.toString(16)} is not an algorithm we can compute (sha2-256, sha2-512, sha3-256, md5, sha1)` };
  if (length.value !== alg.digestBytes && digestBytes === alg.digestBytes) {
    return {
      kind: "unsupported",
      multihash: text,
      reason: `malformed multihash: its length byte says ${length.value} bytes (0x${length.value.toString(16)}) but a ${alg.name} digest is ${alg.digestBytes} bytes (0x${alg.digestBytes.toString(16)}), and ${digestBytes} follow`,
    };
  }
  if (length.value !== digestBytes) {
    return { kind: "unsupported", multihash: text, reason: `malformed multihash: its length byte says ${length.value} bytes, ${digestBytes} follow` };
  }
  if (digestBytes !== alg.digestBytes) {
    return {
      kind: "unsupported",
      multihash: text,
      reason: `malformed multihash: it names ${alg.name} with a ${digestBytes}-byte digest (length byte 0x${length.value.toString(16)}), but ${alg.name} digests are ${alg.digestBytes} bytes (0x${alg.digestBytes.toString(16)}); the algorithm code or the length byte is wrong, so these bytes cannot be checked`,
    };
  }
  return { kind: "supported", algorithm: alg.name, nodeAlgorithm: alg.node, digestHex: bytes.subarray(length.next).toString("hex"), multihash: text };
}

function readVarint(bytes: Buffer, at: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let i = at, shift = 0; i < bytes.length && shift < 28; i += 1, shift += 7) {
    value |= (bytes[i] & 0x7f) << shift;
    if ((bytes[i] & 0x80) === 0) return { value, next: i + 1 };
  }
  return undefined;
}

/** The multihash hex of a digest, for tests and for servers that publish checksums. */
export function toMultihash(algorithm: "sha2-256" | "sha2-512" | "sha3-256" | "md5" | "sha1", digestHex: string): string {
  const alg = ALGORITHMS.find((a) => a.name === algorithm);
  if (!alg) throw new Error(`unknown algorithm ${algorithm}`);
  return alg.prefix + digestHex.toLowerCase();
}
