/**
 * The HF key layout of a PPLLaVA checkpoint (spec §6) as a typed map from checkpoint key to shape, derived from the
 * parsed config, and `ModelWeights`: the checked access the graph reads its tensors through. Every key here is the
 * checkpoint key verbatim (including the upstream spelling "pre_layrnorm").
 *
 * `needed` marks what inference reads: CLIP layers at or after the feature layer, the BT layers that run after
 * them, and the vision `post_layernorm` only feed the unused pooler output (§3.3); they may be absent.
 * `position_embedding_res` may be absent too: positions ≥ 20 then come from `position_embedding`, which holds the
 * interpolated table it was initialised from (§3.6).
 */
import { directoryFiles, type FileSet } from "../util/random_access.ts";
import { ConfigError, parseConfigText, type PPLLaVAConfig } from "./config.ts";
import { checkQuantizedTensor, parseQuantMetadata, type QuantizedTensor, scalesName } from "./quant_checkpoint.ts";
import { onevisionLayout } from "./weights_qwen.ts";
import { decodeF32, openCheckpointTensors, type TensorInfo, type TensorStore, WeightsError } from "./safetensors.ts";

export const VISION = "vision_tower.vision_model";
export const PROJECTOR = "multi_modal_projector";
export const CLIP_TEXT = "multi_modal_projector.clip_text_model";
export const LLM = "language_model";

export type WeightPart = "vision" | "btadapter" | "projector" | "clip_text" | "llm";

export interface ExpectedTensor {
  readonly shape: readonly number[];
  readonly part: WeightPart;
  readonly needed: boolean;
}

/** Index of the hidden state the features come from (−2 → numLayers − 1): CLIP layers below it are needed. */
export function featureHiddenState(config: PPLLaVAConfig): number {
  const layer = config.visionFeatureLayer;
  return layer < 0 ? config.vision.numLayers + 1 + layer : layer;
}

/** Adds one expected tensor (`needed` false: it may be absent). */
export type AddTensor = (name: string, shape: number[], part: WeightPart, needed?: boolean) => void;

/** The layout of the config's variant: Vicuna/CLIP below, Qwen2/SigLIP in weights_qwen.ts (§9). */
export function weightLayout(config: PPLLaVAConfig): Map<string, ExpectedTensor> {
  const map = new Map<string, ExpectedTensor>();
  const add: AddTensor = (name, shape, part, needed = true) => map.set(name, { shape, part, needed });
  if (config.modelType === "llava_onevision") onevisionLayout(config, add);
  else llavaNextLayout(config, add);
  llmLayout(config, add);
  return map;
}

