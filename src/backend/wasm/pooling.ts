/** The prompt-guided pooling kernels on WASM: relevance (step C) and the window pooling (step E). */
import { BackendError, type Tensor, type WindowPoolOptions } from "../backend.ts";
import { address, callKernel, filled, requireDtype, type WasmContext, withDense } from "./context.ts";

/** visual (N, dim), text (dim) → p (N) = softmax(scale·cos). */
export function relevance(ctx: WasmContext, visual: Tensor, text: Tensor, scale: number): Tensor {
  return withDense(ctx, "relevance", [visual, text], ([v, t]) => {
    requireDtype(v, "relevance", "f32");
    requireDtype(t, "relevance", "f32");
    if (v.shape.length !== 2 || t.shape.length !== 1 || v.shape[1] !== t.shape[0]) {
      throw new BackendError(
        "bad_shape",
        `relevance: visual (N, dim) and text (dim), got [${v.shape}] and [${t.shape}]`,
      );
    }
    const [n, dim] = v.shape;
    return filled(ctx, (out) => {
      callKernel(ctx, "relevance", "ppl_relevance_f32", address(v), address(t), n, dim, scale, address(out), ctx.simd);
    }, [n]);
  });
}

/** x (T, H, W, C), p (T, H, W) or null → (Ot, Oh, Ow, C). */
export function windowPool(ctx: WasmContext, x: Tensor, p: Tensor | null, options: WindowPoolOptions): Tensor {
  return withDense(ctx, "windowPool", p ? [x, p] : [x], ([hx, hp]) => {
    requireDtype(hx, "windowPool", "f32");
    if (hp) requireDtype(hp, "windowPool", "f32");
    if (hx.shape.length !== 4 || (hp && (hp.shape.length !== 3 || !hp.shape.every((d, i) => d === hx.shape[i])))) {
      throw new BackendError(
        "bad_shape",
        `windowPool: x (T, H, W, C) and p (T, H, W), got [${hx.shape}] and [${hp?.shape}]`,
      );
    }
    const [t, h, w, c] = hx.shape;
    const { kernel: k, stride: s } = options;
    const dims = [t, h, w];
    if (![...k, ...s].every((v) => Number.isInteger(v) && v > 0) || dims.some((d, a) => d < k[a])) {
      throw new BackendError(
        "bad_shape",
        `windowPool: kernel [${k}] and stride [${s}] need positive integers and an input [${dims}] at least the kernel`,
      );
    }
    const o = dims.map((d, a) => Math.floor((d - k[a]) / s[a]) + 1);
    return filled(ctx, (out) => {
      const pp = hp ? address(hp) : 0;
      callKernel(
        ctx,
        "windowPool",
        "ppl_pooling_weighted",
        address(hx),
        pp,
        t,
        h,
        w,
        c,
        k[0],
        k[1],
        k[2],
        s[0],
        s[1],
        s[2],
        options.tau,
        address(out),
        ctx.simd,
      );
    }, [o[0], o[1], o[2], c]);
  });
}
