/** The multihash algorithms we can compute, by their lowercase hex prefix (code varint + length). */
const ALGORITHMS: ReadonlyArray<{ prefix: string; name: string; node: string; digestBytes: number }> = [
  { prefix: "1220", name: "sha2-256", node: "sha256", digestBytes: 32 },
  { prefix: "1340", name: "sha2-512", node: "sha512", digestBytes: 64 },
  { prefix: "1620", name: "sha3-256", node: "sha3-256", digestBytes: 32 },
  { prefix: "d50110", name: "md5", node: "md5", digestBytes: 16 },
  { prefix: "1114", name: "sha1", node: "sha1", digestBytes: 20 },
];

export type ParsedChecksum =
  | { kind: "supported"; algorithm: string; nodeAlgorithm: string; digestHex: string; multihash: string }
  | { kind: "unsupported"; multihash: string; reason: string };

/**
 * Reads a `file:checksum` multihash (lowercase hex). Algorithms we cannot compute, and values we
 * cannot read, are "unsupported": the download goes on and is reported as unverified.
 */
export function parseMultihash(value: unknown): ParsedChecksum | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") return { kind: "unsupported", multihash: String(value), reason: "file:checksum is not a string" };
  const text = value.trim().toLowerCase();
  if (!/^[0-9a-f]+$/.test(text) || text.length % 2 !== 0) return { kind: "unsupported", multihash: text, reason: "file:checksum is not hex" };
  for (const alg of ALGORITHMS) {
    if (!text.startsWith(alg.prefix)) continue;
    const digestHex = text.slice(alg.prefix.length);
    if (digestHex.length !== alg.digestBytes * 2) {
      return { kind: "unsupported", multihash: text, reason: `${alg.name} digest has ${digestHex.length / 2} bytes, expected ${alg.digestBytes}` };
    }
    return { kind: "supported", algorithm: alg.name, nodeAlgorithm: alg.node, digestHex, multihash: text };
  }
  return { kind: "unsupported", multihash: text, reason: `multihash code ${text.slice(0, 4)}… is not one we can compute` };
}

/** The multihash hex of a digest, for tests and for servers that publish checksums. */
export function toMultihash(algorithm: "sha2-256" | "sha2-512" | "sha3-256" | "md5" | "sha1", digestHex: string): string {
  const alg = ALGORITHMS.find((a) => a.name === algorithm);
  if (!alg) throw new Error(`unknown algorithm ${algorithm}`);
  return alg.prefix + digestHex.toLowerCase();
}
