/**
 * The q4, q8 and f32 products with relaxed SIMD: `wasm/ppllava_relaxed.wasm` (built from kernels-rs/relaxed/*.wat
 * by scripts/build-wasm), instantiated once per kernels instance over that instance's own memory, so it reads the
 * weights (in their block layout) and activations where they already are. One x row (decoding) or two (prefill) at
 * a time; it computes the same bits as kernels-rs's int8 products (kernels-rs/relaxed/quant.wat says why). Against the kernels
 * module's products on the block layout, Deno: q4 decode 1.3–1.7×, prefill 1.45–1.65×; Bun 1.2–1.3× and 1.15–1.22×
 * (bench/relaxed_simd.ts, docs/big-models.md); q8 and the 16-bit-dot q4 in docs/quantization.md, "Products".
 *
 * Whether an instance uses them is decided once, when first asked, for each format: the runtime must compile the
 * module (Deno and Bun do; Node 20 does not without a flag) and the relaxed product of a fixed problem must equal
 * `ppl_quant_matmul`'s bit for bit (Node 20 with `--experimental-wasm-relaxed-simd` computes another sum, which this
 * check catches). q4 feeds the dot only 7-bit codes, which every lowering multiplies exactly; q8 feeds it 8-bit
 * unsigned ones, exact only where the runtime lowers the dot to an unsaturated u8 × i8 product (V8 with AVX-VNNI), so
 * its problem holds the extreme codes that a saturating lowering (Bun's pmaddubsw) or a signed one gets wrong.
 * Otherwise the kernels module's own product is used, and `relaxedSimdSupport` says why.
 *
 * The f32 product (x · Wᵀ for f32 weights and, widened a block at a time, f16/bf16 ones) and attention, both on relaxed
 * multiply-add, are the exception to "the same bits": madd fuses where the CPU has FMA, which rounds once per term
 * where the kernels module rounds twice. Their checks are therefore bounds, not bits: on a fixed problem every output
 * must lie within the f32 bound of the float64 result. The f32 product is also not used where madd does not fuse (it is
 * then the kernels module's sums and no faster); attention is, as its tiles beat the kernels module's either way
 * (f32.wat and attention.wat say what they compute; against the kernels module's, on Zen 4: 1.4× at M = 64, attention
 * 1.5–1.8× in Deno and 1.1–1.2× in Bun, where madd does not fuse).
 */
import { PackageFileError, readPackageFile } from "../../util/files.ts";
import { QUANT_CODE_BYTES, type QuantDType } from "../backend.ts";
import { DTYPE_CODES } from "./context.ts";
import type { WasmKernels } from "./loader.ts";

export const RELAXED_WASM_PATH = "wasm/ppllava_relaxed.wasm";
const ABI_VERSION = 5;
const GROUP = 32;
/** The weight formats with a relaxed product. */
export type RelaxedFormat = QuantDType | "f32";

/** One x row as `ppl_quant_activations_i8` leaves it: int8 codes, each group's Σ and scale (addresses). */
export interface QuantizedRow {
  x8: number;
  sums: number;
  scales: number;
}

/** One format's relaxed products (addresses in the kernels module's memory; see quant.wat). */
export interface RelaxedProduct {
  /** out[0..n) = x · Ŵᵀ + bias for one x row: x8 / sums / scales from `ppl_quant_activations_i8`, n a multiple of 4. */
  matvec(
    x8: number,
    sums: number,
    scales: number,
    codes: number,
    dw: number,
    n: number,
    groups: number,
    bias: number,
    out: number,
  ): void;
  /** `matvec` for two x rows at once (prefill), the same bits; each block's codes are unpacked once for both. */
  matvec2(
    a: QuantizedRow,
    b: QuantizedRow,
    codes: number,
    dw: number,
    n: number,
    groups: number,
    bias: number,
    outA: number,
    outB: number,
  ): void;
}

