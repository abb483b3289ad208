/** Data movement on the WASM kernels (`ppl_layout_*`): strided copies, embedding, broadcast add/mul, patch embed. */
import { BackendError, type Tensor } from "../backend.ts";
import { sameShape, size, trailingBroadcast } from "../views.ts";
import {
  address,
  callKernel,
  DTYPE_CODES,
  filled,
  requireDtype,
  type WasmContext,
  type WasmHandle,
  withArrays,
  withDense,
} from "./context.ts";

/** Writes the view src into the view dst: same shape; dst f32 (widening) or dst.dtype = src.dtype. */
export function copyInto(ctx: WasmContext, dst: Tensor, src: Tensor): void {
  const [d, s] = [ctx.use(dst, "copyInto"), ctx.use(src, "copyInto")];
  if (!sameShape(d.shape, s.shape)) throw new BackendError("bad_shape", `copyInto: [${s.shape}] into [${d.shape}]`);
  if (d.dtype !== "f32" && d.dtype !== s.dtype) {
    throw new BackendError("bad_dtype", `copyInto: ${s.dtype} into ${d.dtype} (only into f32 or the same dtype)`);
  }
  if (size(d.shape) === 0) return;
  // Rank 0 is a single element: copy it as shape [1].
  const shape = d.shape.length === 0 ? [1] : d.shape;
  const [ss, ds] = d.shape.length === 0 ? [[0], [0]] : [s.strides, d.strides];
  withArrays(ctx.kernels, [Uint32Array.from(shape), Uint32Array.from(ss), Uint32Array.from(ds)], ([ps, pss, pds]) => {
    callKernel(
      ctx,
      "copyInto",
      "ppl_layout_copy",
      shape.length,
      ps,
      address(s),
      DTYPE_CODES[s.dtype],
      pss,
      address(d),
      DTYPE_CODES[d.dtype],
      pds,
    );
  });
}

export function copyAs(ctx: WasmContext, t: Tensor, dtype: "f32" | null): WasmHandle {
  const h = ctx.use(t, "copy");
  return filled(
    ctx,
    (out) => {
      copyInto(ctx, out, h);
    },
    h.shape,
    dtype ?? h.dtype,
  );
}

export function embedding(ctx: WasmContext, table: Tensor, ids: Int32Array): Tensor {
  return withDense(ctx, "embedding", [table], ([h]) => {
    if (h.shape.length !== 2) throw new BackendError("bad_shape", `embedding: table is (V, D), got [${h.shape}]`);
    const [rows, dim] = h.shape;
    const out = ctx.output([ids.length, dim]);
    try {
      if (ids.length > 0) {
        withArrays(ctx.kernels, [ids], ([pids]) => {
          callKernel(
            ctx,
            "embedding",
            "ppl_layout_embedding",
            address(h),
            DTYPE_CODES[h.dtype],
            rows,
            dim,
            pids,
            ids.length,
            address(out),
          );
        });
      }
      return out;
    } catch (error) {
      out.dispose();
      if (error instanceof BackendError && error.code === "bad_argument") {
        throw new BackendError("bad_argument", `embedding: an id is outside [0, ${rows})`, { cause: error });
      }
      throw error;
    }
  });
}

/** a ∘ b, b of a's shape or a trailing part of it. */
export function binary(ctx: WasmContext, what: "add" | "mul", a: Tensor, b: Tensor): Tensor {
  return withDense(ctx, what, [a, b], ([ha, hb]) => {
    requireDtype(ha, what, "f32");
    requireDtype(hb, what, "f32");
    trailingBroadcast(ha.shape, hb.shape, what);
    const dim = ha.shape.at(-1)!;
    return filled(ctx, (out) => {
      if (size(ha.shape) > 0) {
        const rows = size(ha.shape) / dim;
        const op = what === "add" ? 0 : 1;
        callKernel(
          ctx,
          what,
          "ppl_layout_binary",
          address(ha),
          rows,
          dim,
          address(hb),
          size(hb.shape) / dim,
          op,
          address(out),
          ctx.simd,
        );
      }
    }, ha.shape);
  });
}

/** pixels (N, C, H, W) f32, weight (Dout, C, P, P) → (N, (H/P)·(W/P), Dout). */
export function patchEmbed(ctx: WasmContext, pixels: Tensor, weight: Tensor): Tensor {
  return withDense(ctx, "patchEmbed", [pixels, weight], ([hp, hw]) => {
    requireDtype(hp, "patchEmbed", "f32");
    const [n, c, height, width] = hp.shape;
    const [dout, wc, p, p2] = hw.shape;
    if (hp.shape.length !== 4 || hw.shape.length !== 4 || wc !== c || p !== p2 || p === 0 || height < p || width < p) {
      throw new BackendError(
        "bad_shape",
        `patchEmbed: pixels (N, C, H, W) and weight (Dout, C, P, P) with H, W ≥ P, got [${hp.shape}] and [${hw.shape}]`,
      );
    }
    const patches = Math.floor(height / p) * Math.floor(width / p);
    return filled(ctx, (out) => {
      callKernel(
        ctx,
        "patchEmbed",
        "ppl_layout_patch_embed",
        address(hp),
        n,
        c,
        height,
        width,
        p,
        address(hw),
        DTYPE_CODES[hw.dtype],
        dout,
        address(out),
        ctx.simd,
      );
    }, [n, patches, dout]);
  });
}

export function scale(ctx: WasmContext, x: Tensor, factor: number): Tensor {
  return withDense(ctx, "scale", [x], ([h]) => {
    requireDtype(h, "scale", "f32");
    return filled(ctx, (out) => {
      if (size(h.shape) > 0) {
        callKernel(ctx, "scale", "ppl_layout_scale", address(h), size(h.shape), factor, address(out));
      }
    }, h.shape);
  });
}

export function mean(ctx: WasmContext, x: Tensor, axis: number): Tensor {
  return withDense(ctx, "mean", [x], ([h]) => {
    requireDtype(h, "mean", "f32");
    const rank = h.shape.length;
    if (!Number.isInteger(axis) || axis < 0 || axis >= rank || h.shape[axis] === 0) {
      throw new BackendError("bad_shape", `mean: axis ${axis} of [${h.shape}] (must exist and be non-empty)`);
    }
    const outer = size(h.shape.slice(0, axis));
    const inner = size(h.shape.slice(axis + 1));
    return filled(ctx, (out) => {
      if (outer * inner > 0) {
        callKernel(ctx, "mean", "ppl_layout_mean", address(h), outer, h.shape[axis], inner, address(out));
      }
    }, h.shape.filter((_, i) => i !== axis));
  });
}
