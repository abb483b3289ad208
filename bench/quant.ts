/**
 * Quantised weights (docs/quantization.md), in one run:
 *
 * (a) accuracy — top-1 agreement and mean KL(f32 ‖ q) of the next-token distributions over a fixed prompt set, for
 *     q8 and q4 (and the lm_head alternatives that decided the policy), on the small random checkpoints of
 *     tests/oracles/make_checkpoint.py and the embedded model models/ppllava-tiny;
 * (b) speed — x (M, K) · Wᵀ for the LLaMA-7B shapes W (4096, 4096) and (11008, 4096), M = 1 (decode) and 64 (prefill):
 *     ours (WASM SIMD, one thread) in q8, q4 and f32, against onnxruntime-web (WASM, one thread: MatMul,
 *     DynamicQuantizeMatMul int8 per column, MatMulNBits int4 blocks of 32) and onnxruntime-node (native CPU, one
 *     intra-op thread; a devDependency installed with --ignore-scripts, or ORT_NODE_MODULE=…/dist/index.js).
 *
 * Writes bench/results/quant-accuracy.json, quant-<shape>.json per shape, and quant-summary.json (the ratios).
 *   deno run -A bench/quant.ts [accuracy|speed] [--shapes=4096x4096,11008x4096] [--m=1,64] [--only=f32,q8,q4]
 * `--shapes` and `--m` pick a subset of the rows; `--only` times just those weight types (ours and the peers'
 * matching op; results get a `-<types>` suffix).
 */
import { runBench } from "./harness.ts";
import { measureAccuracy, PROMPTS, type Variant } from "./quant/accuracy.ts";
import { f32MatMul, int4MatMul, int8BlockMatMul, int8MatMul } from "./quant/onnx_models.ts";
import type { QuantDType } from "../src/backend/backend.ts";
import { createWasmBackend } from "../src/backend/wasm/backend.ts";
import { quantizationFor } from "../src/model/quant_checkpoint.ts";
import { LlamaTokenizer } from "../src/model/tokenizers/llama.ts";
import { smallCheckpoints } from "../tests/util/checkpoints.ts";
import { gaussian } from "../tests/util/random.ts";

// deno-lint-ignore no-explicit-any
type Ort = any;

async function tryImport(specifiers: (string | undefined)[]): Promise<{ ort: Ort; from: string } | null> {
  for (const s of specifiers) {
    if (!s) continue;
    try {
      return { ort: await import(s), from: s };
    } catch {
      // next
    }
  }
  return null;
}

const env = (k: string) => (globalThis as { Deno?: { env: { get(k: string): string | undefined } } }).Deno?.env.get(k);

async function writeJson(name: string, value: unknown): Promise<void> {
  const fs = await import("node:fs/promises");
  await fs.writeFile(new URL(`./results/${name}.json`, import.meta.url), JSON.stringify(value, null, 2) + "\n");
}

async function accuracy(): Promise<void> {
  const tokenizer = LlamaTokenizer.fromFiles({
    tokenizerJson: JSON.parse(await Deno.readTextFile("models/ppllava-tiny/tokenizer.json")),
  });
  const prompts = PROMPTS.map((q) => tokenizer.encode(`USER: ${q} ASSISTANT:`));
  const EMBED = "language_model.model.embed_tokens.weight", HEAD = "language_model.lm_head.weight";
  // The policy (quantizationFor) against the alternatives it was chosen over.
  const with4 = (names: string[]) => (name: string, mode: QuantDType) =>
    names.includes(name) ? "q4" : quantizationFor(name, mode);
  const variants: Variant[] = [
    { label: "q8 (policy)", quantize: "q8" },
    { label: "q4 (policy: lm_head q8, embed kept)", quantize: "q4" },
    { label: "q4, embed_tokens q4 too", quantize: "q4", policy: with4([EMBED]) },
    { label: "q4, lm_head q4 too", quantize: "q4", policy: with4([HEAD]) },
    { label: "q4 everywhere (embed, lm_head)", quantize: "q4", policy: with4([EMBED, HEAD]) },
  ];
  const small = await smallCheckpoints();
  const rows = [
    ...await measureAccuracy("small random (f32)", `${small}/f32`, prompts, variants),
    ...await measureAccuracy("small random (bf16)", `${small}/bf16`, prompts, variants),
    ...await measureAccuracy("models/ppllava-tiny (f16, trained)", "models/ppllava-tiny", prompts, variants),
  ];
  console.log("\n## quant-accuracy: next-token distributions vs the f32 load (all prompt positions)");
  for (const r of rows) {
    console.log(
      `${r.checkpoint.padEnd(36)} ${r.variant.padEnd(38)} top-1 ${(100 * r.top1Agreement).toFixed(1)}%  ` +
        `mean KL ${r.meanKl.toExponential(2)}  max KL ${r.maxKl.toExponential(2)}  (${r.positions} positions)`,
    );
  }
  await writeJson("quant-accuracy", { date: new Date().toISOString(), prompts: PROMPTS, rows });
}