/** The f32 product (addresses in the kernels module's memory; W row-major (n, k), rows of x and y dense). */
export interface RelaxedF32Product {
  /** out[0..n) = x · Wᵀ + bias for one x row (bias 0 for none). */
  matvec(x: number, k: number, w: number, n: number, bias: number, out: number): void;
  /**
   * y (m, n; rows `outRows` f32 apart) = x (m, k) · Wᵀ + bias; `packed` is scratch for ⌊m/4⌋·4·k f32, into which x is
   * packed first, or which holds x packed already when `pack` is false (one x over blocks of weight rows). Each row
   * gets `matvec`'s bits.
   */
  matmul(
    x: number,
    m: number,
    k: number,
    w: number,
    n: number,
    bias: number,
    out: number,
    outRows: number,
    packed: number,
    pack: boolean,
  ): void;
  /** dst[0..count) f32 = src[0..count) f16 or bf16, exactly (the weights of a block, before `matmul`). */
  widen(dtype: "f16" | "bf16", src: number, count: number, dst: number): void;
}

/** Attention on relaxed multiply-add (addresses in the kernels module's memory). */
export interface RelaxedAttention {
  /**
   * One head (attention.wat `f32_attention_head`): rows of q (sq), k and v (skv) and out (sq) at byte strides, d a
   * multiple of 8 and dense; `kt` is scratch for d · S8 f32 and `p` for 4 · S8 (S8 = skv rounded up to 8); causal
   * needs sq ≤ skv.
   */
  head(
    q: number,
    qStride: number,
    k: number,
    kStride: number,
    v: number,
    vStride: number,
    out: number,
    outStride: number,
    sq: number,
    skv: number,
    d: number,
    scale: number,
    causal: boolean,
    kt: number,
    p: number,
  ): void;
}

/** The relaxed products an instance uses: null for a format whose product the runtime does not compute right. */
export interface RelaxedProducts {
  readonly q4: RelaxedProduct | null;
  readonly q8: RelaxedProduct | null;
  readonly f32: RelaxedF32Product | null;
  readonly attention: RelaxedAttention | null;
}

/** Which relaxed products an instance uses, and why not where it does not. */
export interface RelaxedSupport extends RelaxedProducts {
  readonly reason: string;
}

/** Which 8-bit dot a q4 product is built on (quant.wat): "i32" = `i32x4.dot_i8x16_i7x16_add_s`, "i16" =
 * `i16x8.dot_i8x16_i7x16_s` (`q4_matvec_i16`). The same bits; which is faster depends on the runtime's lowering. */
export type RelaxedDot = "i32" | "i16";

/** "16-bit dot" / "32-bit dot": how `reason` and the benches name a dot. */
export function dotLabel(dot: RelaxedDot): string {
  return `${dot === "i16" ? 16 : 32}-bit dot`;
}

type RelaxedExports = Record<string, (...args: number[]) => number | void>;

let compiled: Promise<WebAssembly.Module> | null = null;
const perInstance = new WeakMap<WasmKernels, Promise<RelaxedSupport>>();
const exportsPerInstance = new WeakMap<WasmKernels, Promise<RelaxedExports | string>>();

/** The relaxed products for `kernels`, each null where not used, with the reason (decided once per instance). */
export function relaxedSimdSupport(kernels: WasmKernels): Promise<RelaxedSupport> {
  let support = perInstance.get(kernels);
  if (!support) {
    support = load(kernels).catch((cause) => ({
      ...NO_RELAXED,
      reason: String(cause instanceof Error ? cause.message : cause),
    }));
    perInstance.set(kernels, support);
  }
  return support;
}

/**
 * One format's product on a given dot, checked like `relaxedSimdSupport`'s, or why it is not used: for comparing the
 * two q4 products on one host (tests, bench/relaxed_simd.ts), as `relaxedSimdSupport` picks one per runtime.
 */
