/**
 * The HF key layout of the Qwen2/SigLIP variant (spec §9, checkpoint `ppllava_qwen7b_llavahound300k`), derived from
 * the module tree of upstream's LlavaInterleaveForConditionalGeneration with `qwen` set (vision tower = transformers'
 * SiglipVisionModel, projector = LLaVASiglip3DMultiModalProjector, LLM = Qwen2ForCausalLM). Not yet checked against
 * the release's model.safetensors.index.json. Shapes with the real sizes (d = 1152, i = 4304, P = 729, h = 3584):
 *
 *   vision_tower.vision_model.embeddings.patch_embedding.{weight [d,3,14,14], bias [d]}      (conv with bias)
 *   vision_tower.vision_model.embeddings.position_embedding.weight [P,d]                     (no CLS row)
 *   vision_tower.vision_model.encoder.layers.{0..L-1}.self_attn.{q,k,v,out}_proj.{weight,bias}
 *   vision_tower.vision_model.encoder.layers.{0..L-1}.layer_norm{1,2}.{weight,bias}, mlp.fc{1,2}.{weight,bias}
 *   vision_tower.vision_model.post_layernorm.{weight,bias}                                   (unused: hs[-1] is before it)
 *   vision_tower.vision_model.head.*                     only with vision_use_head (unused; same sub-keys as below)
 *   multi_modal_projector.linear_1.{weight [h,d], bias}, linear_2.{weight [h,h], bias}
 *   multi_modal_projector.clip_visual_ln.{weight,bias} [d]               (copy of SigLIP's vision post_layernorm)
 *   multi_modal_projector.clip_visual_head.probe [1,1,d]                               (unused per patch)
 *   multi_modal_projector.clip_visual_head.attention.in_proj_weight [3d,d], in_proj_bias [3d]  (rows 2d.. = V)
 *   multi_modal_projector.clip_visual_head.attention.out_proj.{weight,bias}           (unused per patch)
 *   multi_modal_projector.clip_visual_head.layernorm.{weight,bias}, mlp.fc1.{weight [i,d],bias}, mlp.fc2.*
 *   multi_modal_projector.logit_scale [1], logit_bias [1]                (SigLIP stores both as 1-element vectors)
 *   multi_modal_projector.clip_text_model.embeddings.token_embedding.weight [32000,td]
 *   multi_modal_projector.clip_text_model.embeddings.position_embedding [196,td], position_embedding_res [196,td]
 *   multi_modal_projector.clip_text_model.encoder.layers.{0..26}.(CLIP layer sub-keys)
 *   multi_modal_projector.clip_text_model.final_layer_norm.{weight,bias}, head.{weight [td,td], bias [td]}
 *   language_model.model.layers.{i}.self_attn.{q,k,v}_proj.bias + the LLaMA keys (weights.ts `llmLayout`)
 *
 * `needed` false: may be absent (the unused pieces above and `position_embedding_res`, as for Vicuna).
 */
import type { PPLLaVAConfig } from "./config.ts";
import { type AddTensor, CLIP_TEXT, featureHiddenState, PROJECTOR, VISION, type WeightPart } from "./weights.ts";

/** q/k/v/out with biases, two LayerNorms, fc1/fc2: SigLIP's encoder layer has CLIP's keys. */
function encoderLayer(add: AddTensor, prefix: string, d: number, inner: number, part: WeightPart, needed: boolean) {
  for (const proj of ["q_proj", "k_proj", "v_proj", "out_proj"]) {
    add(`${prefix}.self_attn.${proj}.weight`, [d, d], part, needed);
    add(`${prefix}.self_attn.${proj}.bias`, [d], part, needed);
  }
  for (const norm of ["layer_norm1", "layer_norm2"]) {
    add(`${prefix}.${norm}.weight`, [d], part, needed);
    add(`${prefix}.${norm}.bias`, [d], part, needed);
  }
  mlp(add, `${prefix}.mlp`, d, inner, part, needed);
}

function mlp(add: AddTensor, prefix: string, d: number, inner: number, part: WeightPart, needed: boolean) {
  add(`${prefix}.fc1.weight`, [inner, d], part, needed);
  add(`${prefix}.fc1.bias`, [inner], part, needed);
  add(`${prefix}.fc2.weight`, [d, inner], part, needed);
  add(`${prefix}.fc2.bias`, [d], part, needed);
}

