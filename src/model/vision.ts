/**
 * The vision tower (spec §3.3): CLIP ViT (patch embed, CLS, positions, pre_layrnorm, pre-LN layers) with the
 * BT-Adapter beside its last `depth` layers, and the feature F = hs[vision_feature_layer] without the CLS.
 *
 * Streams, as in the spec:
 * - main stream x (B·T, 1+P, D): pure CLIP, every frame on its own;
 * - BT stream x2 (B, 1+P·T, D): one CLS, then the patches patch-major/time-minor (index 1 + p·T + t);
 * - hs[k] for the BT layers is the combine: per frame, CLS from x, patches (x + x2 at the same (p, t))/2.
 * Only the layers the feature needs run (CLIP layers < feature index, the BT layers after them, §3.3
 * "Consequences"). Intermediates carry the reference's names: vision.embeddings, vision.hs.{k}, vision.bt.{j}.in /
 * .temporal / .out, vision.feature.
 */
import type { Backend, Tensor } from "../backend/backend.ts";
import {
  type ClipAttention,
  clipAttention,
  type ClipLayer,
  clipLayer,
  clipMlp,
  loadClipAttention,
  loadClipLayer,
} from "./clip_layer.ts";
import type { PPLLaVAConfig } from "./config.ts";
import { ModelError } from "./errors.ts";
import {
  type LayerNorm,
  layerNorm,
  type Linear,
  linear,
  meanOverAxis1,
  type Params,
  reshape,
  type Trace,
} from "./layers.ts";
import { featureHiddenState, VISION } from "./weights.ts";

export interface VisionConfig {
  hiddenSize: number;
  heads: number;
  eps: number;
  patchSize: number;
  imageSize: number;
  /** Patches per frame (grid²). */
  patches: number;
  numLayers: number;
  /** BT layer j runs after CLIP layer firstBt + j. */
  firstBt: number;
  btDepth: number;
  maxT: number;
  /** Index into the hidden-state list the feature comes from (−2 → numLayers − 1). */
  featureState: number;
  dropCls: boolean;
}

export function visionConfig(c: PPLLaVAConfig): VisionConfig {
  const v = c.vision;
  return {
    hiddenSize: v.hiddenSize,
    heads: v.numHeads,
    eps: v.layerNormEps,
    patchSize: v.patchSize,
    imageSize: v.imageSize,
    patches: v.gridSize * v.gridSize,
    numLayers: v.numLayers,
    firstBt: v.numLayers - v.btDepth,
    btDepth: v.btDepth,
    maxT: v.maxT,
    featureState: featureHiddenState(c),
    dropCls: c.visionFeatureSelectStrategy === "default",
  };
}

interface BtTemporal {
  norm1: LayerNorm;
  attention: ClipAttention;
  temporalFc: Linear;
}

export interface VisionWeights {
  patchEmbedding: Tensor;
  classEmbedding: Tensor;
  positions: Tensor;
  preNorm: LayerNorm;
  layers: ClipLayer[];
  btSpatial: ClipLayer[];
  btTemporal: BtTemporal[];
  timeEmbed?: Tensor;
  btCls?: Tensor;
}

export class VisionTower {
  private constructor(readonly config: VisionConfig, readonly w: VisionWeights) {}

  static async load(p: Params, config: VisionConfig): Promise<VisionTower> {
    const { hiddenSize: d, heads, eps } = config;
    const layers: ClipLayer[] = [];
    // CLIP layer i feeds hs[i + 1]: layers below the feature index are all the feature needs.
    for (let i = 0; i < config.featureState; i++) {
      layers.push(await loadClipLayer(p, `${VISION}.encoder.layers.${i}`, heads, eps));
    }
    const btSpatial: ClipLayer[] = [];
    const btTemporal: BtTemporal[] = [];
    for (let j = 0; j < config.btDepth && config.firstBt + j < config.featureState; j++) {
      btSpatial.push(await loadClipLayer(p, `${VISION}.btadapter_S_layers.${j}`, heads, eps));
      const t = `${VISION}.btadapter_T_layers.${j}`;
      btTemporal.push({
        norm1: await p.layerNorm(`${t}.layer_norm1`, eps),
        attention: await loadClipAttention(p, `${t}.self_attn`, heads),
        temporalFc: await p.linear(`${t}.temporal_fc`),
      });
    }
    const bt = config.btDepth > 0;
    return new VisionTower(config, {
      patchEmbedding: await p.matrix(`${VISION}.embeddings.patch_embedding.weight`),
      classEmbedding: await p.vector(`${VISION}.embeddings.class_embedding`),
      positions: await p.vector(`${VISION}.embeddings.position_embedding.weight`),
      preNorm: await p.layerNorm(`${VISION}.pre_layrnorm`, eps),
      layers,
      btSpatial,
      btTemporal,
      timeEmbed: bt ? await p.vector(`${VISION}.btadapter_time_embed.weight`) : undefined,
      btCls: bt ? await p.vector(`${VISION}.btadapter_cls_token`, [1, 1, d]) : undefined,
    });
  }

