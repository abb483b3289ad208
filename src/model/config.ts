/**
 * The checkpoint's `config.json` (spec §2 and §6) parsed with zod into one typed `PPLLaVAConfig`. Missing keys take
 * the §2 values of the released Vicuna-7B checkpoint, so a real config and a small test config go through the same
 * code. A bad value is a `ConfigError` naming the field (dot path) and what is allowed.
 *
 * Where the released config.json says nothing:
 * - the CLIP text tower (built upstream from `clip_weight`, openai/clip-vit-large-patch14-336) has no block in it;
 *   we read an optional `clip_text_config` block (our extension, used by the small test checkpoints) and default to
 *   CLIP-L/336's text tower.
 * - `vision_config` defaults are CLIP-L/336 (the §2 row), not transformers' CLIPVisionConfig class defaults (ViT-B/32).
 */
import { z } from "zod";
import { parseOnevisionConfig } from "./config_qwen.ts";

export class ConfigError extends Error {
  override name = "ConfigError";
  readonly code: "bad_field" | "unsupported" | "bad_json";
  /** Dot path of the offending field, e.g. "vision_config.patch_size". */
  readonly field: string;
  constructor(code: ConfigError["code"], field: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.field = field;
  }
}

const positiveInt = z.number().int().positive();
const triple = z.tuple([positiveInt, positiveInt, positiveInt]);
const eps = z.number().positive().max(1);

const visionSchema = z.object({
  hidden_size: positiveInt.default(1024),
  intermediate_size: positiveInt.default(4096),
  num_hidden_layers: positiveInt.default(24),
  num_attention_heads: positiveInt.default(16),
  patch_size: positiveInt.default(14),
  image_size: positiveInt.default(336),
  num_channels: z.literal(3).default(3),
  layer_norm_eps: eps.default(1e-5),
  projection_dim: positiveInt.default(768),
  hidden_act: z.literal("quick_gelu").default("quick_gelu"),
  depth: positiveInt.optional(),
  max_T: positiveInt.optional(),
});

const textSchema = z.object({
  model_type: z.literal("llama").default("llama"),
  hidden_size: positiveInt.default(4096),
  intermediate_size: positiveInt.default(11008),
  num_hidden_layers: positiveInt.default(32),
  num_attention_heads: positiveInt.default(32),
  num_key_value_heads: positiveInt.nullable().optional(),
  rms_norm_eps: eps.default(1e-5),
  rope_theta: z.number().positive().default(10000),
  rope_scaling: z.null().optional(),
  vocab_size: positiveInt.default(32064),
  max_position_embeddings: positiveInt.default(4096),
  hidden_act: z.literal("silu").default("silu"),
  tie_word_embeddings: z.boolean().default(false),
});

const clipTextSchema = z.object({
  hidden_size: positiveInt.default(768),
  intermediate_size: positiveInt.default(3072),
  num_hidden_layers: positiveInt.default(12),
  num_attention_heads: positiveInt.default(12),
  vocab_size: positiveInt.default(49408),
  max_position_embeddings: positiveInt.default(77),
  projection_dim: positiveInt.default(768),
  layer_norm_eps: eps.default(1e-5),
  hidden_act: z.literal("quick_gelu").default("quick_gelu"),
  eos_token_id: z.number().int().nonnegative().default(49407),
});

const rootSchema = z.object({
  model_type: z.string().default("llava_next"),
  architectures: z.array(z.string()).default(["LlavaInterleaveForConditionalGeneration"]),
  vision_config: visionSchema.default(() => visionSchema.parse({})),
  text_config: textSchema.default(() => textSchema.parse({})),
  clip_text_config: clipTextSchema.default(() => clipTextSchema.parse({})),
  image_token_index: z.number().int().nonnegative().default(32000),
  pad_token_id: z.number().int().nonnegative().default(0),
  vision_feature_layer: z.number().int().default(-2),
  vision_feature_select_strategy: z.enum(["default", "full"]).default("default"),
  projector_hidden_act: z.literal("gelu").default("gelu"),
  pooling: z.enum(["ppllava", "clipST_3d"]).default("ppllava"),
  pooling_kernel: triple.nullable().default([2, 3, 3]),
  pooling_stride: triple.nullable().default([2, 3, 3]),
  image_pooling_kernel: triple.nullable().default([1, 3, 3]),
  image_pooling_stride: triple.nullable().default([1, 3, 3]),
  pllava_pooling_shape: triple.nullable().default(null),
  frame_shape: z.tuple([positiveInt, positiveInt]).default([24, 24]),
  pooling_temp: z.number().positive().default(0.01),
  btadapter: z.boolean().default(true),
  btadapter_depth: positiveInt.optional(),
  max_T: positiveInt.optional(),
  extend_clip: z.boolean().default(true),
  clip_weight: z.string().default("openai/clip-vit-large-patch14-336"),
  clip_post_pretrain: z.string().nullable().default(null),
  image_grid_pinpoints: z.array(z.tuple([positiveInt, positiveInt])).default([
    [336, 672],
    [672, 336],
    [672, 672],
    [1008, 336],
    [336, 1008],
  ]),
  use_image_newline_parameter: z.boolean().default(true),
  tie_word_embeddings: z.boolean().default(false),
  torch_dtype: z.enum(["float32", "float16", "bfloat16"]).default("bfloat16"),
});

