/**
 * config.json of the Qwen2/SigLIP variant (spec §9, checkpoint `ppllava_qwen7b_llavahound300k`, `model_type`
 * "llava_onevision") parsed into the same `PPLLaVAConfig` as the Vicuna variant. Missing keys take the values of
 * the upstream classes the checkpoint is built from; each one the spec marks [upstream, verify] is flagged below
 * with "UPSTREAM:" so a real config.json can be checked against it in one read.
 *
 * - vision_config: SigLIP-so400m-patch14-384 as llava-onevision keeps it (hidden 1152, 16 heads, intermediate 4304,
 *   patch 14, image 384 → 27×27 patches, LayerNorm eps 1e-6, gelu tanh, no CLS).
 *   UPSTREAM: num_hidden_layers 26 and vision_feature_layer −1 / "full" (transformers' LlavaOnevisionConfig
 *   defaults: LLaVA-OneVision drops SigLIP's 27th layer, so hs[−1] of the 26-layer tower is hs[−2] of so400m).
 *   A config.json that says 27 layers with −1 is taken as written.
 * - text_config: Qwen2-7B (hidden 3584, 28 layers, 28 heads, 4 KV heads, intermediate 18944, RMSNorm eps 1e-6,
 *   vocab 152064). UPSTREAM: rope_theta 1e6, max_position_embeddings 32768. q/k/v carry biases (Qwen2 always).
 * - clip_text_config (our extension, as for Vicuna: the release builds the tower from `clip_weight`): the SigLIP
 *   so400m text tower (hidden 1152, 27 layers, 16 heads, intermediate 4304, vocab 32000, 64 positions → 196 after
 *   the §3.6 extension, eps 1e-6, `head` Linear hidden→hidden with bias).
 * - UPSTREAM: image_token_index 151646 (`<image>` of the onevision tokenizer); pad_token_id 151643 (upstream's
 *   LlavaOnevisionVidConfig forces it); eos ids 151645 `<|im_end|>` and 151643 `<|endoftext|>` (Qwen2-Instruct's
 *   generation_config).
 * - UPSTREAM: image_grid_pinpoints = every (384·i, 384·j), i, j ∈ 1..6 (onevision's anyres_max_9 grid).
 * - `valuew_plus`: upstream's LlavaOnevisionVidConfig sets it to false after reading config.json, so no released
 *   run used it; `true` here is refused (ConfigError "unsupported") rather than silently ignored.
 * - `btadapter` must be false (the SigLIP tower has no BT-Adapter); `qwen`, when present, must be true.
 */
import { z } from "zod";
import {
  checkHeads,
  checkPoolingMode,
  ConfigError,
  EXTEND_CLIP_KEEP,
  fail,
  parseWith,
  poolingConfig,
  type PPLLaVAConfig,
} from "./config.ts";

// Built lazily: config.ts imports this module, so nothing here may touch config.ts while modules load.
let schema: ReturnType<typeof makeSchema> | undefined;

