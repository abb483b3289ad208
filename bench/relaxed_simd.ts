/**
 * The q4 and q8 products on relaxed SIMD (wasm/ppllava_relaxed.wasm, src/backend/wasm/relaxed.ts) against the kernels
 * module's own (kernels-rs dot4_decode), both through the WASM backend's `linear` on one thread, in one run: x (M, K)
 * · Wᵀ for the LLaMA-7B shapes, M = 1 (decode) and M = 64 (prefill: relaxed matrix–vector products over stripes of
 * weight rows that stay cached, against the kernels module's widened blocks). Both give the same bits
 * (tests/quant_kernels.test.ts); this times them. q8 only where the runtime computes its relaxed product right
 * (an unsaturated u8 × i8 dot: Deno with AVX-VNNI; Bun declines it). q4 is also timed on the 8-bit dot that was
 * not picked (q4DotFor in src/backend/wasm/relaxed.ts: the 16-bit one on x86 where q8 is declined, else the 32-bit).
 * Runs on Deno and Bun (the runtime is in the result's name):
 *   deno run -A bench/relaxed_simd.ts        node_modules/.bin/bun bench/relaxed_simd.ts
 * Then decoding itself: the 0.4 B model of bench/big_model.ts (hidden 2048, 8 layers) in each format loaded twice,
 * relaxed SIMD on and off, on the main thread and in 2 LLM workers, one token a step after a 16-token prefill, the
 * two models timed interleaved.
 * Writes bench/results/relaxed_simd-<runtime>-*.json; a runtime without relaxed SIMD says so and times nothing.
 * `--f32` instead: the f32 linear (f32 and f16 weights) and attention on relaxed multiply-add (kernels-rs/relaxed/f32.wat,
 * attention.wat; each where it is in use) against the kernels module's, at the CLIP-L vision tower's shapes (577 tokens a frame, 4 frames) and
 * the LLaMA-7B's: relaxed_simd-<runtime>-f32-*.json.
 * `--7b` instead: q4 decoding of the Vicuna-7B shapes (2 LLM workers, as loadModel plans them) on the picked dot and
 * on the other, loaded in turn (two 7B models do not fit beside each other), four rounds alternating; ratios within
 * a round pair are the firm figure on a host whose second core comes and goes.
 */
import { runBench } from "./harness.ts";
import { midConfig, openSession } from "./big_model.ts";
import { loadModel } from "../src/model/model.ts";
import { syntheticCheckpoint, toF16, VICUNA_7B_CONFIG } from "../src/model/synthetic_checkpoint.ts";
import { createWasmBackend } from "../src/backend/wasm/backend.ts";
import { loadKernels } from "../src/backend/wasm/loader.ts";
import { cpuArch, dotLabel, q4DotFor, type RelaxedDot, relaxedSimdSupport } from "../src/backend/wasm/relaxed.ts";
import { gaussian } from "../tests/util/random.ts";

const SHAPES: [number, number][] = [[4096, 4096], [11008, 4096], [4096, 11008]];
/** x rows of the prefill cases (a prompt's chunk). */
const PREFILL_ROWS = 64;

