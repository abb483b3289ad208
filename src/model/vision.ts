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
 *
 * The main stream is the per-frame part (`FrameWeights`, `embedFrames`, `clipLayer`): with `FrameWorkers`
 * (vision_split.ts) the first frames run here and the rest in workers, each with its own WASM instance and copy of
 * those weights, and their x comes back at the hidden states the BT stream (or a trace) needs; the BT-Adapter runs
 * here on every frame. The same kernels see the same rows of each frame either way, so the result is the same to the
 * bit (tests/vision_workers.test.ts).
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
  type TensorSource,
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

/** The per-frame part: embeddings and the CLIP layers below the feature index (what a frame worker holds). */
export interface FrameWeights {
  patchEmbedding: Tensor;
  classEmbedding: Tensor;
  positions: Tensor;
  preNorm: LayerNorm;
  layers: ClipLayer[];
}

export async function loadFrameWeights(p: TensorSource, config: VisionConfig): Promise<FrameWeights> {
  const layers: ClipLayer[] = [];
  // CLIP layer i feeds hs[i + 1]: layers below the feature index are all the feature needs.
  for (let i = 0; i < config.featureState; i++) {
    layers.push(await loadClipLayer(p, `${VISION}.encoder.layers.${i}`, config.heads, config.eps));
  }
  return {
    patchEmbedding: await p.matrix(`${VISION}.embeddings.patch_embedding.weight`),
    classEmbedding: await p.vector(`${VISION}.embeddings.class_embedding`),
    positions: await p.vector(`${VISION}.embeddings.position_embedding.weight`),
    preNorm: await p.layerNorm(`${VISION}.pre_layrnorm`, config.eps),
    layers,
  };
}

/** pixels (N, 3, S, S) → hs[0] (N, 1+P, D): conv patches (row-major over the grid), CLS first, positions, pre-LN. */
export function embedFrames(b: Backend, w: FrameWeights, pixels: Tensor): Tensor {
  return b.scope(() => {
    const n = pixels.shape[0];
    const cls = b.expand(w.classEmbedding, [n, 1, w.classEmbedding.shape[0]]);
    const x = b.concat([cls, b.patchEmbed(pixels, w.patchEmbedding)], 1);
    return layerNorm(b, b.add(x, w.positions), w.preNorm);
  });
}

/**
 * Frames of the main stream run elsewhere (vision_split.ts: workers). Of n frames the first `localFrames(n)` run on
 * this instance; `start` sends the rest and returns `at(k)`: the workers' x at hidden state k (their frames in order,
 * on the host) for every k of `wanted`, ascending. The promises of `at` must all be awaited or dropped: a failed
 * worker rejects them with its `WorkerError`.
 */
export interface FrameWorkers {
  localFrames(n: number): number;
  /** Throws the workers' failure at once when they have already failed. */
  start(pixels: Float32Array, frames: number, wanted: readonly number[]): (k: number) => Promise<HostTensor[]>;
  /** The error that ended the workers (a crash, a stall, `dispose`), once they are gone. */
  readonly failed: Error | null;
  /** Ends the workers (the model's `dispose`). */
  dispose(): void;
}

export interface HostTensor {
  data: Float32Array;
  shape: number[];
}

export interface VisionWeights extends FrameWeights {
  btSpatial: ClipLayer[];
  btTemporal: BtTemporal[];
  timeEmbed?: Tensor;
  btCls?: Tensor;
}

export class VisionTower {
  private constructor(
    readonly config: VisionConfig,
    readonly w: VisionWeights,
    /** Where frames past the local ones run (loadModel's `visionWorkers`); none: every frame here. */
    readonly workers?: FrameWorkers,
  ) {}

