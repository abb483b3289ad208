/**
 * Decoding strategies of src/model/generate.ts on a synthetic `Decoder` (a Markov table of logits: the next
 * logits depend on the last token only), against closed forms: argmax for greedy, HF's repetition-penalty rule,
 * the softmax/temperature/top-k/top-p distributions measured by sampling, stop strings, max tokens, EOS, abort.
 * The real model's greedy and beam runs are diffed against the PyTorch reference in model_graph.test.ts.
 */
import { assert, assertEquals, assertRejects } from "./util/assert.ts";
import { type Decoder, decodeTokens, type GenerationOptions, mulberry32 } from "../src/model/generate.ts";
import { AbortError, ModelError } from "../src/model/errors.ts";

const VOCAB = 6;
const EOS = 2;

/** Logits of the next token given the last one (row = last token; the prompt counts as token 0). */
function markov(table: number[][]): Decoder & { steps: number } {
  let last: number[] = [0];
  const rows = (tokens: readonly number[]) => Float32Array.from(tokens.flatMap((t) => table[t]));
  return {
    vocabSize: VOCAB,
    steps: 0,
    prefill() {
      last = [0];
      return Promise.resolve(rows(last));
    },
    step(tokens) {
      this.steps++;
      last = [...tokens];
      return Promise.resolve(rows(last));
    },
    reorder(from) {
      last = from.map((r) => last[r]);
    },
  };
}

async function run(decoder: Decoder, options: GenerationOptions, prompt: number[] = []) {
  const tokens: number[] = [];
  const it = decodeTokens(decoder, options, prompt);
  for (;;) {
    const next = await it.next();
    if (next.done) return { ...next.value, streamed: tokens };
    tokens.push(next.value.id);
  }
}

// 0 → 3 → 4 → 5 → 1 → 2 (EOS), with runners-up everywhere.
const CHAIN = [
  [0, 0.5, 0, 2, 1, 0],
  [0, 0, 3, 0, 1, 0],
  [0, 0, 0, 0, 0, 0],
  [0, 0, 0, 0, 4, 3.5],
  [0, 1, 0, 0, 0, 2],
  [0, 2, 0, 1, 0, 0],
];

Deno.test("greedy: argmax at every step, streamed in order, EOS ends it (kept in the output)", async () => {
  const r = await run(markov(CHAIN), {});
  assertEquals(r.tokens, [3, 4, 5, 1, EOS]);
  assertEquals(r.streamed, r.tokens);
  assertEquals(r.finishReason, "eos");
});

Deno.test("max tokens: stops with finishReason length, one step per token after the prefill", async () => {
  const decoder = markov(CHAIN);
  const r = await run(decoder, { maxNewTokens: 3 });
  assertEquals([r.tokens, r.finishReason, decoder.steps], [[3, 4, 5], "length", 2]);
});

Deno.test("repetition penalty: HF rule (positive ÷ penalty, negative × penalty) over prompt and output", async () => {
  // After 3, token 4 (logit 4) was seen in the prompt: 4/1.2 = 3.33 < 3.5, so 5 wins; without the penalty 4 wins.
  assertEquals((await run(markov(CHAIN), { maxNewTokens: 2, repetitionPenalty: 1.2 }, [4])).tokens, [3, 5]);
  assertEquals((await run(markov(CHAIN), { maxNewTokens: 2, repetitionPenalty: 1.1 }, [4])).tokens, [3, 4]);
  // Negative logits get more negative: tokens 0 and 1 at −1 and −1.05; penalising 0 makes it −1.5.
  const negative = markov([[-1, -1.05, -9, -9, -9, -9], ...CHAIN.slice(1)]);
  assertEquals((await run(negative, { maxNewTokens: 1, repetitionPenalty: 1.5 }, [0])).tokens, [1]);
});

Deno.test("stop strings: stop once the decoded output contains one (needs decode)", async () => {
  const names = ["<p>", "b", "</s>", "st", "o", "p"];
  const decode = (ids: readonly number[]) => ids.map((i) => names[i]).join("");
  const r = await run(markov(CHAIN), { stopStrings: ["sto"], decode });
  assertEquals([r.tokens, r.finishReason], [[3, 4], "stop"]);
  const error = await assertRejects(() => run(markov(CHAIN), { stopStrings: ["x"] }), ModelError);
  assertEquals(error.code, "bad_input");
});

