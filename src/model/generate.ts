/**
 * Decoding (spec §3.8): greedy, sampling (temperature / top-k / top-p with a seeded RNG), repetition penalty,
 * stop strings, max tokens, beam search with HF transformers 4.45 semantics (as tests/oracles/ppllava_reference.py
 * `beam_search` implements them), streamed as an async iterator and cancellable with an `AbortSignal`.
 *
 * Written against `Decoder`, so it knows nothing of tensors: the model supplies the prefill logits and a step
 * function over its KV caches. Greedy and sampling stream every token as it is chosen; beam search knows its best
 * sequence only at the end, so it yields that sequence's tokens then.
 */
import { AbortError, ModelError } from "./errors.ts";

/** What decoding needs from a model: logits on the host, one row per live sequence. */
export interface Decoder {
  readonly vocabSize: number;
  /** Last-position logits of the prompt (batch 1). */
  prefill(): Promise<Float32Array>;
  /** One token per live sequence → their next logits (rows × vocab). */
  step(tokens: readonly number[]): Promise<Float32Array>;
  /** New row i continues old row from[i] (beam search). */
  reorder(from: readonly number[]): void;
}

export interface GenerationOptions {
  /** Default 200 (the eval scripts). */
  maxNewTokens?: number;
  /** > 1: beam search (the demo uses 5); sampling options are then ignored. */
  numBeams?: number;
  lengthPenalty?: number;
  /** Sample instead of greedy. */
  doSample?: boolean;
  temperature?: number;
  /** 0 = off. */
  topK?: number;
  /** 1 = off. */
  topP?: number;
  /** HF `repetition_penalty`: a seen token's logit is divided by it (multiplied when negative). 1 = off. */
  repetitionPenalty?: number;
  /** Seed of the sampling RNG (default 0). */
  seed?: number;
  /** Stop ids (default [2], `</s>`); the stop token is part of the output, as HF returns it. */
  eosTokenIds?: readonly number[];
  /** Stop when the decoded output contains one of these (needs `decode`). */
  stopStrings?: readonly string[];
  decode?: (ids: readonly number[]) => string;
  signal?: AbortSignal;
}

export interface GeneratedToken {
  id: number;
  /** Position among the new tokens (0-based). */
  index: number;
  /** Its text, when the model has a tokenizer (stream-decoded: the pieces concatenate to the whole answer). */
  text?: string;
}

export type FinishReason = "eos" | "length" | "stop";

export interface GenerationResult {
  tokens: number[];
  finishReason: FinishReason;
  /** With a tokenizer: the end of the text that the streamed pieces held back (an unfinished UTF-8 sequence). */
  textTail?: string;
  /** Beam search: the best hypothesis' length-normalised log-probability. */
  score?: number;
}

interface Resolved {
  maxNewTokens: number;
  numBeams: number;
  lengthPenalty: number;
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  eos: Set<number>;
  stopStrings: readonly string[];
  decode?: (ids: readonly number[]) => string;
  signal?: AbortSignal;
  random: () => number;
}

function resolve(o: GenerationOptions): Resolved {
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new ModelError("bad_input", `generation option ${what}`);
  };
  const r: Resolved = {
    maxNewTokens: o.maxNewTokens ?? 200,
    numBeams: o.numBeams ?? 1,
    lengthPenalty: o.lengthPenalty ?? 1,
    doSample: o.doSample ?? false,
    temperature: o.temperature ?? 1,
    topK: o.topK ?? 0,
    topP: o.topP ?? 1,
    repetitionPenalty: o.repetitionPenalty ?? 1,
    eos: new Set(o.eosTokenIds ?? [2]),
    stopStrings: o.stopStrings ?? [],
    decode: o.decode,
    signal: o.signal,
    random: mulberry32(o.seed ?? 0),
  };
  check(Number.isInteger(r.maxNewTokens) && r.maxNewTokens >= 1, `maxNewTokens ${r.maxNewTokens}: a positive integer`);
  check(Number.isInteger(r.numBeams) && r.numBeams >= 1, `numBeams ${r.numBeams}: a positive integer`);
  check(r.temperature > 0, `temperature ${r.temperature}: > 0`);
  check(Number.isInteger(r.topK) && r.topK >= 0, `topK ${r.topK}: an integer ≥ 0`);
  check(r.topP > 0 && r.topP <= 1, `topP ${r.topP}: in (0, 1]`);
  check(r.repetitionPenalty > 0, `repetitionPenalty ${r.repetitionPenalty}: > 0`);
  check(r.stopStrings.length === 0 || r.decode !== undefined, "stopStrings need a decode function");
  return r;
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortError(`generation was aborted: ${String(signal.reason ?? "")}`);
}