function makeSchema() {
  const positiveInt = z.number().int().positive();
  const triple = z.tuple([positiveInt, positiveInt, positiveInt]);
  const eps = z.number().positive().max(1);
  const vision = z.object({
    model_type: z.literal("siglip_vision_model").default("siglip_vision_model"),
    hidden_size: positiveInt.default(1152),
    intermediate_size: positiveInt.default(4304),
    num_hidden_layers: positiveInt.default(26),
    num_attention_heads: positiveInt.default(16),
    patch_size: positiveInt.default(14),
    image_size: positiveInt.default(384),
    num_channels: z.literal(3).default(3),
    layer_norm_eps: eps.default(1e-6),
    hidden_act: z.enum(["gelu_pytorch_tanh"]).default("gelu_pytorch_tanh"),
    vision_use_head: z.boolean().default(false),
  });
  const text = z.object({
    model_type: z.literal("qwen2").default("qwen2"),
    hidden_size: positiveInt.default(3584),
    intermediate_size: positiveInt.default(18944),
    num_hidden_layers: positiveInt.default(28),
    num_attention_heads: positiveInt.default(28),
    num_key_value_heads: positiveInt.default(4),
    rms_norm_eps: eps.default(1e-6),
    rope_theta: z.number().positive().default(1000000),
    rope_scaling: z.null().optional(),
    vocab_size: positiveInt.default(152064),
    max_position_embeddings: positiveInt.default(32768),
    hidden_act: z.literal("silu").default("silu"),
    tie_word_embeddings: z.boolean().default(false),
    use_sliding_window: z.literal(false).default(false),
  });
  const siglipText = z.object({
    hidden_size: positiveInt.default(1152),
    intermediate_size: positiveInt.default(4304),
    num_hidden_layers: positiveInt.default(27),
    num_attention_heads: positiveInt.default(16),
    vocab_size: positiveInt.default(32000),
    max_position_embeddings: positiveInt.default(64),
    projection_size: positiveInt.optional(),
    layer_norm_eps: eps.default(1e-6),
    hidden_act: z.enum(["gelu_pytorch_tanh"]).default("gelu_pytorch_tanh"),
    eos_token_id: z.number().int().nonnegative().default(1),
  });
  const pinpoints: [number, number][] = [];
  for (let i = 1; i <= 6; i++) for (let j = 1; j <= 6; j++) pinpoints.push([384 * i, 384 * j]);
  return z.object({
    model_type: z.literal("llava_onevision"),
    vision_config: vision.default(() => vision.parse({})),
    text_config: text.default(() => text.parse({})),
    clip_text_config: siglipText.default(() => siglipText.parse({})),
    image_token_index: z.number().int().nonnegative().default(151646),
    pad_token_id: z.number().int().nonnegative().default(151643),
    eos_token_ids: z.array(z.number().int().nonnegative()).min(1).default([151645, 151643]),
    vision_feature_layer: z.number().int().default(-1),
    vision_feature_select_strategy: z.enum(["default", "full"]).default("full"),
    projector_hidden_act: z.literal("gelu").default("gelu"),
    pooling: z.enum(["ppllava", "clipST_3d"]).default("ppllava"),
    qwen: z.literal(true).optional(),
    valuew_plus: z.boolean().default(false),
    pooling_kernel: triple.nullable().default([2, 3, 3]),
    pooling_stride: triple.nullable().default([2, 3, 3]),
    image_pooling_kernel: triple.nullable().default([1, 3, 3]),
    image_pooling_stride: triple.nullable().default([1, 3, 3]),
    pllava_pooling_shape: triple.nullable().default(null),
    frame_shape: z.tuple([positiveInt, positiveInt]).default([27, 27]),
    pooling_temp: z.number().positive().default(0.01),
    btadapter: z.literal(false).default(false),
    max_T: positiveInt.default(64),
    extend_clip: z.boolean().default(true),
    clip_weight: z.string().default("google/siglip-so400m-patch14-384"),
    image_grid_pinpoints: z.array(z.tuple([positiveInt, positiveInt])).default(pinpoints),
    use_image_newline_parameter: z.boolean().default(true),
    tie_word_embeddings: z.boolean().default(false),
    torch_dtype: z.enum(["float32", "float16", "bfloat16"]).default("bfloat16"),
  });
}

