/** Deterministic test data: a seeded PRNG (mulberry32) and Gaussian arrays, so every failure reproduces. */
import { mulberry32 } from "../../src/model/generate.ts";
/** The generator's seeded RNG (mulberry32), so test data and sampling share one implementation. */
export const rng: (seed: number) => () => number = mulberry32;

export function gaussian(length: number, seed: number, std = 1): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const u = Math.max(next(), 1e-12);
    out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  }
  return out;
}

/** Largest |a−b| / (|b| + floor) over the arrays; `floor` keeps values that underflow in f32 from dominating. */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 0): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} ≠ ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i] - expected[i]) / (Math.abs(expected[i]) + floor);
    if (!(error <= worst)) worst = Number.isNaN(error) ? Infinity : error;
  }
  return worst;
}