function llavaNextLayout(config: PPLLaVAConfig, add: AddTensor): void {
  const v = config.vision;
  const featureState = featureHiddenState(config);

  const clipLayer = (prefix: string, d: number, inner: number, part: WeightPart, needed: boolean, kind = "full") => {
    for (const proj of ["q_proj", "k_proj", "v_proj", "out_proj"]) {
      add(`${prefix}.self_attn.${proj}.weight`, [d, d], part, needed);
      add(`${prefix}.self_attn.${proj}.bias`, [d], part, needed);
    }
    add(`${prefix}.layer_norm1.weight`, [d], part, needed);
    add(`${prefix}.layer_norm1.bias`, [d], part, needed);
    if (kind === "temporal") {
      add(`${prefix}.temporal_fc.weight`, [d, d], part, needed);
      add(`${prefix}.temporal_fc.bias`, [d], part, needed);
      return;
    }
    add(`${prefix}.layer_norm2.weight`, [d], part, needed);
    add(`${prefix}.layer_norm2.bias`, [d], part, needed);
    add(`${prefix}.mlp.fc1.weight`, [inner, d], part, needed);
    add(`${prefix}.mlp.fc1.bias`, [inner], part, needed);
    add(`${prefix}.mlp.fc2.weight`, [d, inner], part, needed);
    add(`${prefix}.mlp.fc2.bias`, [d], part, needed);
  };

  const d = v.hiddenSize;
  add(`${VISION}.embeddings.class_embedding`, [d], "vision");
  add(`${VISION}.embeddings.patch_embedding.weight`, [d, 3, v.patchSize, v.patchSize], "vision");
  add(`${VISION}.embeddings.position_embedding.weight`, [v.gridSize * v.gridSize + 1, d], "vision");
  add(`${VISION}.pre_layrnorm.weight`, [d], "vision");
  add(`${VISION}.pre_layrnorm.bias`, [d], "vision");
  for (let i = 0; i < v.numLayers; i++) {
    clipLayer(`${VISION}.encoder.layers.${i}`, d, v.intermediateSize, "vision", i < featureState);
  }
  add(`${VISION}.post_layernorm.weight`, [d], "vision", false);
  add(`${VISION}.post_layernorm.bias`, [d], "vision", false);
  if (config.btadapter) {
    const firstBt = v.numLayers - v.btDepth;
    for (let j = 0; j < v.btDepth; j++) {
      const needed = firstBt + j < featureState;
      clipLayer(`${VISION}.btadapter_S_layers.${j}`, d, v.intermediateSize, "btadapter", needed);
      clipLayer(`${VISION}.btadapter_T_layers.${j}`, d, v.intermediateSize, "btadapter", needed, "temporal");
    }
    add(`${VISION}.btadapter_time_embed.weight`, [v.maxT, d], "btadapter");
    add(`${VISION}.btadapter_cls_token`, [1, 1, d], "btadapter");
  }

  const h = config.llm.hiddenSize;
  const ct = config.clipText;
  add(`${PROJECTOR}.linear_1.weight`, [h, d], "projector");
  add(`${PROJECTOR}.linear_1.bias`, [h], "projector");
  add(`${PROJECTOR}.linear_2.weight`, [h, h], "projector");
  add(`${PROJECTOR}.linear_2.bias`, [h], "projector");
  add(`${PROJECTOR}.clip_visual_ln.weight`, [d], "projector");
  add(`${PROJECTOR}.clip_visual_ln.bias`, [d], "projector");
  add(`${PROJECTOR}.clip_visual_projection.weight`, [ct.projectionDim, d], "projector");
  add(`${PROJECTOR}.clip_text_projection.weight`, [ct.projectionDim, ct.hiddenSize], "projector");
  add(`${PROJECTOR}.logit_scale`, [], "projector");

  add(`${CLIP_TEXT}.embeddings.token_embedding.weight`, [ct.vocabSize, ct.hiddenSize], "clip_text");
  if (config.extendClip) {
    // Raw Parameters (no ".weight"), both extended to 248 rows.
    add(`${CLIP_TEXT}.embeddings.position_embedding`, [ct.positions, ct.hiddenSize], "clip_text");
    add(`${CLIP_TEXT}.embeddings.position_embedding_res`, [ct.positions, ct.hiddenSize], "clip_text", false);
  } else {
    add(`${CLIP_TEXT}.embeddings.position_embedding.weight`, [ct.positions, ct.hiddenSize], "clip_text");
  }
  for (let i = 0; i < ct.numLayers; i++) {
    clipLayer(`${CLIP_TEXT}.encoder.layers.${i}`, ct.hiddenSize, ct.intermediateSize, "clip_text", true);
  }
  add(`${CLIP_TEXT}.final_layer_norm.weight`, [ct.hiddenSize], "clip_text");
  add(`${CLIP_TEXT}.final_layer_norm.bias`, [ct.hiddenSize], "clip_text");
}

/** The decoder (LLaMA, or Qwen2 with q/k/v biases) and the `image_newline` row. */
function llmLayout(config: PPLLaVAConfig, add: AddTensor): void {
  const l = config.llm;
  const h = l.hiddenSize;
  const kv = l.numKvHeads * l.headDim;
  add("image_newline", [h], "llm", config.useImageNewline);
  add(`${LLM}.model.embed_tokens.weight`, [l.vocabSize, h], "llm");
  for (let i = 0; i < l.numLayers; i++) {
    const p = `${LLM}.model.layers.${i}`;
    add(`${p}.self_attn.q_proj.weight`, [l.numHeads * l.headDim, h], "llm");
    add(`${p}.self_attn.k_proj.weight`, [kv, h], "llm");
    add(`${p}.self_attn.v_proj.weight`, [kv, h], "llm");
    add(`${p}.self_attn.o_proj.weight`, [h, l.numHeads * l.headDim], "llm");
    if (l.attentionBias) {
      add(`${p}.self_attn.q_proj.bias`, [l.numHeads * l.headDim], "llm");
      add(`${p}.self_attn.k_proj.bias`, [kv], "llm");
      add(`${p}.self_attn.v_proj.bias`, [kv], "llm");
    }
    add(`${p}.mlp.gate_proj.weight`, [l.intermediateSize, h], "llm");
    add(`${p}.mlp.up_proj.weight`, [l.intermediateSize, h], "llm");
    add(`${p}.mlp.down_proj.weight`, [h, l.intermediateSize], "llm");
    add(`${p}.input_layernorm.weight`, [h], "llm");
    add(`${p}.post_attention_layernorm.weight`, [h], "llm");
  }
  add(`${LLM}.model.norm.weight`, [h], "llm");
  add(`${LLM}.lm_head.weight`, [l.vocabSize, h], "llm", !l.tieWordEmbeddings);
}