/** SiglipMultiheadAttentionPoolingHead / upstream's SiglipPoolingHead_PatchCLS; per patch only V, LN, MLP matter. */
function poolingHead(add: AddTensor, prefix: string, d: number, inner: number, part: WeightPart, needed: boolean) {
  add(`${prefix}.probe`, [1, 1, d], part, false);
  add(`${prefix}.attention.in_proj_weight`, [3 * d, d], part, needed);
  add(`${prefix}.attention.in_proj_bias`, [3 * d], part, needed);
  add(`${prefix}.attention.out_proj.weight`, [d, d], part, false);
  add(`${prefix}.attention.out_proj.bias`, [d], part, false);
  add(`${prefix}.layernorm.weight`, [d], part, needed);
  add(`${prefix}.layernorm.bias`, [d], part, needed);
  mlp(add, `${prefix}.mlp`, d, inner, part, needed);
}

/** Vision tower, projector and SigLIP text tower of the Qwen variant (the LLM part is weights.ts `llmLayout`). */
export function onevisionLayout(config: PPLLaVAConfig, add: AddTensor): void {
  const v = config.vision;
  const d = v.hiddenSize;
  const featureState = featureHiddenState(config);
  add(`${VISION}.embeddings.patch_embedding.weight`, [d, 3, v.patchSize, v.patchSize], "vision");
  add(`${VISION}.embeddings.patch_embedding.bias`, [d], "vision");
  add(`${VISION}.embeddings.position_embedding.weight`, [v.gridSize * v.gridSize, d], "vision");
  for (let i = 0; i < v.numLayers; i++) {
    encoderLayer(add, `${VISION}.encoder.layers.${i}`, d, v.intermediateSize, "vision", i < featureState);
  }
  add(`${VISION}.post_layernorm.weight`, [d], "vision", false);
  add(`${VISION}.post_layernorm.bias`, [d], "vision", false);
  if (v.useHead) poolingHead(add, `${VISION}.head`, d, v.intermediateSize, "vision", false);

  const h = config.llm.hiddenSize;
  add(`${PROJECTOR}.linear_1.weight`, [h, d], "projector");
  add(`${PROJECTOR}.linear_1.bias`, [h], "projector");
  add(`${PROJECTOR}.linear_2.weight`, [h, h], "projector");
  add(`${PROJECTOR}.linear_2.bias`, [h], "projector");
  add(`${PROJECTOR}.clip_visual_ln.weight`, [d], "projector");
  add(`${PROJECTOR}.clip_visual_ln.bias`, [d], "projector");
  poolingHead(add, `${PROJECTOR}.clip_visual_head`, d, v.intermediateSize, "projector", true);
  add(`${PROJECTOR}.logit_scale`, [1], "projector");
  add(`${PROJECTOR}.logit_bias`, [1], "projector");

  const t = config.clipText;
  add(`${CLIP_TEXT}.embeddings.token_embedding.weight`, [t.vocabSize, t.hiddenSize], "clip_text");
  if (config.extendClip) {
    add(`${CLIP_TEXT}.embeddings.position_embedding`, [t.positions, t.hiddenSize], "clip_text");
    add(`${CLIP_TEXT}.embeddings.position_embedding_res`, [t.positions, t.hiddenSize], "clip_text", false);
  } else {
    add(`${CLIP_TEXT}.embeddings.position_embedding.weight`, [t.positions, t.hiddenSize], "clip_text");
  }
  for (let i = 0; i < t.numLayers; i++) {
    encoderLayer(add, `${CLIP_TEXT}.encoder.layers.${i}`, t.hiddenSize, t.intermediateSize, "clip_text", true);
  }
  add(`${CLIP_TEXT}.final_layer_norm.weight`, [t.hiddenSize], "clip_text");
  add(`${CLIP_TEXT}.final_layer_norm.bias`, [t.hiddenSize], "clip_text");
  add(`${CLIP_TEXT}.head.weight`, [t.projectionDim, t.hiddenSize], "clip_text");
  add(`${CLIP_TEXT}.head.bias`, [t.projectionDim], "clip_text");
}
