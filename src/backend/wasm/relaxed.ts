/**
 * The q4 and q8 products with relaxed SIMD: `wasm/ppllava_relaxed.wasm` (built from kernels-rs/relaxed/products.wat
 * by scripts/build-wasm), instantiated once per kernels instance over that instance's own memory, so it reads the
 * weights (in their block layout) and activations where they already are. One x row (decoding) or two (prefill) at
 * a time; it computes the same bits as kernels-rs's int8 products (the WAT file says why). Against the kernels
 * module's products on the block layout, Deno: q4 decode 1.3–1.7×, prefill 1.55–1.65×; Bun 1.2–1.3× and 1.15–1.22×
 * (bench/relaxed_simd.ts, docs/big-models.md); q8 in docs/quantization.md, "Products".
 *
 * Whether an instance uses them is decided once, when first asked, for each format: the runtime must compile the
 * module (Deno and Bun do; Node 20 does not without a flag) and the relaxed product of a fixed problem must equal
 * `ppl_quant_matmul`'s bit for bit (Node 20 with `--experimental-wasm-relaxed-simd` computes another sum, which this
 * check catches). q4 feeds the dot only 7-bit codes, which every lowering multiplies exactly; q8 feeds it 8-bit
 * unsigned ones, exact only where the runtime lowers the dot to an unsaturated u8 × i8 product (V8 with AVX-VNNI), so
 * its problem holds the extreme codes that a saturating lowering (Bun's pmaddubsw) or a signed one gets wrong.
 * Otherwise the kernels module's own product is used, and `relaxedSimdSupport` says why.
 */
import { PackageFileError, readPackageFile } from "../../util/files.ts";
import { QUANT_CODE_BYTES, type QuantDType } from "../backend.ts";
import { DTYPE_CODES } from "./context.ts";
import type { WasmKernels } from "./loader.ts";

export const RELAXED_WASM_PATH = "wasm/ppllava_relaxed.wasm";
const ABI_VERSION = 3;
const GROUP = 32;
export type RelaxedFormat = QuantDType;

/** One x row as `ppl_quant_activations_i8` leaves it: int8 codes, each group's Σ and scale (addresses). */
export interface QuantizedRow {
  x8: number;
  sums: number;
  scales: number;
}

/** One format's relaxed products (addresses in the kernels module's memory; see products.wat). */
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

/** The relaxed products an instance uses: null for a format whose product the runtime does not compute right. */
export interface RelaxedProducts {
  readonly q4: RelaxedProduct | null;
  readonly q8: RelaxedProduct | null;
}

/** Which relaxed products an instance uses, and why not where it does not. */
export interface RelaxedSupport extends RelaxedProducts {
  readonly reason: string;
}

let compiled: Promise<WebAssembly.Module> | null = null;
const perInstance = new WeakMap<WasmKernels, Promise<RelaxedSupport>>();

/** The relaxed products for `kernels`, each null where not used, with the reason (decided once per instance). */
export function relaxedSimdSupport(kernels: WasmKernels): Promise<RelaxedSupport> {
  let support = perInstance.get(kernels);
  if (!support) {
    support = load(kernels).catch((cause) => ({
      q4: null,
      q8: null,
      reason: String(cause instanceof Error ? cause.message : cause),
    }));
    perInstance.set(kernels, support);
  }
  return support;
}

async function load(kernels: WasmKernels): Promise<RelaxedSupport> {
  const none = (reason: string): RelaxedSupport => ({ q4: null, q8: null, reason });
  if (!kernels.hasSimd) return none("the kernels module was built without SIMD");
  compiled ??= readPackageFile(RELAXED_WASM_PATH).then((bytes) => WebAssembly.compile(bytes));
  let module: WebAssembly.Module;
  try {
    module = await compiled;
  } catch (cause) {
    // A host without the package's files (a bundle given its kernels as bytes) cannot read it; any other failure is
    // the runtime's compiler refusing relaxed SIMD.
    return none(
      cause instanceof PackageFileError
        ? cause.message
        : `this runtime cannot compile ${RELAXED_WASM_PATH} (no relaxed SIMD?): ${String(cause)}`,
    );
  }
  const instance = await WebAssembly.instantiate(module, { env: { memory: kernels.memory } });
  const exports = instance.exports as Record<string, (...args: number[]) => number | void>;
  if (exports.abi_version() !== ABI_VERSION) {
    return none(`${RELAXED_WASM_PATH} does not speak ABI version ${ABI_VERSION}`);
  }
  const product = (format: RelaxedFormat): RelaxedProduct => {
    const [one, two] = [exports[`${format}_matvec`], exports[`${format}_matvec2`]];
    return {
      matvec: (x8, sums, scales, codes, dw, n, groups, bias, out) =>
        void one(x8, sums, scales, codes, dw, n, groups, bias, out),
      matvec2: (a, b, codes, dw, n, groups, bias, outA, outB) =>
        void two(a.x8, a.sums, a.scales, b.x8, b.sums, b.scales, codes, dw, n, groups, bias, outA, outB),
    };
  };
  const checked = (format: RelaxedFormat) => {
    const candidate = product(format);
    const mismatch = knownAnswerMismatch(kernels, format, candidate);
    return { product: mismatch ? null : candidate, why: mismatch };
  };
  const q4 = checked("q4"), q8 = checked("q8");
  const used = [q4.product && "q4", q8.product && "q8"].filter(Boolean).join(" and ");
  const declined = [["q4", q4.why], ["q8", q8.why]].filter(([, why]) => why)
    .map(([format, why]) => `${format} declined, the relaxed product disagrees with the kernels module's: ${why}`);
  return {
    q4: q4.product,
    q8: q8.product,
    reason: [used ? `relaxed SIMD ${used} products in use` : "", ...declined].filter(Boolean).join("; "),
  };
}

/**
 * Runs one fixed problem (8 × 100 weights of `format`, a bias, activations random and extreme) through
 * `ppl_quant_matmul` and through the relaxed product; returns where their bits first differ, or null when all agree.
 * Rows 0 and 1 are all +1 and all −1 (q8 codes ±127) against x groups of all +5 and all −5 (codes ±127): row 0's
 * unsigned operand is 255 throughout, so its pair sums (±64770) are past where a saturating lowering clips (±32767).
 */
function knownAnswerMismatch(kernels: WasmKernels, format: RelaxedFormat, relaxed: RelaxedProduct): string | null {
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