export type Triple = readonly [number, number, number];

export interface VisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  patchSize: number;
  imageSize: number;
  /** Patches per side: imageSize / patchSize. */
  gridSize: number;
  layerNormEps: number;
  projectionDim: number;
  /** BT-Adapter layers; they run after CLIP layers numLayers−btDepth .. numLayers−1 (§3.3). */
  btDepth: number;
  /** Rows of `btadapter_time_embed`: the frame limit (the Qwen variant has no BT-Adapter; its max_T still bounds T). */
  maxT: number;
  /** "clip": CLIP ViT (CLS, pre_layrnorm, quick_gelu). "siglip": SigLIP (no CLS, conv bias, gelu tanh; §9). */
  arch: "clip" | "siglip";
  /** SigLIP's `vision_use_head`: the tower's own pooling head exists in the checkpoint (unused by PPLLaVA). */
  useHead: boolean;
}

export interface ClipTextConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  vocabSize: number;
  /** Positions of the original table (77). */
  basePositions: number;
  /** Positions after the §3.6 extension: 4·77 − 3·20 = 248 when extend_clip, else basePositions. */
  positions: number;
  /** Positions below this come from `position_embedding`, the rest from `position_embedding_res` (§3.6). */
  keepPositions: number;
  projectionDim: number;
  layerNormEps: number;
  eosTokenId: number;
  /** "clip": causal, pooled at the first EOS, text_projection. "siglip": bidirectional, pooled at the last row,
   * `head` linear (§9). */
  arch: "clip" | "siglip";
}

export interface LlmConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Qwen2: q/k/v projections carry biases (o_proj does not). */
  attentionBias: boolean;
}

export interface PoolingConfig {
  /** Video kernel/stride over (T, H, W); null where `get_size` derives it from the output shape (§3.4 step E). */
  kernel: Triple | null;
  stride: Triple | null;
  imageKernel: Triple | null;
  imageStride: Triple | null;
  /** `pllava_pooling_shape`: the output-size mode ("compress to any scale"); null in the released config. */
  outputShape: Triple | null;
  /** Temperature of the window softmax (0.01). */
  temperature: number;
  /** Patch grid of one frame (H, W) = (24, 24). */
  frameShape: readonly [number, number];
}

export interface PPLLaVAConfig {
  /** "llava_next": the Vicuna/CLIP variant (§2). "llava_onevision": the Qwen2/SigLIP variant (§9, config_qwen.ts). */
  modelType: "llava_next" | "llava_onevision";
  vision: VisionConfig;
  clipText: ClipTextConfig;
  llm: LlmConfig;
  pooling: PoolingConfig;
  imageTokenIndex: number;
  padTokenId: number;
  /** Index into the hidden-state list (−2 → hs[L−1]). */
  visionFeatureLayer: number;
  visionFeatureSelectStrategy: "default" | "full";
  btadapter: boolean;
  extendClip: boolean;
  useImageNewline: boolean;
  imageGridPinpoints: ReadonlyArray<readonly [number, number]>;
  torchDtype: "float32" | "float16" | "bfloat16";
  /** Ids that end generation by default: Vicuna `</s>` 2; Qwen2 `<|im_end|>`, `<|endoftext|>`. */
  eosTokenIds: readonly number[];
  /** The prompt template (chat_template.ts) and the frame preprocessing (media/preprocess.ts) of the variant. */
  chatTemplate: "plain_v1" | "plain_qwen";
  preprocess: "vicuna" | "qwen";
}

