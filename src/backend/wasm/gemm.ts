/** Matmul on the WASM kernels (`ppl_gemm_matmul`, kernels-rs/ops/src/gemm.rs): strided, batched, f16/bf16 B; and
 * the f32 linear on the relaxed SIMD module where it is used. */
import { BackendError, type Tensor } from "../backend.ts";
import { reshapeStrides, size } from "../views.ts";
import { address, callKernel, DTYPE_CODES, filled, requireDtype, type WasmContext, withDense } from "./context.ts";

/** a (…, M, K) f32 · b (K, N) or (…, K, N) + bias (N) → (…, M, N) dense f32. */
export function matmul(ctx: WasmContext, a: Tensor, b: Tensor, bias?: Tensor): Tensor {
  const ha = ctx.use(a, "matmul");
  const hb = ctx.use(b, "matmul");
  requireDtype(ha, "matmul (a)", "f32");
  if (ha.shape.length < 2 || hb.shape.length < 2) {
    throw new BackendError("bad_shape", `matmul: operands need rank ≥ 2, got [${ha.shape}] and [${hb.shape}]`);
  }
  const [m, k] = ha.shape.slice(-2);
  const [kb, n] = hb.shape.slice(-2);
  const batchShape = ha.shape.slice(0, -2);
  const batch = size(batchShape);
  const bBatch = hb.shape.slice(0, -2);
  const shared = bBatch.length === 0;
  if (kb !== k || (!shared && (bBatch.length !== batchShape.length || !bBatch.every((d, i) => d === batchShape[i])))) {
    throw new BackendError("bad_shape", `matmul: [${ha.shape}] · [${hb.shape}] do not chain (K or batch differ)`);
  }
  // A weight shared by the batch (linear's case) with batch rows that lie as one strided run of rows: one GEMM of
  // batch·m rows instead of `batch` small ones, each of which would re-pack the whole weight (the BT-Adapter's
  // temporal layers are 576 batches of T rows: 40× slower unfolded).
  const fold = shared && batch > 1 && reshapeStrides(ha, [batch * m, k]) !== null;
  const [runs, rows] = fold ? [1, batch * m] : [batch, m];
  return filled(ctx, (out) => {
    const biasList = bias ? [bias] : [];
    withDense(ctx, "matmul (bias)", biasList, ([hbias]) => {
      if (hbias) {
        requireDtype(hbias, "matmul (bias)", "f32");
        if (hbias.shape.length !== 1 || hbias.shape[0] !== n) {
          throw new BackendError("bad_shape", `matmul: bias [${hbias.shape}] should be [${n}]`);
        }
      }
      // One batch stride per operand: view the batch axes as one, or copy when the layout cannot.
      withBatched(
        ctx,
        ha,
        [runs, rows, k],
        (av, aStrides) =>
          withBatched(ctx, hb, shared ? [1, k, n] : [batch, k, n], (bv, bStrides) => {
            callKernel(
              ctx,
              "matmul",
              "ppl_gemm_matmul",
              runs,
              rows,
              n,
              k,
              address(av),
              aStrides[0],
              aStrides[1],
              aStrides[2],
              address(bv),
              DTYPE_CODES[bv.dtype],
              shared ? 0 : bStrides[0],
              bStrides[1],
              bStrides[2],
              hbias ? address(hbias) : 0,
              address(out),
              rows * n,
              n,
              0,
              ctx.simd,
            );
          }),
      );
    });
  }, [...batchShape, m, n]);
}

function withBatched<T>(
  ctx: WasmContext,
  h: ReturnType<WasmContext["use"]>,
  shape: number[],
  body: (view: ReturnType<WasmContext["use"]>, strides: number[]) => T,
): T {
  const strides = reshapeStrides(h, shape);
  if (strides) return body(h, strides);
  return withDense(ctx, "matmul", [ctx.contiguous(h)], ([dense]) => {
    try {
      return body(dense, reshapeStrides(dense, shape)!);
    } finally {
      dense.dispose();
    }
  });
}

/** f16/bf16 weights: below this many x rows the kernels module's product (it reads the 2-byte weights as they are,
 * and decoding is bound by memory); from it on, blocks of weight rows are widened to f32 for the relaxed product. */
