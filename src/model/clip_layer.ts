/**
 * The CLIP encoder layer (spec §3.3 "Main stream", §3.6 text tower): pre-LN, x += Attn(LN1 x);
 * x += fc2(quick_gelu(fc1(LN2 x))). Attention has q/k/v/out projections with biases and scale 1/√head_dim.
 * Shared by the vision tower, the BT-Adapter's S/T layers (which use parts of it) and the CLIP text tower.
 */
import type { Backend, Tensor } from "../backend/backend.ts";
import { type LayerNorm, layerNorm, type Linear, linear, type TensorSource } from "./layers.ts";

export interface ClipAttention {
  q: Linear;
  k: Linear;
  v: Linear;
  out: Linear;
  heads: number;
}

export interface ClipMlp {
  fc1: Linear;
  fc2: Linear;
}

export interface ClipLayer {
  norm1: LayerNorm;
  attention: ClipAttention;
  norm2: LayerNorm;
  mlp: ClipMlp;
}

export async function loadClipAttention(p: TensorSource, prefix: string, heads: number): Promise<ClipAttention> {
  return {
    q: await p.linear(`${prefix}.q_proj`),
    k: await p.linear(`${prefix}.k_proj`),
    v: await p.linear(`${prefix}.v_proj`),
    out: await p.linear(`${prefix}.out_proj`),
    heads,
  };
}

export async function loadClipMlp(p: TensorSource, prefix: string): Promise<ClipMlp> {
  return { fc1: await p.linear(`${prefix}.fc1`), fc2: await p.linear(`${prefix}.fc2`) };
}

export async function loadClipLayer(p: TensorSource, prefix: string, heads: number, eps: number): Promise<ClipLayer> {
  return {
    norm1: await p.layerNorm(`${prefix}.layer_norm1`, eps),
    attention: await loadClipAttention(p, `${prefix}.self_attn`, heads),
    norm2: await p.layerNorm(`${prefix}.layer_norm2`, eps),
    mlp: await loadClipMlp(p, `${prefix}.mlp`),
  };
}

/** x (N, L, D) → (N, L, D): multi-head attention over the L axis, full or causal, no padding mask. */
export function clipAttention(b: Backend, x: Tensor, w: ClipAttention, causal: boolean): Tensor {
  const [n, length, d] = x.shape;
  const hd = d / w.heads;
  const heads = (l: Linear) => b.permute(b.reshape(linear(b, x, l), [n, length, w.heads, hd]), [0, 2, 1, 3]);
  const out = b.attention(heads(w.q), heads(w.k), heads(w.v), { causal }); // (N, H, L, hd) over (N, L, H, hd)
  return linear(b, b.reshape(b.permute(out, [0, 2, 1, 3]), [n, length, d]), w.out);
}

export function clipMlp(b: Backend, x: Tensor, w: ClipMlp): Tensor {
  return linear(b, b.quickGelu(linear(b, x, w.fc1)), w.fc2);
}

/** The two residual equations of a pre-LN CLIP layer. */
export function clipLayer(b: Backend, x: Tensor, w: ClipLayer, causal = false): Tensor {
  const h = b.add(x, clipAttention(b, layerNorm(b, x, w.norm1), w.attention, causal));
  return b.add(h, clipMlp(b, layerNorm(b, h, w.norm2), w.mlp));
}