export async function main(): Promise<void> {
  const runtime = (globalThis as { Bun?: unknown }).Bun ? "bun" : "deno";
  const support = await relaxedSimdSupport(await loadKernels());
  const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? (await import("node:process")).argv.slice(2);
  // q4 on the dot that relaxedSimdSupport did not pick too (q4DotFor), to show the pick was the faster.
  const pickedDot = q4DotFor(support.q8 !== null, cpuArch()),
    otherDot: RelaxedDot = pickedDot === "i32" ? "i16" : "i32";
  if (args.includes("--7b")) return await sevenBDots(runtime, [pickedDot, otherDot]);
  if (args.includes("--f32")) return await f32Products(runtime, support.reason);
  const formats = (["q4", "q8"] as const).filter((f) => support[f]);
  console.log(`relaxed_simd: ${support.reason}`);
  if (formats.length === 0) return console.log("relaxed_simd: nothing to time");
  const relaxed = await createWasmBackend();
  const plain = await createWasmBackend({ relaxedSimd: false });
  const otherBackend = await createWasmBackend({ relaxedQ4Dot: otherDot });
  const other = otherBackend.relaxedFormats.includes("q4") ? otherBackend : null;
  const products = formats.flatMap((f) => [1, PREFILL_ROWS].flatMap((m) => SHAPES.map((s) => [f, m, s] as const)));
  for (const [format, m, [n, k]] of products) {
    const w = gaussian(n * k, n + k, 0.02);
    const x = gaussian(m * k, 7);
    const backends = [relaxed, plain, ...(format === "q4" && other ? [other] : [])];
    // The f32 upload is freed once quantised (scope), so the products' weights do not pile up in the one instance.
    const weights = backends.map((b) => b.scope(() => b.keep(b.quantize(b.upload(w, [n, k]), format))));
    const inputs = backends.map((b) => b.upload(x, [m, k]));
    const theirs = m === 1 ? "dot4_decode" : "dot8_int8_wide";
    const dot = (d: RelaxedDot) => (format === "q4" ? `, ${dotLabel(d)}` : "");
    await runBench({
      name: `relaxed_simd-${runtime}-${format === "q4" ? "" : "q8-"}${n}x${k}${m === 1 ? "" : `-m${m}`}`,
      cases: [
        {
          label: `${format} ${n}×${k}, M=${m}, relaxed SIMD${dot(pickedDot)}`,
          run: () => relaxed.linear(inputs[0], weights[0]).dispose(),
        },
        {
          label: `${format} ${n}×${k}, M=${m}, kernels module (${theirs})`,
          run: () => plain.linear(inputs[1], weights[1]).dispose(),
        },
        ...(backends.length > 2
          ? [{
            label: `${format} ${n}×${k}, M=${m}, relaxed SIMD${dot(otherDot)} (not picked)`,
            run: () => backends[2].linear(inputs[2], weights[2]).dispose(),
          }]
          : []),
      ],
      // V8 tiers a WASM function up after several calls (docs/quantization.md, "Measuring"): warm up past that.
      reps: m === 1 ? 30 : 10,
      warmup: m === 1 ? 12 : 3,
      work: { amount: m * n * k, unit: "weight" },
      notes: { n, k, m, format, bytesOfCodes: format === "q4" ? (n * k) / 2 : n * k, threads: 1 },
    });
    for (const t of [...weights, ...inputs]) t.dispose();
  }
  for (const format of formats) {
    for (const workers of [0, 2]) await decode(runtime, workers, format, format === "q4" && other ? otherDot : null);
  }
}

/** The f32 linear (f32 and f16 weights) and attention, relaxed SIMD against the kernels module, one runBench each. */
async function f32Products(runtime: string, reason: string): Promise<void> {
  console.log(`relaxed_simd: ${reason}`);
  const relaxed = await createWasmBackend();
  const plain = await createWasmBackend({ relaxedSimd: false });
  const backends = [["relaxed SIMD (madd)", relaxed], ["kernels module", plain]] as const;
  // [M, N, K]: a CLIP-L MLP pair over 4 frames of 577 tokens, and a 7B projection in prefill. Where the f32 product is
  // declined (madd unfused: Bun) only attention is timed.
  const linears = relaxed.relaxedFormats.includes("f32")
    ? [[4 * 577, 4096, 1024], [4 * 577, 1024, 4096], [64, 4096, 4096]]
    : [];
  for (const [m, n, k] of linears) {
    for (const dtype of ["f32", "f16"] as const) {
      const w = gaussian(n * k, n + k, 0.02), x = gaussian(m * k, 7);
      const weight = dtype === "f32" ? w : Uint16Array.from(w, toF16);
      const held = backends.map(([, b]) => [b.upload(weight, [n, k], dtype), b.upload(x, [m, k])]);
      await runBench({
        name: `relaxed_simd-${runtime}-f32-linear-${dtype}-${n}x${k}-m${m}`,
        cases: backends.map(([label, b], i) => ({
          label: `linear ${dtype} ${n}×${k}, M=${m}, ${label}`,
          run: () => b.linear(held[i][1], held[i][0]).dispose(),
        })),
        reps: 5,
        warmup: 2,
        work: { amount: 2 * m * n * k, unit: "FLOP" },
        notes: { m, n, k, dtype, threads: 1 },
      });
      for (const t of held.flat()) t.dispose();
    }
  }
  // [batch, heads, tokens, d, causal]: the vision tower's (4 frames, 16 heads of 64) and a 7B prefill's.
  const attentions = relaxed.relaxedAttention ? [[4, 16, 577, 64, false], [1, 32, 1100, 128, true]] as const : [];
  for (const [batch, heads, s, d, causal] of attentions) {
    const held = backends.map(([, b]) =>
      [1, 2, 3].map((seed) => b.upload(gaussian(batch * heads * s * d, seed), [batch, heads, s, d]))
    );
    await runBench({
      name: `relaxed_simd-${runtime}-f32-attention-${heads}x${s}x${d}${causal ? "-causal" : ""}`,
      cases: backends.map(([label, b], i) => ({
        label: `attention ${batch}×${heads} heads, ${s} tokens, d ${d}${causal ? ", causal" : ""}, ${label}`,
        run: () => b.attention(held[i][0], held[i][1], held[i][2], { causal }).dispose(),
      })),
      reps: 5,
      warmup: 2,
      work: { amount: 4 * batch * heads * s * s * d * (causal ? 0.5 : 1), unit: "FLOP" },
      notes: { batch, heads, tokens: s, d, causal, threads: 1 },
    });
    for (const t of held.flat()) t.dispose();
  }
}