export async function relaxedProduct(
  kernels: WasmKernels,
  format: QuantDType,
  dot: RelaxedDot,
): Promise<RelaxedProduct | string> {
  const exports = await relaxedExports(kernels);
  if (typeof exports === "string") return exports;
  const candidate = productOf(exports, format, dot);
  const mismatch = knownAnswerMismatch(kernels, format, candidate);
  return mismatch
    ? `${format} declined, the relaxed product disagrees with the kernels module's: ${mismatch}`
    : candidate;
}

/** `relaxedSimdSupport`'s products with q4 on `dot` (null where that product is not used), for comparisons. */
export async function relaxedProductsOnQ4Dot(kernels: WasmKernels, dot: RelaxedDot): Promise<RelaxedProducts> {
  const [support, q4] = [await relaxedSimdSupport(kernels), await relaxedProduct(kernels, "q4", dot)];
  return { ...support, q4: typeof q4 === "string" ? null : q4 };
}

/** No relaxed product: an instance that does not use them. */
export const NO_RELAXED: RelaxedProducts = { q4: null, q8: null, f32: null, attention: null };

/**
 * The f32 product, checked against the float64 sum of a fixed problem, or why it is not used: off that sum, or
 * giving the kernels module's very bits, which means the runtime does not fuse madd (JavaScriptCore, Bun 1.4.5) and
 * the product gains nothing (Bun: 0.98–1.08× the kernels module's at M = 64, 0.82–1.0× decoding).
 */
export async function relaxedF32Product(kernels: WasmKernels): Promise<RelaxedF32Product | string> {
  const exports = await relaxedExports(kernels);
  if (typeof exports === "string") return exports;
  const { f32_matvec: matvec, f32_matmul: matmul, widen_f16: widenF16, widen_bf16: widenBf16 } = exports;
  const product: RelaxedF32Product = {
    matvec: (x, k, w, n, bias, out) => void matvec(x, k, w, n, bias, out),
    matmul: (x, m, k, w, n, bias, out, outRows, packed, pack) =>
      void matmul(x, m, k, w, n, bias, out, outRows, packed, pack ? 1 : 0),
    widen: (dtype, src, count, dst) => void (dtype === "f16" ? widenF16 : widenBf16)(src, count, dst),
  };
  const check = f32Check(kernels, product);
  if (check.miss) return `f32 declined, the relaxed product is off the float64 sum: ${check.miss}`;
  if (!check.fused) {
    return "f32 kept in the kernels module: this runtime's madd does not fuse (the same sums, no faster)";
  }
  return product;
}

/**
 * Attention on relaxed multiply-add, checked against the float64 result of a fixed problem (causal with earlier keys,
 * GQA, tails of queries and keys), or why it is not used. Fused or not: its register tiles beat the kernels module's
 * attention either way.
 */
export async function relaxedAttention(kernels: WasmKernels): Promise<RelaxedAttention | string> {
  const exports = await relaxedExports(kernels);
  if (typeof exports === "string") return exports;
  const head = exports.f32_attention_head;
  const attention: RelaxedAttention = {
    head: (q, qs, k, ks, v, vs, out, os, sq, skv, d, scale, causal, kt, p) =>
      void head(q, qs, k, ks, v, vs, out, os, sq, skv, d, scale, causal ? 1 : 0, kt, p),
  };
  const miss = attentionMiss(kernels, attention);
  return miss ? `attention declined, the relaxed product is off the float64 result: ${miss}` : attention;
}

async function load(kernels: WasmKernels): Promise<RelaxedSupport> {
  const exports = await relaxedExports(kernels);
  if (typeof exports === "string") return { ...NO_RELAXED, reason: exports };
  const q8 = await relaxedProduct(kernels, "q8", "i32");
  const q4Dot = q4DotFor(typeof q8 !== "string", cpuArch());
  const q4 = await relaxedProduct(kernels, "q4", q4Dot);
  const f32 = await relaxedF32Product(kernels);
  const attention = await relaxedAttention(kernels);
  const used = [
    typeof q4 !== "string" && `q4 (${dotLabel(q4Dot)})`,
    typeof q8 !== "string" && "q8",
    typeof f32 !== "string" && "f32 (madd)",
    typeof attention !== "string" && "attention (madd)",
  ]
    .filter(Boolean).join(", ");
  const declined = [q4, q8, f32, attention].filter((p): p is string => typeof p === "string");
  return {
    q4: typeof q4 === "string" ? null : q4,
    q8: typeof q8 === "string" ? null : q8,
    f32: typeof f32 === "string" ? null : f32,
    attention: typeof attention === "string" ? null : attention,
    reason: [used ? `relaxed SIMD ${used} products in use` : "", ...declined].filter(Boolean).join("; "),
  };
}