  /** Throws the typed error for a frame count the tower cannot take. */
  checkFrames(frames: number): void {
    if (!Number.isInteger(frames) || frames < 1) {
      throw new ModelError("bad_input", `a visual input needs at least 1 frame, got ${frames}`);
    }
    if (frames > this.config.maxT) {
      throw new ModelError(
        "too_many_frames",
        `${frames} frames, but the BT-Adapter's time table has max_T = ${this.config.maxT} rows (allowed 1..${this.config.maxT})`,
      );
    }
  }

  /** pixels (B·T, 3, S, S) of `batch` inputs with T frames each → F (B·T, P, D) (P + 1 rows with the CLS kept). */
  forward(b: Backend, pixels: Tensor, batch = 1, trace?: Trace): Tensor {
    const c = this.config;
    const w = this.w;
    const n = pixels.shape[0];
    const t = n / batch;
    if (!Number.isInteger(t) || pixels.shape.length !== 4 || pixels.shape[1] !== 3) {
      throw new ModelError(
        "bad_input",
        `pixels must be (B·T, 3, ${c.imageSize}, ${c.imageSize}) with B = ${batch}, got [${pixels.shape}]`,
      );
    }
    if (pixels.shape[2] !== c.imageSize || pixels.shape[3] !== c.imageSize) {
      throw new ModelError(
        "bad_input",
        `frames must be ${c.imageSize}×${c.imageSize}, got ${pixels.shape[2]}×${pixels.shape[3]}`,
      );
    }
    this.checkFrames(t);
    const d = c.hiddenSize;
    // Embeddings: conv patches (row-major over the grid), CLS first, positions, pre_layrnorm.
    const cls = b.expand(w.classEmbedding, [n, 1, d]);
    let x = b.concat([cls, b.patchEmbed(pixels, w.patchEmbedding)], 1);
    x = layerNorm(b, b.add(x, w.positions), w.preNorm);
    trace?.("vision.embeddings", x);
    trace?.("vision.hs.0", x);
    let x2: Tensor | undefined; // the BT stream
    let hs = x;
    for (let idx = 0; idx < c.featureState; idx++) {
      // One scope per layer, and the previous layer's outputs freed once used: the live set is one layer's
      // intermediates (≈ 1.4 GB for CLIP-L at T = 32), not all 24 layers' (memory_plan.ts counts on it).
      const before = { x, x2, hs };
      const next = b.scope(() => {
        const nx = b.scope(() => clipLayer(b, before.x, w.layers[idx]));
        let nx2 = before.x2;
        let nhs = nx;
        const j = idx - c.firstBt;
        if (j >= 0 && j < w.btSpatial.length) {
          // Each BT step in its own scope too: they copy whole streams (concat, patch-major ↔ frame-major).
          const x2In = b.scope(() =>
            j === 0 ? this.#btInit(b, nx, batch, t) : b.add(nx2!, this.#lift(b, nx, batch, t))
          );
          trace?.(`vision.bt.${j}.in`, x2In);
          const temporal = b.scope(() => this.#temporal(b, x2In, w.btTemporal[j], batch, t));
          trace?.(`vision.bt.${j}.temporal`, temporal);
          x2In.dispose();
          nx2 = b.scope(() => this.#spatial(b, temporal, w.btSpatial[j], batch, t));
          trace?.(`vision.bt.${j}.out`, nx2);
          temporal.dispose();
          nhs = b.scope(() => this.#combine(b, nx, nx2!, batch, t));
        }
        trace?.(`vision.hs.${idx + 1}`, nhs);
        return { x: nx, x2: nx2, hs: nhs };
      });
      ({ x, hs } = next);
      x2 = next.x2;
      before.x.dispose();
      if (before.hs !== before.x) before.hs.dispose();
      if (before.x2 && before.x2 !== x2) before.x2.dispose();
    }
    const feature = c.dropCls ? b.contiguous(b.slice(hs, 1, 1, hs.shape[1])) : hs;
    trace?.("vision.feature", feature);
    return feature;
  }

  /** BT layer 0's input ("input_ini"): CLS = (mean_t CLIP CLS + (bt_cls + pos[0]))/2; patches + pos + time_embed[t]. */
  #btInit(b: Backend, x: Tensor, batch: number, t: number): Tensor {
    const w = this.w;
    const [, l, d] = x.shape;
    const clsOld = meanOverAxis1(b, reshape(b, b.slice(x, 1, 0, 1), [batch, t, d])); // (B, 1, D)
    const clsNew = b.reshape(b.add(w.btCls!, b.slice(w.positions, 0, 0, 1)), [d]); // the same row for every frame
    const cls = b.scale(b.add(clsOld, clsNew), 0.5);
    const patches = b.add(b.slice(x, 1, 1, l), b.slice(w.positions, 0, 1, l)); // (B·T, P, D)
    // Patch-major (B, P, T, D): time row t is then a trailing (T, D) block added to every patch.
    const byPatch = b.reshape(this.#patchMajor(b, reshape(b, patches, [batch, t, l - 1, d]), batch, t), [
      batch,
      l - 1,
      t,
      d,
    ]);
    const timed = b.add(byPatch, b.slice(w.timeEmbed!, 0, 0, t));
    return b.concat([cls, b.reshape(timed, [batch, (l - 1) * t, d])], 1);
  }

  /** [mean_t CLS ; patches patch-major/time-minor] of a main-stream output (the `lift` of spec §10). */
  #lift(b: Backend, x: Tensor, batch: number, t: number): Tensor {
    const [, l, d] = x.shape;
    const cls = meanOverAxis1(b, reshape(b, b.slice(x, 1, 0, 1), [batch, t, d]));
    const patches = reshape(b, b.slice(x, 1, 1, l), [batch, t, l - 1, d]);
    return b.concat([cls, this.#patchMajor(b, patches, batch, t)], 1);
  }

  /** (B, T, P, D) frame-major → (B, P·T, D) patch-major/time-minor. */
  #patchMajor(b: Backend, frames: Tensor, batch: number, t: number): Tensor {
    const [, , p, d] = frames.shape;
    return b.reshape(b.contiguous(b.permute(frames, [0, 2, 1, 3])), [batch, p * t, d]);
  }

  /** (B, P·T, D) patch-major → (B·T, P, D) frame-major. */
  #frameMajor(b: Backend, patches: Tensor, batch: number, t: number): Tensor {
    const d = patches.shape[2];
    const p = patches.shape[1] / t;
    const view = reshape(b, patches, [batch, p, t, d]);
    return b.reshape(b.contiguous(b.permute(view, [0, 2, 1, 3])), [batch * t, p, d]);
  }