const WEIGHT_DTYPES = new Set(["F32", "F16", "BF16"]);

/** Checked access to a checkpoint's tensors under the §6 layout. */
export class ModelWeights {
  readonly layout: Map<string, ExpectedTensor>;
  /** Tensors the checkpoint holds quantised (ahead of time, `ppllava convert`), by name, with their logical shape. */
  readonly quantized: ReadonlyMap<string, QuantizedTensor>;

  constructor(readonly store: TensorStore, readonly config: PPLLaVAConfig) {
    this.layout = weightLayout(config);
    this.quantized = parseQuantMetadata(store.metadata, "checkpoint");
  }

  /** Checks every tensor the layout expects: the needed ones must exist; whatever exists must have its shape and a
   * weight dtype. Throws the first problem; call once after opening so errors come before any compute. */
  validate(): void {
    for (const [name, expected] of this.layout) {
      if (!expected.needed && !this.store.has(name)) continue;
      this.expectTensor(name, expected.shape);
    }
  }

  /** The info of `name`, which must exist with exactly `shape` and a weight dtype (F32/F16/BF16). */
  expectTensor(name: string, shape: readonly number[]): TensorInfo {
    if (!this.store.has(name)) {
      throw new WeightsError(
        "missing_tensor",
        `the checkpoint has no tensor ${name} (expected shape [${shape}])`,
        name,
      );
    }
    const quantized = this.quantized.get(name);
    if (quantized) {
      if (quantized.shape.length !== shape.length || quantized.shape.some((dim, i) => dim !== shape[i])) {
        throw new WeightsError(
          "bad_shape",
          `tensor ${name} is ${quantized.dtype} [${quantized.shape}], expected [${shape}] from config.json`,
          name,
        );
      }
      checkQuantizedTensor(this.store, name, quantized);
      return this.store.info(name);
    }
    const info = this.store.info(name);
    if (info.shape.length !== shape.length || info.shape.some((dim, i) => dim !== shape[i])) {
      throw new WeightsError(
        "bad_shape",
        `tensor ${name} has shape [${info.shape}], expected [${shape}] from config.json`,
        name,
      );
    }
    if (!WEIGHT_DTYPES.has(info.dtype)) {
      throw new WeightsError("bad_dtype", `tensor ${name} is ${info.dtype}; weights must be F32, F16 or BF16`, name);
    }
    return info;
  }

  has(name: string): boolean {
    return this.store.has(name);
  }

  /** Tensors the checkpoint holds outside the layout (old `position_ids` buffers, say): ignored, listed for logs. */
  unexpectedTensors(): string[] {
    const companions = new Set([...this.quantized.keys()].map(scalesName));
    return this.store.names().filter((name) => !this.layout.has(name) && !companions.has(name));
  }

  /** Reads a tensor of the layout as f32, checking it against the layout first. */
  async f32(name: string): Promise<Float32Array> {
    const expected = this.layout.get(name);
    if (!expected) throw new WeightsError("missing_tensor", `${name} is not a key of the PPLLaVA layout`, name);
    const info = this.expectTensor(name, expected.shape);
    if (this.quantized.has(name)) {
      throw new WeightsError("bad_dtype", `${name} is stored quantised; it loads as a matrix (Params.matrix)`, name);
    }
    return decodeF32(await this.store.readRaw(name), info.dtype, name);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

/** Opens a checkpoint folder (a path, or a FileSet for hosts without a file system): parses config.json, reads the
 * safetensors headers (single or sharded) and validates the whole layout. No tensor data is read yet. */
export async function openCheckpoint(folder: string | FileSet): Promise<ModelWeights> {
  const files = typeof folder === "string" ? directoryFiles(folder) : folder;
  if (!(await files.exists("config.json"))) {
    throw new ConfigError("bad_json", "", `${files.label} has no config.json`);
  }
  const config = parseConfigText(await files.readText("config.json"));
  const store = await openCheckpointTensors(files);
  const weights = new ModelWeights(store, config);
  try {
    weights.validate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return weights;
}