/** The Qwen2/SigLIP variant's config.json (model_type "llava_onevision") → PPLLaVAConfig. */
export function parseOnevisionConfig(raw: unknown): PPLLaVAConfig {
  schema ??= makeSchema();
  const c = parseWith(schema, raw);
  if (c.valuew_plus) {
    throw new ConfigError(
      "unsupported",
      "valuew_plus",
      "config.json: valuew_plus true is not supported (upstream's LlavaOnevisionVidConfig forces it to false, so " +
        "the released checkpoint never ran with it); allowed: false or absent",
    );
  }
  const v = c.vision_config;
  const t = c.text_config;
  const st = c.clip_text_config;
  checkHeads(v, t, st);
  if (v.image_size < v.patch_size) {
    fail("vision_config.patch_size", `${v.patch_size} is larger than image_size ${v.image_size}`);
  }
  // SigLIP's conv has padding "valid": 384 / 14 → 27 patches, the last 6 pixel rows and columns are not seen.
  const grid = Math.floor(v.image_size / v.patch_size);
  if (c.frame_shape[0] !== grid || c.frame_shape[1] !== grid) {
    fail("frame_shape", `[${c.frame_shape}] but the SigLIP tower makes ${grid}×${grid} patches`);
  }
  const layers = v.num_hidden_layers;
  if (c.vision_feature_layer < -(layers + 1) || c.vision_feature_layer > layers) {
    fail("vision_feature_layer", `${c.vision_feature_layer}; allowed ${-(layers + 1)}..${layers}`);
  }
  if (c.vision_feature_select_strategy !== "full") {
    fail("vision_feature_select_strategy", `"default" drops a CLS token, but SigLIP has none; allowed: "full"`);
  }
  // The relevance is a cosine between the patch head's output (vision hidden) and the text head's output.
  const projection = st.projection_size ?? st.hidden_size;
  if (projection !== v.hidden_size) {
    fail(
      "clip_text_config.projection_size",
      `${projection}, but the patch embeddings have the vision width ${v.hidden_size}; the two must match`,
    );
  }
  checkPoolingMode("pooling", c.pooling_kernel, c.pooling_stride, c.pllava_pooling_shape);
  checkPoolingMode("image_pooling", c.image_pooling_kernel, c.image_pooling_stride, null);
  const basePositions = st.max_position_embeddings;
  if (c.extend_clip && basePositions <= EXTEND_CLIP_KEEP + 1) {
    fail("clip_text_config.max_position_embeddings", `${basePositions}; the extension keeps 20`);
  }
  const positions = c.extend_clip ? 4 * basePositions - 3 * EXTEND_CLIP_KEEP : basePositions;
  return {
    modelType: "llava_onevision",
    vision: {
      hiddenSize: v.hidden_size,
      intermediateSize: v.intermediate_size,
      numLayers: layers,
      numHeads: v.num_attention_heads,
      patchSize: v.patch_size,
      imageSize: v.image_size,
      gridSize: grid,
      layerNormEps: v.layer_norm_eps,
      projectionDim: v.hidden_size,
      btDepth: 0,
      maxT: c.max_T,
      arch: "siglip",
      useHead: v.vision_use_head,
    },
    clipText: {
      hiddenSize: st.hidden_size,
      intermediateSize: st.intermediate_size,
      numLayers: st.num_hidden_layers,
      numHeads: st.num_attention_heads,
      vocabSize: st.vocab_size,
      basePositions,
      positions,
      keepPositions: c.extend_clip ? EXTEND_CLIP_KEEP : positions,
      projectionDim: projection,
      layerNormEps: st.layer_norm_eps,
      eosTokenId: st.eos_token_id,
      arch: "siglip",
    },
    llm: {
      hiddenSize: t.hidden_size,
      intermediateSize: t.intermediate_size,
      numLayers: t.num_hidden_layers,
      numHeads: t.num_attention_heads,
      numKvHeads: t.num_key_value_heads,
      headDim: t.hidden_size / t.num_attention_heads,
      rmsNormEps: t.rms_norm_eps,
      ropeTheta: t.rope_theta,
      vocabSize: t.vocab_size,
      maxPositionEmbeddings: t.max_position_embeddings,
      tieWordEmbeddings: t.tie_word_embeddings || c.tie_word_embeddings,
      attentionBias: true,
    },
    pooling: poolingConfig(c),
    imageTokenIndex: c.image_token_index,
    padTokenId: c.pad_token_id,
    visionFeatureLayer: c.vision_feature_layer,
    visionFeatureSelectStrategy: c.vision_feature_select_strategy,
    btadapter: false,
    extendClip: c.extend_clip,
    useImageNewline: c.use_image_newline_parameter,
    imageGridPinpoints: c.image_grid_pinpoints,
    torchDtype: c.torch_dtype,
    eosTokenIds: c.eos_token_ids,
    chatTemplate: "plain_qwen",
    preprocess: "qwen",
  };
}
