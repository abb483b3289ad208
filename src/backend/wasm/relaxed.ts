/**
 * The q4 products with relaxed SIMD: `wasm/ppllava_relaxed.wasm` (built from kernels-rs/relaxed/q4_decode.wat by
 * scripts/build-wasm), instantiated once per kernels instance over that instance's own memory, so it reads the
 * weights (in their block layout) and activations where they already are. One x row (decoding) or two (prefill) at
 * a time; it computes the same bits as kernels-rs's int8 products (the WAT file says why). Against the kernels
 * module's products on the block layout, Deno: decode 1.3–1.7×, prefill 1.55–1.65×; Bun 1.2–1.3× and 1.15–1.22×
 * (bench/relaxed_simd.ts, docs/big-models.md).
 *
 * Whether an instance uses it is decided once, when it is first asked for: the runtime must compile the module
 * (Deno and Bun do; Node 20 does not without a flag) and the relaxed product of a fixed problem must equal
 * `ppl_quant_matmul`'s bit for bit (Node 20 with `--experimental-wasm-relaxed-simd` computes another sum, which this
 * check catches). Otherwise the kernels module's own product is used, and `relaxedSimdSupport` says why.
 */
import { PackageFileError, readPackageFile } from "../../util/files.ts";
import type { WasmKernels } from "./loader.ts";

export const RELAXED_WASM_PATH = "wasm/ppllava_relaxed.wasm";
const ABI_VERSION = 2;
const GROUP = 32;
const Q4_BYTES_PER_GROUP = 16;
const FORMAT_Q4 = 4;

/** One x row as `ppl_quant_activations_i8` leaves it: int8 codes, each group's Σ and scale (addresses). */
export interface QuantizedRow {
  x8: number;
  sums: number;
  scales: number;
}

/** The relaxed module's products (addresses in the kernels module's memory; see q4_decode.wat). */
export interface RelaxedQ4 {
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

/** Whether an instance uses the relaxed product, and why not when it does not. */
export interface RelaxedSupport {
  readonly kernel: RelaxedQ4 | null;
  readonly reason: string;
}

let compiled: Promise<WebAssembly.Module> | null = null;
const perInstance = new WeakMap<WasmKernels, Promise<RelaxedSupport>>();

/** The relaxed q4 product for `kernels`, or null with the reason (decided once per instance). */
export function relaxedSimdSupport(kernels: WasmKernels): Promise<RelaxedSupport> {
  let support = perInstance.get(kernels);
  if (!support) {
    support = load(kernels).catch((cause) => ({
      kernel: null,
      reason: String(cause instanceof Error ? cause.message : cause),
    }));
    perInstance.set(kernels, support);
  }
  return support;
}

async function load(kernels: WasmKernels): Promise<RelaxedSupport> {
  if (!kernels.hasSimd) return { kernel: null, reason: "the kernels module was built without SIMD" };
  compiled ??= readPackageFile(RELAXED_WASM_PATH).then((bytes) => WebAssembly.compile(bytes));
  let module: WebAssembly.Module;
  try {
    module = await compiled;
  } catch (cause) {
    // A host without the package's files (a bundle given its kernels as bytes) cannot read it; any other failure is
    // the runtime's compiler refusing relaxed SIMD.
    const reason = cause instanceof PackageFileError
      ? cause.message
      : `this runtime cannot compile ${RELAXED_WASM_PATH} (no relaxed SIMD?): ${String(cause)}`;
    return { kernel: null, reason };
  }
  const instance = await WebAssembly.instantiate(module, { env: { memory: kernels.memory } });
  const exports = instance.exports as {
    abi_version(): number;
    q4_matvec: (...args: number[]) => void;
    q4_matvec2: (...args: number[]) => void;
  };
  if (exports.abi_version() !== ABI_VERSION) {
    return { kernel: null, reason: `${RELAXED_WASM_PATH} does not speak ABI version ${ABI_VERSION}` };
  }
  const kernel: RelaxedQ4 = {
    matvec: (x8, sums, scales, codes, dw, n, groups, bias, out) =>
      exports.q4_matvec(x8, sums, scales, codes, dw, n, groups, bias, out),
    matvec2: (a, b, codes, dw, n, groups, bias, outA, outB) =>
      exports.q4_matvec2(a.x8, a.sums, a.scales, b.x8, b.sums, b.scales, codes, dw, n, groups, bias, outA, outB),
  };
  const mismatch = knownAnswerMismatch(kernels, kernel);
  if (mismatch) return { kernel: null, reason: `the relaxed product disagrees with the kernels module's: ${mismatch}` };
  return { kernel, reason: "relaxed SIMD q4 decode product in use" };
}

/**
 * Runs one fixed problem (8 × 100 q4 weights, extreme and odd activations, a bias) through `ppl_quant_matmul` and
 * through the relaxed product; returns where their bits first differ, or null when all agree.
 */
function knownAnswerMismatch(kernels: WasmKernels, relaxed: RelaxedQ4): string | null {
  const n = 8, k = 100, groups = Math.ceil(k / GROUP);
  let seed = 12345;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const weights = Float32Array.from({ length: n * k }, (_, i) => (i % 37 === 0 ? 3 : next()));
  const x = Float32Array.from({ length: k }, (_, i) => (i % 29 === 0 ? -5 : next() * 0.3));
  const bias = Float32Array.from({ length: n }, (_, i) => (i === 0 ? 0 : next()));
  return kernels.scope((arena) => {
    const w = arena.output(Uint8Array, n * groups * (Q4_BYTES_PER_GROUP + 4));
    kernels.call("relaxed check", "ppl_quant_quantize", arena.input(weights).ptr, 0, n, k, FORMAT_Q4, w.ptr);
    const xs = arena.input(x), b = arena.input(bias);
    const expected = arena.output(Float32Array, n), got = arena.output(Float32Array, n);
    kernels.call(
      "relaxed check",
      "ppl_quant_matmul",
      xs.ptr,
      1,
      k,
      k,
      w.ptr,
      FORMAT_Q4,
      n,
      b.ptr,
      expected.ptr,
      n,
      0,
      1,
    );
    const x8 = arena.output(Int8Array, groups * GROUP);
    const sums = arena.output(Int32Array, groups), scales = arena.output(Float32Array, groups);
    kernels.call("relaxed check", "ppl_quant_activations_i8", xs.ptr, 1, k, k, x8.ptr, sums.ptr, scales.ptr);
    const dw = w.ptr + n * groups * Q4_BYTES_PER_GROUP;
    relaxed.matvec(x8.ptr, sums.ptr, scales.ptr, w.ptr, dw, n, groups, b.ptr, got.ptr);
    const [e, g] = [new Uint32Array(arena.read(expected).buffer), new Uint32Array(arena.read(got).buffer)];
    const row = e.findIndex((bits, i) => bits !== g[i]);
    return row < 0 ? null : `row ${row}: ${arena.read(got)[row]} against ${arena.read(expected)[row]}`;
  });
}
