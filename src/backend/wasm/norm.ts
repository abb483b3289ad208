/** LayerNorm and RMSNorm on the WASM kernels (`ppl_norm_*`, kernels-rs/ops/src/norm.rs). */
import { BackendError, type Tensor } from "../backend.ts";
import { address, callKernel, filled, requireDtype, type WasmContext, withDense } from "./context.ts";

export function layerNorm(ctx: WasmContext, x: Tensor, gain: Tensor, bias: Tensor, eps: number): Tensor {
  return norm(ctx, "layerNorm", x, gain, bias, eps);
}

export function rmsNorm(ctx: WasmContext, x: Tensor, gain: Tensor, eps: number): Tensor {
  return norm(ctx, "rmsNorm", x, gain, null, eps);
}

function norm(ctx: WasmContext, what: string, x: Tensor, gain: Tensor, bias: Tensor | null, eps: number): Tensor {
  const inputs = bias ? [x, gain, bias] : [x, gain];
  return withDense(ctx, what, inputs, ([hx, hg, hb]) => {
    for (const h of [hx, hg, hb]) if (h) requireDtype(h, what, "f32");
    const dim = hx.shape.at(-1) ?? 0;
    const params = hb ? [hg, hb] : [hg];
    if (hx.shape.length === 0 || params.some((p) => p.shape.length !== 1 || p.shape[0] !== dim)) {
      throw new BackendError("bad_shape", `${what}: x [${hx.shape}] needs gain${hb ? "/bias" : ""} of shape [${dim}]`);
    }
    const rows = dim === 0 ? 0 : hx.shape.reduce((a, b) => a * b, 1) / dim;
    return filled(ctx, (out) => {
      if (rows > 0) {
        if (hb) {
          callKernel(
            ctx,
            what,
            "ppl_norm_layer",
            address(hx),
            rows,
            dim,
            address(hg),
            address(hb),
            eps,
            address(out),
            ctx.simd,
          );
        } else {
          callKernel(ctx, what, "ppl_norm_rms", address(hx), rows, dim, address(hg), eps, address(out), ctx.simd);
        }
      }
    }, hx.shape);
  });
}
