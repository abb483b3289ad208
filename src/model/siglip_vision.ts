/**
 * The SigLIP vision tower of the Qwen variant (spec §9; transformers' SiglipVisionTransformer as llava-onevision
 * uses it): conv patch embedding with bias (row-major over the grid), + position table, no CLS and no pre-LN, then
 * pre-LN encoder layers with the tanh GELU. Every frame runs on its own (no BT-Adapter).
 *
 * The feature is hs[vision_feature_layer] with nothing dropped ("full"): hs[0] = embeddings, hs[k] = the output of
 * layer k−1; `post_layernorm` only feeds the pooler output and is not applied (PGP has its own copy of it,
 * `clip_visual_ln`). Only the layers the feature needs are loaded and run. Names traced: vision.embeddings,
 * vision.hs.{k}, vision.feature (as tests/oracles/qwen_reference.py records them).
 */
import type { Backend, Tensor } from "../backend/backend.ts";
import { type ClipLayer, loadClipLayer } from "./clip_layer.ts";
import type { PPLLaVAConfig } from "./config.ts";
import { ModelError } from "./errors.ts";
import type { Params, Trace } from "./layers.ts";
import { siglipLayer } from "./siglip_layer.ts";
import { type VisionConfig, visionConfig } from "./vision.ts";
import { VISION } from "./weights.ts";

/** The fields of the CLIP tower's config (vision.ts) that SigLIP has: no BT-Adapter, no CLS to drop. The feature
 * state there is the index into the hidden-state list (−1 → numLayers); maxT bounds one request's memory. */
export type SiglipVisionConfig = Pick<
  VisionConfig,
  "hiddenSize" | "heads" | "eps" | "patchSize" | "imageSize" | "patches" | "maxT" | "featureState"
>;

export function siglipVisionConfig(c: PPLLaVAConfig): SiglipVisionConfig {
  const { hiddenSize, heads, eps, patchSize, imageSize, patches, maxT, featureState } = visionConfig(c);
  return { hiddenSize, heads, eps, patchSize, imageSize, patches, maxT, featureState };
}

export interface SiglipVisionWeights {
  patchEmbedding: Tensor;
  patchBias: Tensor;
  positions: Tensor;
  layers: ClipLayer[];
}

export class SiglipVisionTower {
  private constructor(readonly config: SiglipVisionConfig, readonly w: SiglipVisionWeights) {}

  static async load(p: Params, config: SiglipVisionConfig): Promise<SiglipVisionTower> {
    const layers: ClipLayer[] = [];
    for (let i = 0; i < config.featureState; i++) {
      layers.push(await loadClipLayer(p, `${VISION}.encoder.layers.${i}`, config.heads, config.eps));
    }
    return new SiglipVisionTower(config, {
      patchEmbedding: await p.matrix(`${VISION}.embeddings.patch_embedding.weight`),
      patchBias: await p.vector(`${VISION}.embeddings.patch_embedding.bias`),
      positions: await p.vector(`${VISION}.embeddings.position_embedding.weight`),
      layers,
    });
  }

  /** Throws the typed error for a frame count the tower will not take. */
  checkFrames(frames: number): void {
    if (!Number.isInteger(frames) || frames < 1) {
      throw new ModelError("bad_input", `a visual input needs at least 1 frame, got ${frames}`);
    }
    if (frames > this.config.maxT) {
      throw new ModelError(
        "too_many_frames",
        `${frames} frames, but the config's max_T is ${this.config.maxT} (allowed 1..${this.config.maxT})`,
      );
    }
  }

  /** pixels (N, 3, S, S) → F (N, P, D). `batch` is accepted for the VisionTower signature; frames are independent. */
  forward(b: Backend, pixels: Tensor, _batch = 1, trace?: Trace): Tensor {
    const c = this.config;
    const [n, channels, height, width] = pixels.shape;
    if (pixels.shape.length !== 4 || channels !== 3 || height !== c.imageSize || width !== c.imageSize) {
      throw new ModelError(
        "bad_input",
        `pixels must be (N, 3, ${c.imageSize}, ${c.imageSize}), got [${pixels.shape}]`,
      );
    }
    if (n < 1) throw new ModelError("bad_input", "a visual input needs at least 1 frame, got 0");
    const w = this.w;
    return b.scope(() => {
      // The conv's "valid" padding: 384 = 27·14 + 6, the trailing pixels fall outside every patch.
      const seen = Math.floor(c.imageSize / c.patchSize) * c.patchSize;
      const cropped = seen === c.imageSize ? pixels : b.slice(b.slice(pixels, 2, 0, seen), 3, 0, seen);
      let x = b.add(b.add(b.patchEmbed(cropped, w.patchEmbedding), w.patchBias), w.positions);
      trace?.("vision.embeddings", x);
      trace?.("vision.hs.0", x);
      for (const [i, layer] of w.layers.entries()) {
        x = siglipLayer(b, x, layer);
        trace?.(`vision.hs.${i + 1}`, x);
      }
      trace?.("vision.feature", x);
      return x;
    });
  }
}