/** Frequencies of the first sampled token over many seeds. */
async function firstTokenFrequencies(logits: number[], options: GenerationOptions, draws = 3000) {
  const counts = new Array(VOCAB).fill(0);
  const table = [logits, ...CHAIN.slice(1)];
  for (let seed = 0; seed < draws; seed++) {
    counts[(await run(markov(table), { ...options, seed, doSample: true, maxNewTokens: 1 })).tokens[0]]++;
  }
  return counts.map((c) => c / draws);
}

function assertClose(got: number[], want: number[], tolerance: number, what: string) {
  for (let i = 0; i < want.length; i++) {
    assert(Math.abs(got[i] - want[i]) <= tolerance, `${what}: p[${i}] = ${got[i].toFixed(3)}, expected ${want[i]}`);
  }
}

Deno.test("sampling: softmax, temperature, top-k and top-p distributions (3000 seeded draws each)", async () => {
  const L = [-Infinity, 0, -Infinity, Math.log(2), Math.log(4), -Infinity];
  // 3σ of a frequency with 3000 draws is at most 0.027.
  assertClose(await firstTokenFrequencies(L, {}), [0, 1 / 7, 0, 2 / 7, 4 / 7, 0], 0.03, "T = 1");
  const s = 1 + Math.SQRT2 + 2;
  assertClose(
    await firstTokenFrequencies(L, { temperature: 2 }),
    [0, 1 / s, 0, Math.SQRT2 / s, 2 / s, 0],
    0.03,
    "T = 2",
  );
  assertClose(await firstTokenFrequencies(L, { topK: 2 }), [0, 0, 0, 1 / 3, 2 / 3, 0], 0.03, "top-k 2");
  // HF top-p 0.6: ascending cumulative [1/7, 3/7, 1]; tokens with cumulative ≤ 0.4 go (only token 1).
  assertClose(await firstTokenFrequencies(L, { topP: 0.6 }), [0, 0, 0, 1 / 3, 2 / 3, 0], 0.03, "top-p 0.6");
});

Deno.test("sampling: a seed gives the same tokens; top-k 1 and a tiny top-p are greedy", async () => {
  const soft = CHAIN.map((row) => row.map((x) => x / 4));
  const a = await run(markov(soft), { doSample: true, seed: 7, maxNewTokens: 8 });
  const b = await run(markov(soft), { doSample: true, seed: 7, maxNewTokens: 8 });
  assertEquals(a.tokens, b.tokens);
  const greedy = (await run(markov(soft), { maxNewTokens: 8 })).tokens;
  assertEquals((await run(markov(soft), { doSample: true, seed: 3, topK: 1, maxNewTokens: 8 })).tokens, greedy);
  assertEquals((await run(markov(soft), { doSample: true, seed: 3, topP: 1e-6, maxNewTokens: 8 })).tokens, greedy);
  const r = mulberry32(42);
  const draws = Array.from({ length: 1000 }, r);
  assert(draws.every((x) => x >= 0 && x < 1) && new Set(draws).size === 1000);
});

Deno.test("beam search: the best of the beams beats greedy's first step choice when its path is better", async () => {
  // Greedy takes 3 (logit 2) then a flat row; beam search finds 1 (logit 1.9) then a certain EOS.
  const table = [
    [0, 1.9, -9, 2, -9, -9],
    [-9, -9, 9, -9, -9, -9],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
  ];
  assertEquals((await run(markov(table), { maxNewTokens: 2 })).tokens[0], 3);
  const beam = await run(markov(table), { numBeams: 3, maxNewTokens: 4 });
  assertEquals(beam.tokens, [1, 2]);
  assertEquals(beam.finishReason, "eos");
});

Deno.test("abort: a signal aborted before or during decoding rejects with AbortError", async () => {
  await assertRejects(() => run(markov(CHAIN), { signal: AbortSignal.abort() }), AbortError);
  const controller = new AbortController();
  const seen: number[] = [];
  const error = await assertRejects(async () => {
    for await (const t of decodeTokens(markov(CHAIN), { signal: controller.signal })) {
      seen.push(t.id);
      if (seen.length === 2) controller.abort();
    }
  }, AbortError);
  assertEquals([seen, error.name], [[3, 4], "AbortError"]);
});

Deno.test("options: bad values are typed errors", async () => {
  for (const bad of [{ maxNewTokens: 0 }, { numBeams: 1.5 }, { temperature: 0 }, { topP: 0 }, { topK: -1 }]) {
    const error = await assertRejects(() => run(markov(CHAIN), bad), ModelError);
    assertEquals(error.code, "bad_input");
  }
});
