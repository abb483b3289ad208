/**
 * The q8/q4 block layout (docs/quantization.md, "Layout") against the plain row layout it replaced, in one process:
 * this checkout's wasm/ and an older build's (`--baseline DIR`, a checkout whose wasm/ predates the layout, e.g.
 * `git worktree add /tmp/base d6f6009`), each its own kernels instance with its own copy of the same weights, timed
 * interleaved (bench/harness.ts). Decoding: x (1, K) · Ŵᵀ through `ppl_quant_matmul` (the kernels module's product,
 * q8 and q4) and through the relaxed q4 product of each build's wasm/ppllava_relaxed.wasm, over several LLaMA-7B
 * matrices, far more bytes than the caches hold, as a decode step streams them. Both builds give the same values up
 * to their float order (checked here within 1e-5 of the outputs' scale).
 *   deno run -A bench/quant_layout.ts --baseline /tmp/base [--workers 2]
 * (bench/main.ts runs it only when PPLLAVA_BENCH_BASELINE names the older checkout.)
 * With --workers 2 the same runs happen in two workers at once (each its own pair of instances), as the 7B decode
 * streams from both cores; each worker's figures are printed.
 */
import { runBench } from "./harness.ts";
import { gaussian } from "../tests/util/random.ts";

const SHAPES: [number, number][] = [[11008, 4096], [4096, 11008], [4096, 4096]];
const COPIES = 2; // of each shape: 2 × (45 + 45 + 17) M weights ≈ 107 MB q4, 240 MB q8 per build
const FORMATS = { q8: 3, q4: 4 } as const;
const GROUP = 32;

interface Exports {
  memory: WebAssembly.Memory;
  ppl_alloc(bytes: number): number;
  ppl_quant_bytes(format: number, n: number, k: number): number;
  ppl_quant_quantize(src: number, dtype: number, n: number, k: number, format: number, dst: number): number;
  ppl_quant_matmul(...args: number[]): number;
  ppl_quant_activations_i8(
    x: number,
    m: number,
    k: number,
    rs: number,
    x8: number,
    sums: number,
    scales: number,
  ): number;
}

/** One build: its kernels instance, its relaxed q4 product, and the weights quantised by it. */
async function build(dir: string, format: keyof typeof FORMATS) {
  const read = (name: string) => Deno.readFile(`${dir}/wasm/${name}`);
  const { instance } = await WebAssembly.instantiate(await read("ppllava_kernels.wasm"), {});
  const e = instance.exports as unknown as Exports;
  const relaxed = (await WebAssembly.instantiate(await read("ppllava_relaxed.wasm"), { env: { memory: e.memory } }))
    .instance.exports as { q4_matvec(...args: number[]): void };
  const alloc = (bytes: number) => {
    const p = e.ppl_alloc(bytes) >>> 0;
    if (!p) throw new Error(`${dir}: cannot allocate ${bytes} bytes`);
    return p;
  };
  const f32 = (p: number, n: number) => new Float32Array(e.memory.buffer, p, n);
  const kMax = Math.max(...SHAPES.map(([, k]) => k)), nMax = Math.max(...SHAPES.map(([n]) => n));
  const x = alloc(4 * kMax), y = alloc(4 * nMax), x8 = alloc(kMax), sums = alloc(kMax / 8), scales = alloc(kMax / 8);
  const source = alloc(4 * nMax * kMax);
  const weights: { n: number; k: number; w: number }[] = [];
  for (let c = 0; c < COPIES; c++) {
    for (const [n, k] of SHAPES) {
      f32(source, n * k).set(gaussian(n * k, n + k + c, 0.02));
      const w = alloc(e.ppl_quant_bytes(FORMATS[format], n, k));
      if (e.ppl_quant_quantize(source, 0, n, k, FORMATS[format], w) !== 0) throw new Error("quantize failed");
      weights.push({ n, k, w });
    }
  }
  const input = gaussian(kMax, 7);
  const matvec = (useRelaxed: boolean) => {
    for (const { n, k, w } of weights) {
      f32(x, k).set(input.subarray(0, k));
      if (useRelaxed) {
        e.ppl_quant_activations_i8(x, 1, k, k, x8, sums, scales);
        const g = Math.ceil(k / GROUP);
        relaxed.q4_matvec(x8, sums, scales, w, w + n * g * 16, n, g, 0, y);
      } else if (e.ppl_quant_matmul(x, 1, k, k, w, FORMATS[format], n, 0, y, n, 0, 1) !== 0) {
        throw new Error("matmul failed");
      }
    }
    return f32(y, weights.at(-1)!.n).slice();
  };
  const bytes = weights.reduce((a, { n, k }) => a + e.ppl_quant_bytes(FORMATS[format], n, k), 0);
  return { matvec, bytes };
}