export const EXTEND_CLIP_KEEP = 20;

export function fail(field: string, message: string): never {
  throw new ConfigError("bad_field", field, `config.json: ${field}: ${message}`);
}

/** The pooling block, read the same way in both variants (spec §3.4, §9). */
export function poolingConfig(c: {
  pooling_kernel: PoolingConfig["kernel"];
  pooling_stride: PoolingConfig["stride"];
  image_pooling_kernel: PoolingConfig["imageKernel"];
  image_pooling_stride: PoolingConfig["imageStride"];
  pllava_pooling_shape: PoolingConfig["outputShape"];
  pooling_temp: number;
  frame_shape: PoolingConfig["frameShape"];
}): PoolingConfig {
  return {
    kernel: c.pooling_kernel,
    stride: c.pooling_stride,
    imageKernel: c.image_pooling_kernel,
    imageStride: c.image_pooling_stride,
    outputShape: c.pllava_pooling_shape,
    temperature: c.pooling_temp,
    frameShape: c.frame_shape,
  };
}

interface HeadSizes {
  hidden_size: number;
  num_attention_heads: number;
}

/** Heads divide each tower's width, and the LLM's KV heads divide its query heads (GQA); both variants. */
export function checkHeads(
  vision: HeadSizes,
  text: HeadSizes & { num_key_value_heads?: number | null },
  clipText: HeadSizes,
): void {
  for (
    const [field, { hidden_size, num_attention_heads }] of [
      ["vision_config.num_attention_heads", vision],
      ["text_config.num_attention_heads", text],
      ["clip_text_config.num_attention_heads", clipText],
    ] as const
  ) {
    if (hidden_size % num_attention_heads !== 0) {
      fail(field, `${num_attention_heads} heads do not divide hidden size ${hidden_size}`);
    }
  }
  const kvHeads = text.num_key_value_heads ?? text.num_attention_heads;
  if (text.num_attention_heads % kvHeads !== 0) {
    fail(
      "text_config.num_key_value_heads",
      `${kvHeads} does not divide ${text.num_attention_heads} heads (GQA needs a divisor)`,
    );
  }
}

/** Parses the text of config.json. */
export function parseConfigText(text: string): PPLLaVAConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError("bad_json", "", `config.json is not JSON: ${String(cause)}`, { cause });
  }
  return parseConfig(raw);
}

/** zod's result, or the first issue as a `ConfigError` naming its field. */
export function parseWith<S extends z.ZodTypeAny>(schema: S, raw: unknown): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.map(String).join(".");
    throw new ConfigError("bad_field", field, `config.json: ${field || "(root)"}: ${issue.message}`);
  }
  return parsed.data;
}