/** Streams the new tokens; the generator's return value is the whole result. */
export async function* decodeTokens(
  decoder: Decoder,
  options: GenerationOptions = {},
  promptIds: readonly number[] = [],
): AsyncGenerator<GeneratedToken, GenerationResult> {
  const o = resolve(options);
  checkAbort(o.signal);
  if (o.numBeams > 1) {
    const result = await beamSearch(decoder, o, promptIds);
    for (const [index, id] of result.tokens.entries()) {
      checkAbort(o.signal);
      yield { id, index };
    }
    return result;
  }
  const tokens: number[] = [];
  const seen = new Set(promptIds);
  let logits = await decoder.prefill();
  for (let index = 0; index < o.maxNewTokens; index++) {
    checkAbort(o.signal);
    const scores = Float64Array.from(logits);
    if (o.repetitionPenalty !== 1) penalise(scores, seen, o.repetitionPenalty);
    const id = o.doSample ? sample(scores, o) : argmax(scores);
    tokens.push(id);
    seen.add(id);
    yield { id, index };
    if (o.eos.has(id)) return { tokens, finishReason: "eos" };
    if (o.stopStrings.length > 0) {
      const text = o.decode!(tokens);
      if (o.stopStrings.some((s) => text.includes(s))) return { tokens, finishReason: "stop" };
    }
    if (index + 1 === o.maxNewTokens) break;
    checkAbort(o.signal);
    logits = await decoder.step([id]);
  }
  return { tokens, finishReason: "length" };
}

/** Runs `decodeTokens` to the end. */
export async function decodeAll(
  decoder: Decoder,
  options: GenerationOptions = {},
  promptIds: readonly number[] = [],
): Promise<GenerationResult> {
  const it = decodeTokens(decoder, options, promptIds);
  for (;;) {
    const next = await it.next();
    if (next.done) return next.value;
  }
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** HF RepetitionPenaltyLogitsProcessor: seen tokens' scores /penalty when > 0, ×penalty when < 0. */
function penalise(scores: Float64Array, seen: Iterable<number>, penalty: number): void {
  for (const id of seen) {
    if (id < 0 || id >= scores.length) continue;
    scores[id] = scores[id] < 0 ? scores[id] * penalty : scores[id] / penalty;
  }
}

/** HF warpers in order: temperature, top-k, top-p; then a draw from the softmax. */
function sample(scores: Float64Array, o: Resolved): number {
  const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b);
  const keep = o.topK > 0 ? Math.min(o.topK, order.length) : order.length;
  const max = scores[order[0]];
  const weights = order.slice(0, keep).map((i) => Math.exp((scores[i] - max) / o.temperature));
  const total = weights.reduce((a, w) => a + w, 0);
  // top-p: the smallest head of the sorted distribution whose mass reaches topP (at least one token).
  let kept = weights.length;
  if (o.topP < 1) {
    let mass = 0;
    for (let i = 0; i < weights.length; i++) {
      mass += weights[i] / total;
      if (mass >= o.topP) {
        kept = i + 1;
        break;
      }
    }
  }
  const head = weights.slice(0, kept);
  let u = o.random() * head.reduce((a, w) => a + w, 0);
  for (let i = 0; i < head.length; i++) {
    u -= head[i];
    if (u < 0) return order[i];
  }
  return order[head.length - 1];
}

