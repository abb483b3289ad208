/** Matmul on the WASM kernels (`ppl_gemm_matmul`, kernels-rs/ops/src/gemm.rs): strided, batched, f16/bf16 B. */
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
