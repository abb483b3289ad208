/**
 * Paired comparison of two evaluations over the same questions (`ppllava eval --against`): two weights, or two pooling
 * modes of one weights, answered the same held-out questions, so the question-to-question spread cancels and only
 * the questions where they differ carry evidence. The exact McNemar test is the two-sided binomial test of those
 * discordant questions against 1/2. An unpaired standard error of each rate would be several times wider.
 */

/** Two-sided exact McNemar p-value: b questions went one way, c the other (binomial(b + c, 1/2), doubled, ≤ 1). */
export function mcnemarExact(b: number, c: number): number {
  if (!(Number.isInteger(b) && Number.isInteger(c) && b >= 0 && c >= 0)) {
    throw new RangeError(`mcnemarExact needs two counts ≥ 0, got ${b}, ${c}`);
  }
  const n = b + c;
  if (n === 0) return 1;
  // Σ_{k ≤ min(b, c)} C(n, k) / 2^n in log space: n reaches thousands, where 2^n overflows a double.
  const logHalfN = -n * Math.LN2;
  let logChoose = 0; // log C(n, 0)
  let tail = 0;
  for (let k = 0; k <= Math.min(b, c); k++) {
    if (k > 0) logChoose += Math.log((n - k + 1) / k);
    tail += Math.exp(logChoose + logHalfN);
  }
  return Math.min(1, 2 * tail);
}

/** One question's outcome under the two evaluations: `base` is the reference (e.g. the SFT weights). */
export interface Pair {
  base: boolean;
  other: boolean;
}

export interface PairedResult {
  questions: number;
  /** Rates of the property under each evaluation. */
  baseRate: number;
  otherRate: number;
  /** Questions where only the base has the property, and where only the other has it. */
  onlyBase: number;
  onlyOther: number;
  p: number;
}

/** The paired comparison of a yes/no property (a right answer, a rejected-style error) over the same questions. */
export function pairedComparison(pairs: Pair[]): PairedResult {
  let base = 0, other = 0, onlyBase = 0, onlyOther = 0;
  for (const pair of pairs) {
    if (pair.base) base++;
    if (pair.other) other++;
    if (pair.base && !pair.other) onlyBase++;
    if (pair.other && !pair.base) onlyOther++;
  }
  const n = pairs.length;
  return {
    questions: n,
    baseRate: n ? base / n : 0,
    otherRate: n ? other / n : 0,
    onlyBase,
    onlyOther,
    p: mcnemarExact(onlyBase, onlyOther),
  };
}

/** "82.3% → 82.4% (+0.1 points; 14 questions only before, 15 only after; exact McNemar p = 1.00)". */
export function describePaired(result: PairedResult, before = "before", after = "after"): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const delta = 100 * (result.otherRate - result.baseRate);
  return `${pct(result.baseRate)} → ${pct(result.otherRate)} (${delta >= 0 ? "+" : ""}${delta.toFixed(1)} points; ` +
    `${result.onlyBase} questions only ${before}, ${result.onlyOther} only ${after}; exact McNemar p = ` +
    `${result.p < 0.001 ? result.p.toExponential(1) : result.p.toFixed(3)})`;
}