async function compare(baseline: string, tag: string) {
  const out: Record<string, number> = {};
  for (const format of ["q4", "q8"] as const) {
    const [ours, base] = [await build(".", format), await build(baseline, format)];
    for (const useRelaxed of format === "q4" ? [true, false] : [false]) {
      const [a, b] = [ours.matvec(useRelaxed), base.matvec(useRelaxed)];
      const scale = Math.max(...a.map(Math.abs));
      const worst = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
      if (!(worst <= 1e-5 * scale)) throw new Error(`${format}: the builds disagree by ${worst} (scale ${scale})`);
      const product = useRelaxed ? "relaxed SIMD" : "kernels module";
      const result = await runBench({
        name: `quant_layout-${format}-${useRelaxed ? "relaxed" : "kernels"}${tag}`,
        cases: [
          { label: `${format} decode, ${product}, this checkout`, run: () => ours.matvec(useRelaxed) },
          { label: `${format} decode, ${product}, older build (${baseline})`, run: () => base.matvec(useRelaxed) },
        ],
        reps: 15,
        warmup: 4,
        work: { amount: ours.bytes, unit: "byte" },
        notes: { shapes: SHAPES, copies: COPIES, m: 1, bytesPerPass: ours.bytes, baseline },
      });
      out[`${format} ${product}`] = result.cases[1].ratioToOurs;
    }
  }
  return out;
}

/** From bench/main.ts (no arguments of its own) the baseline comes from PPLLAVA_BENCH_BASELINE, or the run is skipped. */
export async function main() {
  const args = Deno.args;
  const at = args.indexOf("--baseline");
  const baseline = at >= 0 ? args[at + 1] : Deno.env.get("PPLLAVA_BENCH_BASELINE");
  if (!baseline) {
    console.log(
      "quant_layout: skipped (needs an older build: deno run -A bench/quant_layout.ts --baseline DIR, or " +
        "PPLLAVA_BENCH_BASELINE=DIR)",
    );
    return;
  }
  const workers = args.includes("--workers") ? Number(args[args.indexOf("--workers") + 1]) : 0;
  if (!workers) {
    console.log(JSON.stringify(await compare(baseline, ""), null, 2));
    return;
  }
  const pool = Array.from({ length: workers }, () => new Worker(import.meta.url, { type: "module" }));
  const results = await Promise.all(pool.map((w, i) =>
    new Promise((resolve, reject) => {
      w.onmessage = (m) => resolve(m.data);
      w.onerror = (err) => reject(err);
      w.postMessage({ baseline, tag: `-w${i}of${workers}` });
    })
  ));
  pool.forEach((w) => w.terminate());
  console.log(JSON.stringify(results, null, 2));
}

const workerScope = globalThis as unknown as {
  WorkerGlobalScope?: unknown;
  onmessage: (m: MessageEvent<{ baseline: string; tag: string }>) => void;
  postMessage(data: unknown): void;
};
if (workerScope.WorkerGlobalScope) {
  workerScope.onmessage = async (m) => workerScope.postMessage(await compare(m.data.baseline, m.data.tag));
} else if (import.meta.main) await main();