  static async load(p: Params, config: VisionConfig, workers?: FrameWorkers): Promise<VisionTower> {
    const { hiddenSize: d, heads, eps } = config;
    const frames = await loadFrameWeights(p, config);
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
      ...frames,
      btSpatial,
      btTemporal,
      timeEmbed: bt ? await p.vector(`${VISION}.btadapter_time_embed.weight`) : undefined,
      btCls: bt ? await p.vector(`${VISION}.btadapter_cls_token`, [1, 1, d]) : undefined,
    }, workers);
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

  /** pixels (B·T, 3, S, S) of `batch` inputs with T frames each → F (B·T, P, D) (P + 1 rows with the CLS kept).
   * With `workers`, frames past the local ones run their CLIP layers there (a failed worker: its `WorkerError`). */
  async forward(b: Backend, pixels: Tensor, batch = 1, trace?: Trace): Promise<Tensor> {
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
    const isBt = (k: number) => k - 1 - c.firstBt >= 0 && k - 1 - c.firstBt < w.btSpatial.length;
    // The hidden states every frame's x is needed at: each BT layer's input, the feature's, all of them when traced.
    const wanted: number[] = [];
    for (let k = 0; k <= c.featureState; k++) if (trace || isBt(k) || k === c.featureState) wanted.push(k);
    const local = this.workers?.localFrames(n) ?? n;
    const remote = local < n ? this.workers!.start(await framesAfter(b, pixels, local), n - local, wanted) : undefined;

    let x = b.scope(() => embedFrames(b, w, local < n ? b.slice(pixels, 0, 0, local) : pixels)); // the local frames
    let x2: Tensor | undefined; // the BT stream
    let all: Tensor | undefined; // every frame's x (x itself without workers)
    let hs: Tensor | undefined; // the hidden state: `all`, or its combine with x2 after a BT layer
    let feature: Tensor | undefined;
    try {
      for (let k = 0; k <= c.featureState; k++) {
        if (k > 0) {
          // One scope per layer, and the previous layer's outputs freed once used: the live set is one layer's
          // intermediates (≈ 1.4 GB for CLIP-L at T = 32), not all 24 layers' (memory_plan.ts counts on it).
          const next = b.scope(() => clipLayer(b, x, w.layers[k - 1]));
          x.dispose();
          x = next;
          if (remote) await this.#workersAlive();
        }
        if (!wanted.includes(k)) continue;
        all = remote ? await withRemote(b, x, remote(k)) : x;
        hs = all;
        if (isBt(k)) {
          x2 = this.#btLayer(b, k - 1 - c.firstBt, all, x2, batch, t, trace);
          hs = b.scope(() => this.#combine(b, all!, x2!, batch, t));
        }
        if (k === 0) trace?.("vision.embeddings", hs);
        trace?.(`vision.hs.${k}`, hs);
        if (k === c.featureState) break;
        for (const done of [hs, all]) if (done !== x) done.dispose();
      }
      feature = c.dropCls ? b.scope(() => b.contiguous(b.slice(hs!, 1, 1, hs!.shape[1]))) : hs!;
      trace?.("vision.feature", feature);
      return feature;
    } finally {
      for (const held of [x, x2, all, hs]) if (held && held !== feature) held.dispose();
    }
  }

  /** Lets the workers' messages in between two local layers (seconds each for CLIP-L), so that a worker that died
   * fails the forward now rather than after the local frames' last layer. */
  async #workersAlive(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (this.workers!.failed) throw this.workers!.failed;
  }

  /** BT layer j on every frame's x after CLIP layer firstBt + j → the new BT stream (x2, the previous one, is freed). */
  #btLayer(b: Backend, j: number, x: Tensor, x2: Tensor | undefined, batch: number, t: number, trace?: Trace) {
    const w = this.w;
    // Each BT step in its own scope: they copy whole streams (concat, patch-major ↔ frame-major).
    const x2In = b.scope(() => j === 0 ? this.#btInit(b, x, batch, t) : b.add(x2!, this.#lift(b, x, batch, t)));
    x2?.dispose();
    try {
      trace?.(`vision.bt.${j}.in`, x2In);
      const temporal = b.scope(() => this.#temporal(b, x2In, w.btTemporal[j], batch, t));
      try {
        trace?.(`vision.bt.${j}.temporal`, temporal);
        const out = b.scope(() => this.#spatial(b, temporal, w.btSpatial[j], batch, t));
        trace?.(`vision.bt.${j}.out`, out);
        return out;
      } finally {
        temporal.dispose();
      }
    } finally {
      x2In.dispose();
    }
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

/** Frames [from, N) of pixels (N, 3, S, S), on the host. */
async function framesAfter(b: Backend, pixels: Tensor, from: number): Promise<Float32Array> {
  const rest = b.scope(() => b.contiguous(b.slice(pixels, 0, from, pixels.shape[0])));
  try {
    return await b.download(rest);
  } finally {
    rest.dispose();
  }
}

/** The local frames' x followed by the workers' (every frame, in order), as one new tensor. */
async function withRemote(b: Backend, x: Tensor, remote: Promise<HostTensor[]>): Promise<Tensor> {
  const parts = await remote;
  return b.scope(() => b.concat([x, ...parts.map((p) => b.upload(p.data, p.shape))], 0));
}
