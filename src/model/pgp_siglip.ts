/**
 * Step A of PGP for the Qwen2/SigLIP variant (spec §9): the per-patch embedding of upstream's
 * SiglipPoolingHead_PatchCLS, applied to x = clip_visual_ln(F) (a copy of SigLIP's post_layernorm):
 *
 *   v = x · W_in[2d:3d]ᵀ + b_in[2d:3d]          (the V part of the head's attention in-projection)
 *   e = v + fc2(gelu_tanh(fc1(LN_head(v))))     (the head's layernorm and MLP, with its residual)
 *
 * The head's probe query, attention weights and out_proj do not reach e (upstream returns the projected values,
 * not the attention output); they would only matter for `valuew_plus`, which config_qwen.ts refuses.
 */
import type { Backend, Tensor } from "../backend/backend.ts";
import { type ClipMlp, loadClipMlp } from "./clip_layer.ts";
import { type LayerNorm, layerNorm, type Linear, linear, type Params } from "./layers.ts";
import { siglipMlp } from "./siglip_layer.ts";
import { PROJECTOR } from "./weights.ts";

export interface SiglipPatchHead {
  value: Linear;
  norm: LayerNorm;
  mlp: ClipMlp;
}

export async function loadSiglipPatchHead(p: Params, eps: number): Promise<SiglipPatchHead> {
  const head = `${PROJECTOR}.clip_visual_head`;
  const weight = await p.host(`${head}.attention.in_proj_weight`);
  const bias = await p.host(`${head}.attention.in_proj_bias`);
  const d = bias.length / 3;
  // Only the V rows are kept (widened to f32: d² values, small next to the towers).
  return {
    value: {
      weight: p.constant(weight.slice(2 * d * d), [d, d]),
      bias: p.constant(bias.slice(2 * d), [d]),
    },
    norm: await p.layerNorm(`${head}.layernorm`, eps),
    mlp: await loadClipMlp(p, `${head}.mlp`),
  };
}

/** x (…, d), already through clip_visual_ln → the patch embeddings (…, d). */
export function siglipPatchEmbeddings(b: Backend, x: Tensor, w: SiglipPatchHead): Tensor {
  const v = linear(b, x, w.value);
  return b.add(v, siglipMlp(b, layerNorm(b, v, w.norm), w.mlp));
}
