/** Deterministic, cheap pseudo-randomness: every value is a pure function of its inputs. */

/** FNV-1a 32-bit hash of a string. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: a small seeded generator returning floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generator for one (seed, scope, index) triple. */
export function rngFor(seed: number, scope: string, index: number): () => number {
  return rng(hash32(`${seed}|${scope}|${index}`));
}

export function pick<T>(random: () => number, list: ReadonlyArray<T>): T {
  return list[Math.floor(random() * list.length)];
}

export function between(random: () => number, min: number, max: number, decimals = 6): number {
  const factor = 10 ** decimals;
  return Math.round((min + random() * (max - min)) * factor) / factor;
}
