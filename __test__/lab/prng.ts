/**
 * Seeded randomness for the lab. Every random decision of a relay comes from
 * a `Prng` seeded from one number, printed by the tests; `LAB_SEED=<n>`
 * replays a run's decisions (the sequence per client and direction is the
 * same; what it meets still depends on timing).
 */

/**
 * The lab's base seed: `LAB_SEED=<n>` from the environment; `LAB_SEED=random`
 * (or no LAB_SEED and no `fallback`) picks a fresh one. The test suite passes
 * a fixed fallback, so CI replays the same decisions; the soak explores.
 */
export function labSeed(fallback?: number): number {
  const env = process.env.LAB_SEED;
  if (env === 'random' || ((env === undefined || env === '') && fallback === undefined)) return (Math.random() * 0x100000000) >>> 0;
  if (env === undefined || env === '') return fallback! >>> 0;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`LAB_SEED must be an integer 0..2^32-1 or 'random', got ${env}`);
  return n;
}

/** splitmix32: spreads one 32-bit seed into well-mixed state words. */
function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** sfc32, a small fast generator with a 128-bit state; not for cryptography. */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** `stream` picks an independent sequence for the same seed (e.g. one per direction). */
  constructor(seed: number, stream = 0) {
    const mix = splitmix32((seed ^ Math.imul(stream + 1, 0x632be5ab)) >>> 0);
    this.#a = mix();
    this.#b = mix();
    this.#c = mix();
    this.#d = 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.u32() / 0x100000000;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** A uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
}
