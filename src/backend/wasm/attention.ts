/** Attention and RoPE on the WASM kernels (`ppl_attention_*`, kernels-rs/ops/src/{attention,rope}.rs). */
import { type AttentionOptions, BackendError, type RopeOptions, type Tensor } from "../backend.ts";
import { address, callKernel, filled, requireDtype, type WasmContext, type WasmHandle, withDense } from "./context.ts";
import type { RelaxedAttention } from "./relaxed.ts";

/** q (B, Hq, Sq, D), k/v (B, Hkv, Skv, D) → (B, Hq, Sq, D) viewed over a dense (B, Sq, Hq, D) buffer. */
export function attention(ctx: WasmContext, q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): Tensor {
  const [hq, hk, hv] = [ctx.use(q, "attention"), ctx.use(k, "attention"), ctx.use(v, "attention")];
  for (const h of [hq, hk, hv]) {
    requireDtype(h, "attention", "f32");
    if (h.shape.length !== 4) {
      throw new BackendError("bad_shape", `attention: operands are (B, H, S, D), got [${h.shape}]`);
    }
  }
  const [batch, heads, sq, d] = hq.shape;
  const [kb, kvHeads, skv, kd] = hk.shape;
  const sameKv = hv.shape.every((x, i) => x === hk.shape[i]);
  if (kb !== batch || kd !== d || !sameKv || kvHeads === 0 || heads % kvHeads !== 0) {
    throw new BackendError(
      "bad_shape",
      `attention: q [${hq.shape}], k [${hk.shape}], v [${hv.shape}]: need equal B and D, k = v, Hq a multiple of Hkv`,
    );
  }
  if (options.causal && sq > skv) {
    throw new BackendError("bad_shape", `attention: causal with ${sq} queries but only ${skv} keys`);
  }
  const scale = options.scale ?? 1 / Math.sqrt(d);
  // Views whose last axis is not dense are copied; any other strides are read in place.
  const needsCopy = [hq, hk, hv].filter((h) => h.strides[3] !== 1 && h.shape[3] > 1);
  const buffer = ctx.output([batch, sq, heads, d]);
  try {
    withDense(ctx, "attention", needsCopy, (dense) => {
      const pick = (h: WasmHandle) => (needsCopy.includes(h) ? dense[needsCopy.indexOf(h)] : h);
      const [cq, ck, cv] = [pick(hq), pick(hk), pick(hv)];
      const relaxed = ctx.relaxed.attention;
      if (relaxed && d % 8 === 0 && sq > 0 && skv > 0) {
        relaxedAttention(ctx, relaxed, [cq, ck, cv], buffer, { batch, heads, kvHeads, sq, skv, d, scale }, options);
        return;
      }
      callKernel(
        ctx,
        "attention",
        "ppl_attention_sdpa",
        batch,
        heads,
        kvHeads,
        sq,
        skv,
        d,
        address(cq),
        cq.strides[0],
        cq.strides[1],
        cq.strides[2],
        address(ck),
        ck.strides[0],
        ck.strides[1],
        ck.strides[2],
        address(cv),
        cv.strides[0],
        cv.strides[1],
        cv.strides[2],
        address(buffer),
        sq * heads * d,
        d,
        heads * d,
        scale,
        options.causal ? 1 : 0,
        ctx.simd,
      );
    });
    return ctx.permute(buffer, [0, 2, 1, 3]);
  } finally {
    buffer.dispose();
  }
}

/**
 * The same attention head by head on relaxed SIMD's multiply-add (kernels-rs/relaxed/attention.wat
 * `f32_attention_head`: Kᵀ packed once per head, splat-style register tiles for the scores and for P·V, so no
 * horizontal sums), where relaxed attention is in use (./relaxed.ts) and d is a multiple of 8; `buffer` is (B, Sq, Hq, D)
 * dense. Query head h reads key/value head h / (Hq / Hkv) (GQA), as `ppl_attention_sdpa` does.
 */
function relaxedAttention(
  ctx: WasmContext,
  relaxed: RelaxedAttention,
  [q, k, v]: WasmHandle[],
  buffer: WasmHandle,
  shape: { batch: number; heads: number; kvHeads: number; sq: number; skv: number; d: number; scale: number },
  options: AttentionOptions,
): void {
  const { batch, heads, kvHeads, sq, skv, d, scale } = shape;
  const s8 = Math.ceil(skv / 8) * 8, group = heads / kvHeads;
  ctx.kernels.scope((arena) => {
    const kt = arena.output(Float32Array, d * s8), p = arena.output(Float32Array, 4 * s8);
    const at = (h: WasmHandle, b: number, head: number) => address(h) + 4 * (b * h.strides[0] + head * h.strides[1]);
    try {
      for (let b = 0; b < batch; b++) {
        for (let h = 0; h < heads; h++) {
          const g = Math.floor(h / group);
          relaxed.head(
            at(q, b, h),
            4 * q.strides[2],
            at(k, b, g),
            4 * k.strides[2],
            at(v, b, g),
            4 * v.strides[2],
            address(buffer) + 4 * ((b * sq * heads + h) * d),
            4 * heads * d,
            sq,
            skv,
            d,
            scale,
            options.causal,
            kt.ptr,
            p.ptr,
          );
        }
      }
    } catch (cause) {
      // Shapes and buffers are this backend's own: a trap here is a defect, not bad input.
      throw new BackendError("kernel", `attention: the relaxed SIMD product trapped (${String(cause)})`, { cause });
    }
  });
}

/** x (S, H, D) or (B, S, H, D) → rotated, dense, same shape. */
export function rope(ctx: WasmContext, x: Tensor, options: RopeOptions): Tensor {
  const h = ctx.use(x, "rope");
  requireDtype(h, "rope", "f32");
  const rank = h.shape.length;
  if (rank !== 3 && rank !== 4) {
    throw new BackendError("bad_shape", `rope: x is (S, H, D) or (B, S, H, D), got [${h.shape}]`);
  }
  const offset = options.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0) throw new BackendError("bad_argument", `rope: offset ${offset}`);
  const [batch, seq, heads, d] = rank === 4 ? h.shape : [1, ...h.shape];
  return filled(ctx, (out) => {
    withDense(ctx, "rope", h.strides[rank - 1] === 1 || d === 1 ? [] : [h], (dense) => {
      const src = dense[0] ?? h;
      const s = rank === 4 ? src.strides : [0, ...src.strides];
      for (let b = 0; b < batch; b++) {
        callKernel(
          ctx,
          "rope",
          "ppl_attention_rope",
          address(src) + 4 * b * s[0],
          seq,
          heads,
          d,
          s[1],
          s[2],
          offset,
          options.theta,
          address(out) + 4 * b * seq * heads * d,
        );
      }
    });
  }, h.shape);
}
