/**
 * Group-wise quantised weights on the WASM kernels (`ppl_quant_*`, kernels-rs/ops/src/quant.rs; the format is in
 * docs/quantization.md): load-time quantisation, upload of ahead-of-time bytes, dequantisation (cast, download,
 * embedding rows) and the quantised linear x · Ŵᵀ + bias.
 */
import { BackendError, QUANT_CODE_BYTES, type QuantDType, type Shape, storageBytes, type Tensor } from "../backend.ts";
import { size } from "../views.ts";
import {
  address,
  callKernel,
  DTYPE_CODES,
  filled,
  memoryView,
  requireDtype,
  type WasmContext,
  type WasmHandle,
  withArrays,
  withDense,
} from "./context.ts";
import type { QuantizedRow, RelaxedProduct } from "./relaxed.ts";

/** How the quantised linear treats activations: quantise them per group to int8 and use integer dot products
 * (ggml's q8_0 · q8_0, i32x4.dot_i16x8), or widen the codes to f32 and multiply. bench/quant.ts compares them;
 * "int8" is the default because it is the faster one there (activation rounding error ≤ absmax/254 per value). */
export type QuantMethod = "int8" | "f32";
const GROUP = 32;
const METHOD_CODES: Record<QuantMethod, number> = { int8: 0, f32: 1 };

/** Below this many x rows `ppl_quant_matmul` takes its decode path (kernels-rs ops/src/quant.rs WIDEN_ROWS). */
const DECODE_ROWS = 4;

/**
 * The relaxed SIMD product of the weights' format, where it replaces the kernels module's (every int8 path gives a row
 * the same bits): the int8 method, the SIMD kernels with a relaxed product for q4 or q8 (./relaxed.ts), and N a
 * multiple of 4 (the module works on whole blocks of four rows of the memory layout; it has no one-row tail).
 */
function relaxedProduct(ctx: WasmContext, dtype: string, method: QuantMethod, n: number): RelaxedProduct | null {
  if (method !== "int8" || n % 4 !== 0 || (dtype !== "q4" && dtype !== "q8")) return null;
  return ctx.relaxed[dtype];
}

/** Weight bytes of one stripe in prefill: every x row passes over a stripe while it stays in the core's L2 cache. */
const PREFILL_STRIPE_BYTES = 256 * 1024;

/** y (m, n) = x (m, k) · Ŵᵀ + bias through wasm/ppllava_relaxed.wasm: x quantised by the kernels module, then relaxed
 * matrix–vector products over the weight blocks in place. Decoding (m < DECODE_ROWS) streams the weights once per x
 * row; prefill cuts them into stripes of rows that stay cached while the x rows pass two at a time, so they are read
 * from memory once. */
function relaxedLinear(
  ctx: WasmContext,
  relaxed: RelaxedProduct,
  codeBytes: number,
  x: number,
  m: number,
  k: number,
  w: number,
  n: number,
  bias: number,
  y: number,
) {
  const groups = Math.ceil(k / GROUP);
  ctx.kernels.scope((arena) => {
    const x8 = arena.output(Int8Array, m * groups * GROUP);
    const sums = arena.output(Int32Array, m * groups), scales = arena.output(Float32Array, m * groups);
    callKernel(ctx, "linear", "ppl_quant_activations_i8", x, m, k, k, x8.ptr, sums.ptr, scales.ptr);
    const dw = w + n * groups * codeBytes;
    const row = (i: number): QuantizedRow => ({
      x8: x8.ptr + i * groups * GROUP,
      sums: sums.ptr + i * groups * 4,
      scales: scales.ptr + i * groups * 4,
    });
    const rowBytes = groups * (codeBytes + 4);
    const stripe = m < DECODE_ROWS ? n : Math.max(4, Math.floor(PREFILL_STRIPE_BYTES / rowBytes / 4) * 4);
    try {
      for (let j = 0; j < n; j += stripe) {
        const rows = Math.min(stripe, n - j); // a multiple of 4, as n is
        const [codes, scalesOf, biasOf] = [
          w + j * groups * codeBytes,
          dw + j * groups * 4,
          bias ? bias + j * 4 : 0,
        ];
        const out = (i: number) => y + (i * n + j) * 4;
        let i = 0;
        // Pairs of x rows share each block's unpacked codes (prefill); a last odd row, and decoding, go alone.
        for (; m >= DECODE_ROWS && i + 2 <= m; i += 2) {
          relaxed.matvec2(row(i), row(i + 1), codes, scalesOf, rows, groups, biasOf, out(i), out(i + 1));
        }
        for (; i < m; i++) {
          const { x8, sums, scales } = row(i);
          relaxed.matvec(x8, sums, scales, codes, scalesOf, rows, groups, biasOf, out(i));
        }
      }
    } catch (cause) {
      // The blocks are this backend's own, sized by their shapes: a trap here is a defect, not bad input.
      throw new BackendError("kernel", `linear: the relaxed SIMD product trapped (${String(cause)})`, { cause });
    }
  });
}

function requireQuantShape(shape: Shape, what: string): [number, number] {
  if (shape.length !== 2 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new BackendError("bad_shape", `${what}: quantised weights are 2-D (N, K) with N, K > 0, got [${shape}]`);
  }
  return [shape[0], shape[1]];
}