const WIDEN_ROWS = 5;
/** f32 values per widened block of weight rows (1 MiB: it stays in L2 while every x row passes). */
const WIDEN_BLOCK_VALUES = 1 << 18;
/** f32 values of packed x at the most (16 MiB): x goes in chunks of rows, so that the scratch stays bounded (32 frames
 * of the vision tower are 18464 rows, 302 MB at K = 4096) while the per-chunk costs (packing; widening f16 weights
 * again, 1–2% at this size) stay small. Each row's sums are the same in any chunk. */
const PACKED_VALUES = 1 << 22;

/**
 * x (…, K) f32 · Wᵀ + bias for a weight (N, K) on relaxed SIMD's multiply-add (./relaxed.ts,
 * kernels-rs/relaxed/f32.wat), or null where that product is not used (the caller then runs the kernels module's
 * matmul). f32 weights are read in place; f16 and bf16 weights, with at least WIDEN_ROWS rows of x, are widened to f32
 * a block of rows at a time, x packed once per chunk of rows for all blocks: see docs/quantization.md, "f32 weights on
 * relaxed SIMD's multiply-add".
 */
export function relaxedLinear(ctx: WasmContext, x: Tensor, weight: Tensor, bias?: Tensor): Tensor | null {
  const relaxed = ctx.relaxed.f32;
  const hw = ctx.use(weight, "linear"), hx = ctx.use(x, "linear");
  if (!relaxed || hx.dtype !== "f32" || hw.shape.length !== 2) return null;
  const [n, k] = hw.shape;
  const lead = hx.shape.slice(0, -1);
  const m = size(lead);
  const wide = hw.dtype === "f32";
  if (!wide && !((hw.dtype === "f16" || hw.dtype === "bf16") && m >= WIDEN_ROWS)) return null;
  if (hx.shape.length === 0 || hx.shape[hx.shape.length - 1] !== k) {
    throw new BackendError("bad_shape", `linear: x [${hx.shape}] · W [${hw.shape}]ᵀ: the last axis of x must be ${k}`);
  }
  return withDense(ctx, "linear", bias ? [x, weight, bias] : [x, weight], ([dx, dw, hb]) => {
    if (hb) {
      requireDtype(hb, "linear (bias)", "f32");
      if (hb.shape.length !== 1 || hb.shape[0] !== n) {
        throw new BackendError("bad_shape", `linear: bias [${hb.shape}] should be [${n}]`);
      }
    }
    return filled(ctx, (out) => {
      if (m === 0 || n === 0) return;
      ctx.kernels.scope((arena) => {
        const chunk = Math.min(m, Math.max(4, Math.floor(PACKED_VALUES / Math.max(k, 1) / 4) * 4));
        const packed = arena.output(Float32Array, Math.floor(chunk / 4) * 4 * k);
        const biasp = hb ? address(hb) : 0;
        const rows = Math.min(n, Math.max(32, Math.floor(WIDEN_BLOCK_VALUES / Math.max(k, 1) / 32) * 32));
        const block = wide ? null : arena.output(Float32Array, rows * k);
        try {
          for (let i = 0; i < m; i += chunk) {
            const [mi, xp, outp] = [Math.min(chunk, m - i), address(dx) + 4 * i * k, address(out) + 4 * i * n];
            if (!block) {
              relaxed.matmul(xp, mi, k, address(dw), n, biasp, outp, n, packed.ptr, true);
              continue;
            }
            for (let j = 0; j < n; j += rows) {
              const count = Math.min(rows, n - j);
              relaxed.widen(dw.dtype as "f16" | "bf16", address(dw) + 2 * j * k, count * k, block.ptr);
              relaxed.matmul(xp, mi, k, block.ptr, count, biasp && biasp + 4 * j, outp + 4 * j, n, packed.ptr, j === 0);
            }
          }
        } catch (cause) {
          // Shapes and buffers are this backend's own: a trap here is a defect, not bad input.
          throw new BackendError("kernel", `linear: the relaxed SIMD f32 product trapped (${String(cause)})`, {
            cause,
          });
        }
      });
    }, [...lead, n]);
  });
}