  /** T_j: the CLS is untouched; each patch's T steps attend over time; patches += temporal_fc(Attn(LN1)). */
  #temporal(b: Backend, x2: Tensor, w: BtTemporal, batch: number, t: number): Tensor {
    const [, rows, d] = x2.shape;
    const p = (rows - 1) / t;
    const tokens = reshape(b, b.slice(x2, 1, 1, rows), [batch * p, t, d]);
    const h = linear(b, clipAttention(b, layerNorm(b, tokens, w.norm1), w.attention, false), w.temporalFc);
    return b.concat([b.slice(x2, 1, 0, 1), b.reshape(b.add(tokens, h), [batch, p * t, d])], 1);
  }

  /** S_j: per frame [CLS ; its patches] attention, CLS averaged over T; then the MLP half of a CLIP layer. */
  #spatial(b: Backend, x2: Tensor, w: ClipLayer, batch: number, t: number): Tensor {
    const [, rows, d] = x2.shape;
    const p = (rows - 1) / t;
    const cls = b.slice(x2, 1, 0, 1); // (B, 1, D)
    // The same CLS in front of every frame (frame order b·T + t).
    const perFrame = b.expand(b.reshape(cls, [batch, 1, 1, d]), [batch, t, 1, d]);
    const clsPerFrame = b.reshape(b.contiguous(perFrame), [batch * t, 1, d]);
    const seq = b.concat([clsPerFrame, this.#frameMajor(b, b.slice(x2, 1, 1, rows), batch, t)], 1);
    const h = clipAttention(b, layerNorm(b, seq, w.norm1), w.attention, false); // (B·T, 1+P, D)
    const newCls = meanOverAxis1(b, reshape(b, b.slice(h, 1, 0, 1), [batch, t, d]));
    const newPatches = this.#patchMajor(b, reshape(b, b.slice(h, 1, 1, p + 1), [batch, t, p, d]), batch, t);
    const x = b.add(x2, b.concat([newCls, newPatches], 1));
    return b.add(x, clipMlp(b, layerNorm(b, x, w.norm2), w.mlp));
  }

  /** hs entry of a BT layer: per frame, CLS from the main stream, patches (main + BT at the same (p, t))/2. */
  #combine(b: Backend, x: Tensor, x2: Tensor, batch: number, t: number): Tensor {
    const [, l] = x.shape;
    const bt = this.#frameMajor(b, b.slice(x2, 1, 1, x2.shape[1]), batch, t);
    const patches = b.scale(b.add(b.slice(x, 1, 1, l), bt), 0.5);
    return b.concat([b.slice(x, 1, 0, 1), patches], 1);
  }
}