/**
 * The dot q4 runs on. On x86, q8's check passes exactly where the 32-bit dot multiplies unsigned 8-bit operands
 * unsaturated, which is where it is one instruction (vpdpbusd); elsewhere the runtime builds it from pmaddubsw,
 * pmaddwd and an add, and q4 runs faster on the 16-bit dot, which is pmaddubsw alone (docs/quantization.md,
 * "Products"). Other CPUs (Arm's sdot reads the operand signed, so q8 fails there too, yet its 32-bit dot is one
 * instruction) and unknown ones keep the 32-bit dot: the 16-bit one was measured on x86 only.
 */
export function q4DotFor(q8Exact: boolean, arch: string | undefined): RelaxedDot {
  return !q8Exact && arch === "x86_64" ? "i16" : "i32";
}

/** "x86_64", "aarch64", … where the runtime says (Deno.build.arch; Node and Bun's process.arch, normalised). */
export function cpuArch(): string | undefined {
  const g = globalThis as { Deno?: { build?: { arch?: string } }; process?: { arch?: string } };
  const arch = g.Deno?.build?.arch ?? g.process?.arch;
  return arch === "x64" ? "x86_64" : arch === "arm64" ? "aarch64" : arch;
}

/** The relaxed module instantiated over `kernels`' memory (once per instance), or why it cannot be. */
function relaxedExports(kernels: WasmKernels): Promise<RelaxedExports | string> {
  let exports = exportsPerInstance.get(kernels);
  if (!exports) {
    exports = instantiate(kernels);
    exportsPerInstance.set(kernels, exports);
  }
  return exports;
}

async function instantiate(kernels: WasmKernels): Promise<RelaxedExports | string> {
  if (!kernels.hasSimd) return "the kernels module was built without SIMD";
  compiled ??= readPackageFile(RELAXED_WASM_PATH).then((bytes) => WebAssembly.compile(bytes));
  let module: WebAssembly.Module;
  try {
    module = await compiled;
  } catch (cause) {
    // A host without the package's files (a bundle given its kernels as bytes) cannot read it; any other failure is
    // the runtime's compiler refusing relaxed SIMD.
    return cause instanceof PackageFileError
      ? cause.message
      : `this runtime cannot compile ${RELAXED_WASM_PATH} (no relaxed SIMD?): ${String(cause)}`;
  }
  const instance = await WebAssembly.instantiate(module, { env: { memory: kernels.memory } });
  const exports = instance.exports as RelaxedExports;
  if (exports.abi_version() !== ABI_VERSION) return `${RELAXED_WASM_PATH} does not speak ABI version ${ABI_VERSION}`;
  return exports;
}

function productOf(exports: RelaxedExports, format: QuantDType, dot: RelaxedDot): RelaxedProduct {
  const suffix = dot === "i16" ? "_i16" : "";
  const [one, two] = [exports[`${format}_matvec${suffix}`], exports[`${format}_matvec2${suffix}`]];
  if (!one || !two) throw new Error(`${RELAXED_WASM_PATH} has no ${format} product on the ${dot} dot`);
  return {
    matvec: (x8, sums, scales, codes, dw, n, groups, bias, out) =>
      void one(x8, sums, scales, codes, dw, n, groups, bias, out),
    matvec2: (a, b, codes, dw, n, groups, bias, outA, outB) =>
      void two(a.x8, a.sums, a.scales, b.x8, b.sums, b.scales, codes, dw, n, groups, bias, outA, outB),
  };
}