/** `--shapes=4096x4096,11008x4096` and `--m=1,64` pick a subset of the speed rows (default: all). */
function flag(name: string, all: number[][]): number[][] {
  const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? [];
  const given = args.find((a) => a.startsWith(`--${name}=`));
  if (!given) return all;
  return given.slice(name.length + 3).split(",").map((v) => v.split("x").map(Number));
}

async function speed(only: string[]): Promise<void> {
  const wanted = (type: string) => only.length === 0 || only.includes(type);
  const suffix = only.length ? `-${only.join("+")}` : "";
  const web = await tryImport([env("ORT_WEB_MODULE"), "onnxruntime-web/wasm"]);
  if (web) web.ort.env.wasm.numThreads = 1;
  const node = await tryImport([env("ORT_NODE_MODULE"), "onnxruntime-node"]);
  if (!node) console.log("quant: onnxruntime-node not loadable (see the file comment); timing without it");
  const ours = await createWasmBackend({ simd: true });
  // The other product method (codes widened to f32, x as is), timed at the square shape to justify the default.
  const f32Method = await createWasmBackend({ simd: true, quantMethod: "f32" });
  // The kernels module's own f32 product (mul + add), beside the default relaxed SIMD one (madd) where it is used.
  const kernelsF32 = ours.relaxedFormats.includes("f32")
    ? await createWasmBackend({ simd: true, relaxedSimd: false })
    : null;
  const summary: Record<string, unknown>[] = [];
  for (const [n, k] of flag("shapes", [[4096, 4096], [11008, 4096]])) {
    const w = gaussian(n * k, n, 0.02);
    const held = ours.scope(() => {
      const f = ours.upload(w, [n, k]);
      return { f32: f, q8: ours.quantize(f, "q8"), q4: ours.quantize(f, "q4") };
    });
    const sessions: { label: string; s: Ort; ort: Ort }[] = [];
    for (const [m] of flag("m", [[1], [64]])) {
      const x = gaussian(m * k, 7);
      const xt = ours.upload(x, [m, k]);
      const cases = [
        { label: "ours q8 (wasm simd)", run: () => ours.linear(xt, held.q8).dispose() },
        { label: "ours q4 (wasm simd)", run: () => ours.linear(xt, held.q4).dispose() },
        { label: "ours f32 (wasm simd)", run: () => ours.linear(xt, held.f32).dispose() },
      ].filter((c) => wanted(c.label.split(" ")[1]));
      const other = n === k && wanted("q8")
        ? f32Method.scope(() => {
          const q = f32Method.quantize(f32Method.upload(w, [n, k]), "q8");
          return { q: f32Method.keep(q), x: f32Method.keep(f32Method.upload(x, [m, k])) };
        })
        : null;
      if (other) {
        cases.push({ label: "ours q8, f32 method", run: () => f32Method.linear(other.x, other.q).dispose() });
      }
      const plainF32 = kernelsF32 && wanted("f32")
        ? kernelsF32.scope(() => ({
          w: kernelsF32.keep(kernelsF32.upload(w, [n, k])),
          x: kernelsF32.keep(kernelsF32.upload(x, [m, k])),
        }))
        : null;
      if (plainF32) {
        cases.push({
          label: "ours f32, kernels module",
          run: () => kernelsF32!.linear(plainF32.x, plainF32.w).dispose(),
        });
      }
      for (const [runtime, loaded] of [["web", web], ["node", node]] as const) {
        if (!loaded) continue;
        const { ort } = loaded;
        const options = runtime === "web"
          ? { executionProviders: ["wasm"] }
          : { executionProviders: ["cpu"], intraOpNumThreads: 1, interOpNumThreads: 1 };
        const input = new ort.Tensor("float32", x, [m, k]);
        for (
          const [kind, make] of [
            ["f32 MatMul", f32MatMul],
            ["int8 DynamicQuantizeMatMul", int8MatMul],
            ["int8 MatMulNBits", int8BlockMatMul],
            ["int4 MatMulNBits", int4MatMul],
          ] as const
        ) {
          if (!wanted({ f32: "f32", int8: "q8", int4: "q4" }[kind.split(" ")[0]]!)) continue;
          const s = await ort.InferenceSession.create(make(m, k, n, w), options);
          sessions.push({ label: `${runtime} ${kind}`, s, ort });
          cases.push(
            { label: `onnxruntime-${runtime} ${kind}`, run: async () => void (await s.run({ A: input })) } as never,
          );
        }
      }
      const result = await runBench({
        name: `quant-${n}x${k}-m${m}${suffix}`,
        cases,
        reps: m === 1 ? 15 : 5,
        // V8 runs a WASM function in its baseline compiler (Liftoff) until the optimised code is ready: a decode
        // step (~1–2 ms) took ~7 calls to get there here, so two warm-up calls timed mostly baseline code.
        warmup: m === 1 ? 12 : 3,
        work: { amount: 2 * m * n * k, unit: "FLOP" },
        notes: {
          m,
          n,
          k,
          threads: 1,
          web: web?.from ?? "none",
          node: node?.from ?? "none",
          loadavg: await loadAverage(),
          relaxedSimd: ours.relaxedFormats,
        },
      });
      const by = (label: string) => result.cases.find((c) => c.label === label);
      const ratio = (ourLabel: string, peer: string) => {
        const [a, b] = [by(ourLabel), by(peer)];
        return a && b ? Number((b.medianS / a.medianS).toFixed(2)) : null;
      };
      summary.push({
        shape: `${n}x${k}`,
        m,
        gflops: Object.fromEntries(result.cases.map((c) => [c.label, Number(((c.throughput ?? 0) / 1e9).toFixed(2))])),
        "int8 method vs f32 method": ratio("ours q8 (wasm simd)", "ours q8, f32 method"),
        "q8 vs web int8": ratio("ours q8 (wasm simd)", "onnxruntime-web int8 DynamicQuantizeMatMul"),
        "q8 vs web int8 same format": ratio("ours q8 (wasm simd)", "onnxruntime-web int8 MatMulNBits"),
        "q4 vs web int4": ratio("ours q4 (wasm simd)", "onnxruntime-web int4 MatMulNBits"),
        "f32 vs web f32": ratio("ours f32 (wasm simd)", "onnxruntime-web f32 MatMul"),
        "f32 kernels module vs web f32": ratio("ours f32, kernels module", "onnxruntime-web f32 MatMul"),
        "q8 vs node int8": ratio("ours q8 (wasm simd)", "onnxruntime-node int8 DynamicQuantizeMatMul"),
        "q8 vs node int8 same format": ratio("ours q8 (wasm simd)", "onnxruntime-node int8 MatMulNBits"),
        "q4 vs node int4": ratio("ours q4 (wasm simd)", "onnxruntime-node int4 MatMulNBits"),
        "f32 vs node f32": ratio("ours f32 (wasm simd)", "onnxruntime-node f32 MatMul"),
      });
      for (const { s } of sessions.splice(0)) await s.release();
      xt.dispose();
      if (other) other.q.dispose(), other.x.dispose();
      if (plainF32) plainF32.w.dispose(), plainF32.x.dispose();
    }
    for (const t of Object.values(held)) t.dispose();
  }
  console.log("\n## quant-summary: peer time / our time (> 1: ours faster)");
  for (const row of summary) console.log(JSON.stringify(row));
  await writeJson(`quant-summary${suffix}`, { date: new Date().toISOString(), rows: summary });
}

async function loadAverage(): Promise<string> {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).trim();
  } catch {
    return "unknown";
  }
}

export async function main(): Promise<void> {
  const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? [];
  const types = args.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",").filter(Boolean) ?? [];
  if (!args.includes("speed")) await accuracy();
  if (!args.includes("accuracy")) await speed(types);
}

if (import.meta.main) await main();