/** 7B q4 decode on `dots` (picked first), loaded in turn for four rounds: tokens/s per round and dot. */
async function sevenBDots(runtime: string, dots: RelaxedDot[]): Promise<void> {
  const prefill = 16, reps = 10;
  const perDot = new Map<RelaxedDot, number[]>();
  for (let round = 0; round < 4; round++) {
    const dot = dots[round % 2];
    const model = await loadModel(syntheticCheckpoint(VICUNA_7B_CONFIG), {
      quantize: "q4",
      featuresCacheBytes: 0,
      relaxedQ4Dot: dot,
    });
    try {
      const { open, embeds } = openSession(model, prefill + reps + 4, prefill);
      const session = open();
      await session.run(embeds);
      embeds.dispose();
      let token = 1;
      const result = await runBench({
        name: `relaxed_simd-${runtime}-7b-q4-round${round}`,
        cases: [{
          label: `decode, 7B q4, ${model.plan?.workers} LLM workers, ${dotLabel(dot)}${
            dot === dots[0] ? "" : " (not picked)"
          }`,
          run: () => session.step([token++ % 30000]),
        }],
        reps,
        warmup: 1,
        work: { amount: 1, unit: "token" },
        notes: { round, dot, picked: dot === dots[0] },
      });
      perDot.set(dot, [...(perDot.get(dot) ?? []), 1 / result.cases[0].medianS]);
      session.dispose();
    } finally {
      model.dispose();
    }
  }
  const [a, b] = dots.map((d) => perDot.get(d)!);
  console.log(
    `# 7B q4 decode, tokens/s per round: ${dots[0]} ${a.map((v) => v.toFixed(2)).join(", ")}; ${dots[1]} ${
      b.map((v) => v.toFixed(2)).join(", ")
    }; picked over other, round pairs: ${a.map((v, i) => (v / b[i]).toFixed(2) + "×").join(", ")}`,
  );
}

/** `otherDot`: also time q4 on the dot that was not picked. */
async function decode(runtime: string, workers: number, format: "q4" | "q8", otherDot: RelaxedDot | null) {
  const config = await midConfig();
  const models = [];
  const variants = [{ relaxedSimd: true }, { relaxedSimd: false }, ...(otherDot ? [{ relaxedQ4Dot: otherDot }] : [])];
  for (const variant of variants) {
    models.push(
      await loadModel(syntheticCheckpoint(config), { quantize: format, workers, featuresCacheBytes: 0, ...variant }),
    );
  }
  const reps = 24, warmup = 4, prefill = 16;
  try {
    const sessions: ReturnType<ReturnType<typeof openSession>["open"]>[] = [];
    for (const model of models) {
      const { open, embeds } = openSession(model, prefill + reps + warmup + 2, prefill);
      const session = open();
      await session.run(embeds);
      embeds.dispose();
      sessions.push(session);
    }
    let token = 1;
    const where = workers ? `${workers} LLM workers` : "main thread";
    await runBench({
      name: `relaxed_simd-${runtime}-${format === "q4" ? "" : "q8-"}decode-w${workers}`,
      cases: [
        {
          label: `decode, 0.4 B ${format} model, ${where}, relaxed SIMD`,
          run: () => sessions[0].step([token++ % 30000]),
        },
        {
          label: `decode, 0.4 B ${format} model, ${where}, kernels module`,
          run: () => sessions[1].step([token++ % 30000]),
        },
        ...(otherDot
          ? [{
            label: `decode, 0.4 B ${format} model, ${where}, relaxed SIMD, ${dotLabel(otherDot)} (not picked)`,
            run: () => sessions[2].step([token++ % 30000]),
          }]
          : []),
      ],
      reps,
      warmup,
      work: { amount: 1, unit: "token" },
      notes: { model: `hidden 2048, 8 layers, MLP 5504, vocab 32064, ${format}`, workers, prefill },
    });
    for (const s of sessions) s.dispose();
  } finally {
    for (const m of models) m.dispose();
  }
}

if ((import.meta as { main?: boolean }).main) await main();