/** Parses the JSON value of config.json (unknown keys are ignored). */
export function parseConfig(raw: unknown): PPLLaVAConfig {
  if (typeof raw === "object" && raw !== null && (raw as { model_type?: unknown }).model_type === "llava_onevision") {
    return parseOnevisionConfig(raw);
  }
  const c = parseWith(rootSchema, raw);
  if (c.model_type !== "llava_next") {
    fail("model_type", `"${c.model_type}"; allowed: "llava_next" (Vicuna/CLIP) or "llava_onevision" (Qwen2/SigLIP)`);
  }
  const v = c.vision_config;
  const t = c.text_config;
  const ct = c.clip_text_config;
  checkHeads(v, t, ct);
  if (v.image_size % v.patch_size !== 0) {
    fail("vision_config.patch_size", `${v.patch_size} does not divide image_size ${v.image_size}`);
  }
  const grid = v.image_size / v.patch_size;
  if (c.frame_shape[0] !== grid || c.frame_shape[1] !== grid) {
    fail("frame_shape", `[${c.frame_shape}] but the vision tower makes ${grid}×${grid} patches`);
  }
  const btDepth = agree("btadapter_depth", c.btadapter_depth, "vision_config.depth", v.depth, 4);
  if (c.btadapter && btDepth > v.num_hidden_layers) {
    fail("btadapter_depth", `${btDepth} BT layers but only ${v.num_hidden_layers} CLIP layers`);
  }
  const maxT = agree("max_T", c.max_T, "vision_config.max_T", v.max_T, 64);
  const layers = v.num_hidden_layers;
  if (c.vision_feature_layer < -(layers + 1) || c.vision_feature_layer > layers) {
    fail("vision_feature_layer", `${c.vision_feature_layer}; allowed ${-(layers + 1)}..${layers}`);
  }
  checkPoolingMode("pooling", c.pooling_kernel, c.pooling_stride, c.pllava_pooling_shape);
  // The output-size mode is read for video only; images always pool with their kernel/stride (our reading).
  checkPoolingMode("image_pooling", c.image_pooling_kernel, c.image_pooling_stride, null);
  const positions = c.extend_clip ? 4 * ct.max_position_embeddings - 3 * EXTEND_CLIP_KEEP : ct.max_position_embeddings;
  if (c.extend_clip && ct.max_position_embeddings <= EXTEND_CLIP_KEEP + 1) {
    fail("clip_text_config.max_position_embeddings", `${ct.max_position_embeddings}; the extension keeps 20`);
  }
  return {
    modelType: "llava_next",
    vision: {
      hiddenSize: v.hidden_size,
      intermediateSize: v.intermediate_size,
      numLayers: v.num_hidden_layers,
      numHeads: v.num_attention_heads,
      patchSize: v.patch_size,
      imageSize: v.image_size,
      gridSize: grid,
      layerNormEps: v.layer_norm_eps,
      projectionDim: v.projection_dim,
      btDepth: c.btadapter ? btDepth : 0,
      maxT,
      arch: "clip",
      useHead: false,
    },
    clipText: {
      hiddenSize: ct.hidden_size,
      intermediateSize: ct.intermediate_size,
      numLayers: ct.num_hidden_layers,
      numHeads: ct.num_attention_heads,
      vocabSize: ct.vocab_size,
      basePositions: ct.max_position_embeddings,
      positions,
      keepPositions: c.extend_clip ? EXTEND_CLIP_KEEP : positions,
      projectionDim: ct.projection_dim,
      layerNormEps: ct.layer_norm_eps,
      eosTokenId: ct.eos_token_id,
      arch: "clip",
    },
    llm: {
      hiddenSize: t.hidden_size,
      intermediateSize: t.intermediate_size,
      numLayers: t.num_hidden_layers,
      numHeads: t.num_attention_heads,
      numKvHeads: t.num_key_value_heads ?? t.num_attention_heads,
      headDim: t.hidden_size / t.num_attention_heads,
      rmsNormEps: t.rms_norm_eps,
      ropeTheta: t.rope_theta,
      vocabSize: t.vocab_size,
      maxPositionEmbeddings: t.max_position_embeddings,
      tieWordEmbeddings: t.tie_word_embeddings || c.tie_word_embeddings,
      attentionBias: false,
    },
    pooling: poolingConfig(c),
    imageTokenIndex: c.image_token_index,
    padTokenId: c.pad_token_id,
    visionFeatureLayer: c.vision_feature_layer,
    visionFeatureSelectStrategy: c.vision_feature_select_strategy,
    btadapter: c.btadapter,
    extendClip: c.extend_clip,
    useImageNewline: c.use_image_newline_parameter,
    imageGridPinpoints: c.image_grid_pinpoints,
    torchDtype: c.torch_dtype,
    eosTokenIds: [2],
    chatTemplate: "plain_v1",
    preprocess: "vicuna",
  };
}

/** A value the release stores twice (top level and vision_config): both, when given, must agree. */
function agree(
  field: string,
  top: number | undefined,
  nestedField: string,
  nested: number | undefined,
  fallback: number,
) {
  if (top !== undefined && nested !== undefined && top !== nested) {
    fail(field, `${top} but ${nestedField} is ${nested}`);
  }
  return top ?? nested ?? fallback;
}

/** `get_size` needs kernel+stride, or the output shape with at most one of them (§3.4 step E). */
export function checkPoolingMode(
  prefix: string,
  kernel: Triple | null,
  stride: Triple | null,
  shape: Triple | null,
): void {
  if (shape === null && (kernel === null || stride === null)) {
    fail(
      `${prefix}_${kernel === null ? "kernel" : "stride"}`,
      "null, but without pllava_pooling_shape both kernel and stride are needed",
    );
  }
  if (shape !== null && kernel !== null && stride !== null) {
    fail(
      "pllava_pooling_shape",
      `set together with ${prefix}_kernel and ${prefix}_stride; give at most two of the three`,
    );
  }
}
