/** Element-wise activations and the row softmax on the WASM kernels (`ppl_activation_*`). */
import { BackendError, type Tensor } from "../backend.ts";
import { sameShape, size } from "../views.ts";
import { address, callKernel, filled, requireDtype, type WasmContext, withDense } from "./context.ts";

/** Activation codes of `ppl_activation_apply`. */
export const ACTIVATIONS = { gelu: 0, quickGelu: 1, silu: 2, geluTanh: 3 } as const;

export function activate(ctx: WasmContext, act: keyof typeof ACTIVATIONS, x: Tensor): Tensor {
  return withDense(ctx, act, [x], ([h]) => {
    requireDtype(h, act, "f32");
    return filled(ctx, (out) => {
      callKernel(ctx, act, "ppl_activation_apply", ACTIVATIONS[act], address(h), size(h.shape), address(out), ctx.simd);
    }, h.shape);
  });
}

export function siluMul(ctx: WasmContext, gate: Tensor, up: Tensor): Tensor {
  return withDense(ctx, "siluMul", [gate, up], ([g, u]) => {
    requireDtype(g, "siluMul", "f32");
    requireDtype(u, "siluMul", "f32");
    if (!sameShape(g.shape, u.shape)) throw new BackendError("bad_shape", `siluMul: [${g.shape}] vs [${u.shape}]`);
    return filled(ctx, (out) => {
      callKernel(
        ctx,
        "siluMul",
        "ppl_activation_silu_mul",
        address(g),
        address(u),
        size(g.shape),
        address(out),
        ctx.simd,
      );
    }, g.shape);
  });
}

export function softmax(ctx: WasmContext, x: Tensor, scale = 1): Tensor {
  return withDense(ctx, "softmax", [x], ([h]) => {
    requireDtype(h, "softmax", "f32");
    const n = h.shape.at(-1) ?? 0;
    if (h.shape.length === 0 || n === 0) {
      throw new BackendError("bad_shape", `softmax: empty last axis in [${h.shape}]`);
    }
    return filled(ctx, (out) => {
      callKernel(
        ctx,
        "softmax",
        "ppl_activation_softmax",
        address(h),
        size(h.shape) / n,
        n,
        scale,
        address(out),
        ctx.simd,
      );
    }, h.shape);
  });
}
