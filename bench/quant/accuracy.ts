/**
 * Accuracy of quantised loading: for each checkpoint, the next-token distributions at every position of a fixed
 * prompt set (the prefill's logits, traced as `llm.logits`) from the f32 load against q8 and q4 loads: top-1
 * agreement (fraction of positions where the argmax agrees) and mean KL(p_f32 ‖ p_q) in nats, computed in float64.
 */
import type { QuantDType, Tensor } from "../../src/backend/backend.ts";
import { loadModel } from "../../src/model/model.ts";

/** Questions in the prompt template of the model (plain_v1); text only, so the LLM is what is measured. */
export const PROMPTS = [
  "What colour is the object moving down?",
  "How many objects are in the video?",
  "Describe what happens in the video in one sentence.",
  "Is the square moving left or right?",
  "What shape appears first, and where does it go?",
  "Answer briefly: which object is the fastest?",
];

export interface Variant {
  label: string;
  quantize?: QuantDType;
  policy?: (name: string, mode: QuantDType) => QuantDType | null;
}

export interface AccuracyRow {
  checkpoint: string;
  variant: string;
  positions: number;
  top1Agreement: number;
  meanKl: number;
  maxKl: number;
}

async function logitsOf(dir: string, variant: Variant, prompts: number[][]): Promise<Float64Array[][]> {
  const model = await loadModel(dir, { quantize: variant.quantize, quantizePolicy: variant.policy });
  try {
    const vocab = model.config.llm.vocabSize;
    const out: Float64Array[][] = [];
    for (const ids of prompts) {
      let logits: Promise<Float32Array> | undefined;
      const trace = (name: string, t: Tensor) => {
        if (name === "llm.logits") logits = model.backend.download(t);
      };
      await model.generateAll({ visuals: [], ids, clipIds: [49406, 320, 49407], trace, maxNewTokens: 1 });
      const all = await logits!;
      const rows: Float64Array[] = [];
      for (let p = 0; p * vocab < all.length; p++) rows.push(logSoftmax(all.subarray(p * vocab, (p + 1) * vocab)));
      out.push(rows);
    }
    return out;
  } finally {
    model.dispose();
  }
}

function logSoftmax(x: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x, (v) => v - lse);
}

function argmax(x: Float64Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Compares every variant with the f32 load of `dir`, over `prompts` (token ids). */
export async function measureAccuracy(
  name: string,
  dir: string,
  prompts: number[][],
  variants: Variant[],
): Promise<AccuracyRow[]> {
  const reference = await logitsOf(dir, { label: "f32" }, prompts);
  const rows: AccuracyRow[] = [];
  for (const variant of variants) {
    const got = await logitsOf(dir, variant, prompts);
    let positions = 0, agree = 0, klSum = 0, klMax = 0;
    for (let s = 0; s < prompts.length; s++) {
      for (let p = 0; p < reference[s].length; p++) {
        const [lp, lq] = [reference[s][p], got[s][p]];
        let kl = 0;
        for (let v = 0; v < lp.length; v++) kl += Math.exp(lp[v]) * (lp[v] - lq[v]);
        positions++;
        klSum += kl;
        klMax = Math.max(klMax, kl);
        if (argmax(lp) === argmax(lq)) agree++;
      }
    }
    rows.push({
      checkpoint: name,
      variant: variant.label,
      positions,
      top1Agreement: agree / positions,
      meanKl: klSum / positions,
      maxKl: klMax,
    });
  }
  return rows;
}