/** A small seeded RNG (mulberry32): the same seed gives the same samples on every runtime. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function logSoftmaxRow(logits: Float32Array, row: number, vocab: number): Float64Array {
  const out = new Float64Array(vocab);
  let max = -Infinity;
  for (let i = 0; i < vocab; i++) max = Math.max(max, logits[row * vocab + i]);
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[row * vocab + i] - max);
  const log = Math.log(sum) + max;
  for (let i = 0; i < vocab; i++) out[i] = logits[row * vocab + i] - log;
  return out;
}

/** The k best (score, flat index) of a list of rows, best first (ties: lower index first, as torch.topk on CPU). */
function topK(rows: Float64Array[], k: number): Array<[number, number]> {
  const vocab = rows[0].length;
  const best: Array<[number, number]> = [];
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    for (let i = 0; i < vocab; i++) {
      const s = row[i];
      if (best.length === k && s <= best[k - 1][0]) continue;
      let j = best.length;
      while (j > 0 && best[j - 1][0] < s) j--;
      best.splice(j, 0, [s, r * vocab + i]);
      if (best.length > k) best.pop();
    }
  }
  return best;
}

/** transformers 4.45 `_beam_search` + `BeamSearchScorer`, batch 1, early_stopping=False (see the reference). */
async function beamSearch(decoder: Decoder, o: Resolved, promptIds: readonly number[]): Promise<GenerationResult> {
  const n = o.numBeams;
  const vocab = decoder.vocabSize;
  const hyps: Array<{ score: number; tokens: number[] }> = [];
  let worst = 1e9;
  const add = (tokens: number[], sumLogprobs: number, length: number) => {
    const score = sumLogprobs / length ** o.lengthPenalty;
    if (hyps.length < n || score > worst) {
      hyps.push({ score, tokens });
      if (hyps.length > n) {
        const ordered = hyps.map((h, i) => [h.score, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        hyps.splice(ordered[0][1], 1);
        worst = ordered[1][0];
      } else {
        worst = Math.min(score, worst);
      }
    }
  };
  const prefill = await decoder.prefill();
  let logits: Float32Array = new Float32Array(n * vocab);
  for (let r = 0; r < n; r++) logits.set(prefill, r * vocab);
  decoder.reorder(new Array(n).fill(0));
  let beamScores: number[] = Array.from({ length: n }, (_, i) => (i === 0 ? 0 : -1e9));
  let beams: number[][] = Array.from({ length: n }, () => []);
  let done = false;
  for (let step = 0; step < o.maxNewTokens; step++) {
    checkAbort(o.signal);
    const rows = beamScores.map((s, r) => {
      const row = logSoftmaxRow(logits, r, vocab);
      if (o.repetitionPenalty !== 1) penalise(row, new Set([...promptIds, ...beams[r]]), o.repetitionPenalty);
      for (let i = 0; i < vocab; i++) row[i] += s;
      return row;
    });
    const top = topK(rows, 2 * n);
    const length = step + 1;
    const nextScores: number[] = [];
    const nextTokens: number[] = [];
    const nextFrom: number[] = [];
    for (const [rank, [score, flat]] of top.entries()) {
      const beam = Math.floor(flat / vocab);
      const token = flat % vocab;
      if (o.eos.has(token)) {
        if (rank >= n) continue;
        add([...beams[beam]], score, length);
      } else {
        nextScores.push(score);
        nextTokens.push(token);
        nextFrom.push(beam);
      }
      if (nextTokens.length === n) break;
    }
    if (hyps.length >= n) done = worst >= top[0][0] / length ** o.lengthPenalty;
    beams = nextFrom.map((b, i) => [...beams[b], nextTokens[i]]);
    beamScores = nextScores;
    if (done || step + 1 === o.maxNewTokens) break;
    decoder.reorder(nextFrom);
    logits = await decoder.step(nextTokens);
  }
  if (!done) { for (let b = 0; b < n; b++) add([...beams[b]], beamScores[b], beams[b].length); }
  // sorted(...)[-1] in the reference: the last added among equal best scores.
  const best = hyps.reduce((a, h) => (h.score >= a.score ? h : a));
  const tokens = [...best.tokens];
  const eos = [...o.eos][0];
  let finishReason: FinishReason = "length";
  if (tokens.length < o.maxNewTokens) {
    tokens.push(eos);
    finishReason = "eos";
  }
  return { tokens, finishReason, score: best.score };
}
