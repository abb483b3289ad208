/**
 * The SigLIP encoder layer (spec §9; transformers' SiglipEncoderLayer): CLIP's pre-LN layer with the tanh GELU,
 *
 *   x += out(Attn(q(LN1 x), k(LN1 x), v(LN1 x)));   x += fc2(gelu_tanh(fc1(LN2 x)))
 *
 * with CLIP's checkpoint keys (clip_layer.ts loads them). Attention is bidirectional; `keyRows` limits the keys to
 * the first rows (the SigLIP text tower's padding mask, which is a prefix of ones).
 */
import type { Backend, Tensor } from "../backend/backend.ts";
import type { ClipAttention, ClipLayer, ClipMlp } from "./clip_layer.ts";
import { layerNorm, type Linear, linear } from "./layers.ts";

/** x (N, L, D) → (N, L, D); keys and values are rows [0, keyRows) of x (all rows when omitted). */
export function siglipAttention(b: Backend, x: Tensor, w: ClipAttention, keyRows?: number): Tensor {
  const [n, length, d] = x.shape;
  const hd = d / w.heads;
  const heads = (l: Linear, rows: number) => {
    const source = rows === length ? x : b.slice(x, 1, 0, rows);
    return b.permute(b.reshape(linear(b, source, l), [n, rows, w.heads, hd]), [0, 2, 1, 3]);
  };
  const keys = keyRows ?? length;
  const out = b.attention(heads(w.q, length), heads(w.k, keys), heads(w.v, keys), { causal: false });
  return linear(b, b.reshape(b.permute(out, [0, 2, 1, 3]), [n, length, d]), w.out);
}

export function siglipMlp(b: Backend, x: Tensor, w: ClipMlp): Tensor {
  return linear(b, b.geluTanh(linear(b, x, w.fc1)), w.fc2);
}

/** The two residual equations of a SigLIP encoder layer. */
export function siglipLayer(b: Backend, x: Tensor, w: ClipLayer, keyRows?: number): Tensor {
  const h = b.add(x, siglipAttention(b, layerNorm(b, x, w.norm1), w.attention, keyRows));
  return b.add(h, siglipMlp(b, layerNorm(b, h, w.norm2), w.mlp));
}