/**
 * Runs one fixed problem (8 × 100 weights of `format`, a bias, activations random and extreme) through
 * `ppl_quant_matmul` and through the relaxed product; returns where their bits first differ, or null when all agree.
 * Rows 0 and 1 are all +1 and all −1 (q8 codes ±127) against x groups of all +5 and all −5 (codes ±127): row 0's
 * unsigned operand is 255 throughout, so its pair sums (±64770) are past where a saturating lowering clips (±32767).
 */
function knownAnswerMismatch(kernels: WasmKernels, format: QuantDType, relaxed: RelaxedProduct): string | null {
  const n = 8, k = 100, groups = Math.ceil(k / GROUP);
  const [codeBytes, code] = [QUANT_CODE_BYTES[format], DTYPE_CODES[format]];
  let seed = 12345;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const weights = Float32Array.from(
    { length: n * k },
    (_, i) => (i < k ? 1 : i < 2 * k ? -1 : i % 37 === 0 ? 3 : next()),
  );
  const x = Float32Array.from(
    { length: k },
    (_, i) => (i < GROUP ? 5 : i < 2 * GROUP ? -5 : i % 29 === 0 ? -5 : next() * 0.3),
  );
  const bias = Float32Array.from({ length: n }, (_, i) => (i === 0 ? 0 : next()));
  return kernels.scope((arena) => {
    const w = arena.output(Uint8Array, n * groups * (codeBytes + 4));
    kernels.call("relaxed check", "ppl_quant_quantize", arena.input(weights).ptr, 0, n, k, code, w.ptr);
    const xs = arena.input(x), b = arena.input(bias);
    const expected = arena.output(Float32Array, n), got = arena.output(Float32Array, n);
    kernels.call("relaxed check", "ppl_quant_matmul", xs.ptr, 1, k, k, w.ptr, code, n, b.ptr, expected.ptr, n, 0, 1);
    const x8 = arena.output(Int8Array, groups * GROUP);
    const sums = arena.output(Int32Array, groups), scales = arena.output(Float32Array, groups);
    kernels.call("relaxed check", "ppl_quant_activations_i8", xs.ptr, 1, k, k, x8.ptr, sums.ptr, scales.ptr);
    const dw = w.ptr + n * groups * codeBytes;
    relaxed.matvec(x8.ptr, sums.ptr, scales.ptr, w.ptr, dw, n, groups, b.ptr, got.ptr);
    const [e, g] = [new Uint32Array(arena.read(expected).buffer), new Uint32Array(arena.read(got).buffer)];
    const row = e.findIndex((bits, i) => bits !== g[i]);
    return row < 0 ? null : `row ${row}: ${arena.read(got)[row]} against ${arena.read(expected)[row]}`;
  });
}

/**
 * Runs one fixed f32 problem (x 9 × 103 · W 7 × 103 + bias: both kernels' tiles and tails, and an odd weight row)
 * through `matmul` and, row by row, `matvec`. `miss`: the first output off the float64 sum by more than the f32
 * summation bound k·2⁻²³·Σ|x·w| (plus the bias's rounding), or a row where the two disagree in bits. `fused`: whether
 * any output differs from the kernels module's x·Wᵀ (`ppl_gemm_matmul`), which sums in the same order with mul + add.
 */