export function quantize(ctx: WasmContext, t: Tensor, dtype: QuantDType): Tensor {
  return withDense(ctx, "quantize", [t], ([h]) => {
    requireDtype(h, "quantize", "f32", "f16", "bf16");
    const [n, k] = requireQuantShape(h.shape, "quantize");
    return filled(
      ctx,
      (out) => {
        callKernel(
          ctx,
          "quantize",
          "ppl_quant_quantize",
          address(h),
          DTYPE_CODES[h.dtype],
          n,
          k,
          DTYPE_CODES[dtype],
          address(out),
        );
      },
      [n, k],
      dtype,
    );
  });
}

export function uploadQuantized(ctx: WasmContext, bytes: Uint8Array, shape: Shape, dtype: QuantDType): Tensor {
  requireQuantShape(shape, "uploadQuantized");
  const expected = storageBytes(dtype, shape);
  if (bytes.length !== expected) {
    throw new BackendError(
      "bad_shape",
      `uploadQuantized: ${bytes.length} bytes for ${dtype} [${shape}], which takes ${expected} (docs/quantization.md)`,
    );
  }
  const out = ctx.output(shape, dtype);
  memoryView(ctx.kernels, Uint8Array, out.storage.ptr, expected).set(bytes);
  // Files hold the rows in plain order; the products read blocks of four rows (docs/quantization.md, "Layout").
  callKernel(ctx, "uploadQuantized", "ppl_quant_relayout", address(out), DTYPE_CODES[dtype], shape[0], shape[1], 1);
  return out;
}

/** The tensor's bytes in the plain row order of files (what `uploadQuantized` takes). */
export function downloadQuantized(ctx: WasmContext, t: Tensor): Uint8Array {
  const h = ctx.use(t, "downloadQuantized");
  requireDtype(h, "downloadQuantized", "q8", "q4");
  const length = storageBytes(h.dtype, h.shape);
  return ctx.kernels.scope((arena) => {
    const copy = arena.output(Uint8Array, length);
    arena.view({ ptr: copy.ptr, length, type: Uint8Array }).set(
      arena.view({ ptr: address(h), length, type: Uint8Array }),
    );
    callKernel(
      ctx,
      "downloadQuantized",
      "ppl_quant_relayout",
      copy.ptr,
      DTYPE_CODES[h.dtype],
      h.shape[0],
      h.shape[1],
      0,
    );
    return arena.read(copy);
  });
}

/** Rows `ids` (every row when null) of a quantised (N, K) weight, dequantised to f32. */
export function dequantizeRows(ctx: WasmContext, t: Tensor, ids: Int32Array | null): WasmHandle {
  const h = ctx.use(t, "dequantize");
  requireDtype(h, "dequantize", "q8", "q4");
  const [n, k] = h.shape;
  const count = ids ? ids.length : n;
  return filled(ctx, (out) => {
    if (count === 0) return;
    const run = (pids: number) =>
      callKernel(
        ctx,
        "embedding",
        "ppl_quant_dequantize",
        address(h),
        DTYPE_CODES[h.dtype],
        n,
        k,
        pids,
        count,
        address(out),
      );
    if (ids) withArrays(ctx.kernels, [ids], ([pids]) => run(pids));
    else run(0);
  }, [count, k]);
}

/** x (…, K) or (K) f32 · Ŵᵀ + bias (N) for a quantised weight (N, K) → (…, N). */
export function quantLinear(
  ctx: WasmContext,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  method: QuantMethod,
): Tensor {
  const hw = ctx.use(weight, "linear");
  requireDtype(hw, "linear (weight)", "q8", "q4");
  const [n, k] = hw.shape;
  const hx = ctx.use(x, "linear");
  requireDtype(hx, "linear (x)", "f32");
  if (hx.shape.length === 0 || hx.shape[hx.shape.length - 1] !== k) {
    throw new BackendError("bad_shape", `linear: x [${hx.shape}] · W [${hw.shape}]ᵀ: the last axis of x must be ${k}`);
  }
  const lead = hx.shape.slice(0, -1);
  const m = size(lead);
  return withDense(ctx, "linear", bias ? [x, bias] : [x], ([dx, hb]) => {
    if (hb) {
      requireDtype(hb, "linear (bias)", "f32");
      if (hb.shape.length !== 1 || hb.shape[0] !== n) {
        throw new BackendError("bad_shape", `linear: bias [${hb.shape}] should be [${n}]`);
      }
    }
    return filled(ctx, (out) => {
      if (m === 0) return;
      const relaxed = relaxedProduct(ctx, hw.dtype, method, n);
      if (relaxed) {
        const codeBytes = QUANT_CODE_BYTES[hw.dtype as QuantDType];
        relaxedLinear(ctx, relaxed, codeBytes, address(dx), m, k, address(hw), n, hb ? address(hb) : 0, address(out));
        return;
      }
      callKernel(
        ctx,
        "linear",
        "ppl_quant_matmul",
        address(dx),
        m,
        k,
        k,
        address(hw),
        DTYPE_CODES[hw.dtype],
        n,
        hb ? address(hb) : 0,
        address(out),
        n,
        METHOD_CODES[method],
        ctx.simd,
      );
    }, [...lead, n]);
  });
}