function f32Check(kernels: WasmKernels, relaxed: RelaxedF32Product): { miss: string | null; fused: boolean } {
  const [m, n, k] = [9, 7, 103];
  let seed = 777;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const x = Float32Array.from({ length: m * k }, next), w = Float32Array.from({ length: n * k }, next);
  const bias = Float32Array.from({ length: n }, next);
  return kernels.scope((arena) => {
    const [xs, ws, bs] = [arena.input(x), arena.input(w), arena.input(bias)];
    const all = arena.output(Float32Array, m * n), one = arena.output(Float32Array, n);
    const packed = arena.output(Float32Array, Math.floor(m / 4) * 4 * k);
    relaxed.matmul(xs.ptr, m, k, ws.ptr, n, bs.ptr, all.ptr, n, packed.ptr, true);
    const got = arena.read(all);
    kernels.call(
      "relaxed check",
      "ppl_gemm_matmul",
      1,
      m,
      n,
      k,
      xs.ptr,
      0,
      k,
      1,
      ws.ptr,
      0,
      0,
      1,
      k,
      bs.ptr,
      all.ptr,
      0,
      n,
      0,
      1,
    );
    const plain = new Uint32Array(arena.read(all).buffer), bits = new Uint32Array(got.buffer);
    const fused = bits.some((b, i) => b !== plain[i]);
    for (let i = 0; i < m; i++) {
      relaxed.matvec(xs.ptr + i * k * 4, k, ws.ptr, n, bs.ptr, one.ptr);
      const row = arena.read(one);
      for (let j = 0; j < n; j++) {
        let [sum, magnitude] = [0, 0];
        for (let t = 0; t < k; t++) {
          sum += x[i * k + t] * w[j * k + t];
          magnitude += Math.abs(x[i * k + t] * w[j * k + t]);
        }
        const v = got[i * n + j];
        if (Math.abs(v - (sum + bias[j])) > (k + 2) * 2 ** -23 * (magnitude + Math.abs(bias[j]))) {
          return { miss: `y[${i}, ${j}] = ${v} against ${sum + bias[j]}`, fused };
        }
        if (!Object.is(row[j], v)) return { miss: `row ${i}: matvec gives ${row[j]} where matmul gives ${v}`, fused };
      }
    }
    return { miss: null, fused };
  });
}

/**
 * Runs one fixed attention problem (2 query heads over 1 key/value head, 6 new queries after 7 earlier keys, causal,
 * d = 16) through `head` and returns the first output off the float64 result by more than 1e-5 of Σ p·|v| (the
 * kernels module's attention and this one measure about 2e-7), or null.
 */
function attentionMiss(kernels: WasmKernels, attention: RelaxedAttention): string | null {
  const [heads, sq, skv, d] = [2, 6, 13, 16];
  let seed = 4242;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const q = Float32Array.from({ length: heads * sq * d }, next);
  const k = Float32Array.from({ length: skv * d }, next), v = Float32Array.from({ length: skv * d }, next);
  const scale = 1 / Math.sqrt(d), s8 = 16;
  return kernels.scope((arena) => {
    const [qs, ks, vs] = [arena.input(q), arena.input(k), arena.input(v)];
    const out = arena.output(Float32Array, heads * sq * d);
    const kt = arena.output(Float32Array, d * s8), p = arena.output(Float32Array, 4 * s8);
    for (let h = 0; h < heads; h++) {
      const [qh, oh] = [qs.ptr + 4 * h * sq * d, out.ptr + 4 * h * sq * d];
      attention.head(qh, 4 * d, ks.ptr, 4 * d, vs.ptr, 4 * d, oh, 4 * d, sq, skv, d, scale, true, kt.ptr, p.ptr);
    }
    const got = arena.read(out);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < sq; i++) {
        const visible = i + skv - sq + 1;
        const logits = Array.from({ length: visible }, (_, j) => {
          let dot = 0;
          for (let e = 0; e < d; e++) dot += q[(h * sq + i) * d + e] * k[j * d + e];
          return dot * scale;
        });
        const max = Math.max(...logits), weights = logits.map((l) => Math.exp(l - max));
        const total = weights.reduce((a, b) => a + b, 0);
        for (let e = 0; e < d; e++) {
          let [want, magnitude] = [0, 0];
          for (let j = 0; j < visible; j++) {
            want += (weights[j] / total) * v[j * d + e];
            magnitude += (weights[j] / total) * Math.abs(v[j * d + e]);
          }
          const value = got[(h * sq + i) * d + e];
          if (!(Math.abs(value - want) <= 1e-5 * magnitude)) return `head ${h} query ${i}: ${value} against ${want}`;
        }
      }
    }
    return null;
  });
}
