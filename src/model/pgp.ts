/**
 * Prompt-guided pooling and the projector (spec §3.4, steps A–F), in the pool-after-GELU form:
 *
 *   E_v = W_vproj · LN_post(F)                          (A: dense CLIP embeddings of every patch, n = t·P + row·W + col)
 *   p   = softmax_n(exp(logit_scale) · cos(E_v[n], e_t)) (C: one softmax over all T·P tokens; reshaped (T, H, W))
 *   G'  = GELU(W1 · F + b1)                              (D: linear_1 + exact GELU on every token)
 *   Y'  = Σ_window softmax(p_win / τ) · G'_win           (E: window softmax of the probabilities, kernel/stride)
 *   V   = W2 · Y' + b2                                   (linear_2 on the pooled tokens only; exact since Σα = 1)
 *
 * V comes out in (t', row', col') order (F). Names traced: pgp.visual_embeds, pgp.relevance, projector.gelu,
 * pgp.pooled_hidden, pgp.pooled. `getSize` is upstream's sizing of step E, all four modes.
 */
import type { Backend, Tensor } from "../backend/backend.ts";
import type { PPLLaVAConfig, Triple } from "./config.ts";
import { ModelError } from "./errors.ts";
import { type LayerNorm, layerNorm, type Linear, linear, type Params, type Trace } from "./layers.ts";
import { loadSiglipPatchHead, siglipPatchEmbeddings, type SiglipPatchHead } from "./pgp_siglip.ts";
import { PROJECTOR } from "./weights.ts";

export interface PgpConfig {
  /** Step A's visual embedding: "clip" W_vproj·LN(F); "siglip" the patch-level head of §9 (pgp_siglip.ts). */
  visual: "clip" | "siglip";
  frameShape: readonly [number, number];
  temperature: number;
  video: PoolingMode;
  image: PoolingMode;
  eps: number;
}

/** Two of {output, kernel, stride} (or output alone); null = not given. */
export interface PoolingMode {
  kernel: Triple | null;
  stride: Triple | null;
  output: Triple | null;
}

export function pgpConfig(c: PPLLaVAConfig): PgpConfig {
  const p = c.pooling;
  return {
    visual: c.vision.arch,
    frameShape: p.frameShape,
    temperature: p.temperature,
    video: { kernel: p.kernel, stride: p.stride, output: p.outputShape },
    // pllava_pooling_shape is read for video only; images pool with their kernel/stride (tests/oracles/README.md).
    image: { kernel: p.imageKernel, stride: p.imageStride, output: null },
    eps: c.vision.layerNormEps,
  };
}

export interface AxisSize {
  output: number;
  kernel: number;
  stride: number;
}

/** `get_size` for one axis of length `size` (§3.4 step E). */
export function getSize(size: number, output: number | null, kernel: number | null, stride: number | null): AxisSize {
  if (output === null) {
    if (kernel === null || stride === null) {
      throw new ModelError("bad_pooling", "pooling needs kernel and stride when no output size is given");
    }
    if (size < kernel) {
      throw new ModelError("too_few_frames", `an axis of ${size} is shorter than the pooling kernel ${kernel}`);
    }
    return { output: Math.floor((size - kernel) / stride) + 1, kernel, stride };
  }
  if (!Number.isInteger(output) || output < 1 || output > size) {
    throw new ModelError("bad_pooling", `output size ${output} for an axis of ${size} (allowed 1..${size})`);
  }
  if (kernel === null && stride === null) {
    const s = Math.floor(size / output);
    return { output, kernel: size - (output - 1) * s, stride: s };
  }
  if (kernel === null) return { output, kernel: size - (output - 1) * stride!, stride: stride! };
  if (stride === null) {
    if (output === 1) {
      throw new ModelError(
        "bad_pooling",
        "output 1 with a given kernel leaves the stride undefined (upstream divides by 0)",
      );
    }
    return { output, kernel, stride: Math.floor((size - kernel) / (output - 1)) };
  }
  throw new ModelError("bad_pooling", "give at most two of output size, kernel and stride");
}

/** Sizes of the three axes (T, H, W) for a mode; checks the result is a valid window grid. */
export function poolingSizes(dims: Triple, mode: PoolingMode): [AxisSize, AxisSize, AxisSize] {
  const sizes = dims.map((d, a) => {
    const kernel = mode.kernel?.[a] ?? null;
    try {
      return getSize(d, mode.output?.[a] ?? null, kernel, mode.stride?.[a] ?? null);
    } catch (error) {
      if (!(error instanceof ModelError) || error.code !== "too_few_frames") throw error;
      // Only time can be short: the patch grid is fixed by the config.
      if (a === 0) {
        throw new ModelError("too_few_frames", `${d} frame(s), but the temporal pooling kernel is ${kernel}`);
      }
      throw new ModelError("bad_pooling", `a frame axis of ${d} patches is shorter than the kernel ${kernel}`);
    }
  });
  for (const [a, s] of sizes.entries()) {
    if (s.kernel < 1 || s.stride < 1 || (s.output - 1) * s.stride + s.kernel > dims[a]) {
      throw new ModelError(
        "bad_pooling",
        `axis ${a}: kernel ${s.kernel}, stride ${s.stride}, output ${s.output} do not fit ${dims[a]}`,
      );
    }
  }
  return sizes as [AxisSize, AxisSize, AxisSize];
}

export interface PgpWeights {
  visualNorm: LayerNorm;
  /** "clip": `clip_visual_projection`; "siglip": absent (the patch head below). */
  visualProjection?: Tensor;
  patchHead?: SiglipPatchHead;
  linear1: Linear;
  linear2: Linear;
  /** exp(logit_scale) = 100 in CLIP. */
  scale: number;
}

export interface PoolOptions {
  /** Video pooling (default) or image pooling (1,3,3). */
  video?: boolean;
  /** Overrides of the configured mode (give two of three, or output alone). */
  kernel?: Triple | null;
  stride?: Triple | null;
  output?: Triple | null;
  /** "prompt" (default): the window softmax of p/τ. "uniform": plain average pooling at the same windows — what
   * PGP is measured against (the ablation of issue 4); not PPLLaVA's behaviour. */
  weights?: "prompt" | "uniform";
  trace?: Trace;
}

export class PgpProjector {
  private constructor(readonly config: PgpConfig, readonly w: PgpWeights) {}

  static async load(p: Params, config: PgpConfig): Promise<PgpProjector> {
    if (config.visual === "siglip") {
      return new PgpProjector(config, {
        visualNorm: await p.layerNorm(`${PROJECTOR}.clip_visual_ln`, config.eps),
        patchHead: await loadSiglipPatchHead(p, config.eps),
        linear1: await p.linear(`${PROJECTOR}.linear_1`),
        linear2: await p.linear(`${PROJECTOR}.linear_2`),
        // exp(logit_scale)·cos + logit_bias: the bias shifts every logit alike and drops out of the softmax.
        scale: Math.exp((await p.host(`${PROJECTOR}.logit_scale`))[0]),
      });
    }
    return new PgpProjector(config, {
      visualNorm: await p.layerNorm(`${PROJECTOR}.clip_visual_ln`, config.eps),
      visualProjection: await p.matrix(`${PROJECTOR}.clip_visual_projection.weight`),
      linear1: await p.linear(`${PROJECTOR}.linear_1`),
      linear2: await p.linear(`${PROJECTOR}.linear_2`),
      scale: Math.exp((await p.host(`${PROJECTOR}.logit_scale`))[0]),
    });
  }

  /** The pooling mode of one request: the configured one, or the caller's overrides. */
  mode(options: PoolOptions = {}): PoolingMode {
    const base = options.video === false ? this.config.image : this.config.video;
    if (options.kernel === undefined && options.stride === undefined && options.output === undefined) return base;
    return { kernel: options.kernel ?? null, stride: options.stride ?? null, output: options.output ?? null };
  }

  /** The sizes a feature of `frames` frames pools to; throws the typed error before any compute. */
  sizes(frames: number, options: PoolOptions = {}): [AxisSize, AxisSize, AxisSize] {
    const [h, w] = this.config.frameShape;
    return poolingSizes([frames, h, w], this.mode(options));
  }

  /** F (T, P, D) + e_t (proj,) → V (T'·H'·W', hidden) in (t', row', col') order. */
  forward(b: Backend, feature: Tensor, textEmbed: Tensor, options: PoolOptions = {}): Tensor {
    const { trace } = options;
    const w = this.w;
    const [t, patches] = feature.shape;
    const [gh, gw] = this.config.frameShape;
    if (gh * gw !== patches) {
      throw new ModelError("bad_input", `frame_shape ${gh}×${gw} does not match ${patches} patches`);
    }
    const sizes = this.sizes(t, options);
    // A: dense CLIP embeddings of every patch.
    const normed = layerNorm(b, feature, w.visualNorm);
    const embeds = w.patchHead ? siglipPatchEmbeddings(b, normed, w.patchHead) : b.linear(normed, w.visualProjection!);
    const visual = b.reshape(embeds, [t * patches, embeds.shape[2]]);
    trace?.("pgp.visual_embeds", visual);
    // C: cosine relevance, one softmax over all T·P tokens.
    const relevance = b.reshape(b.relevance(visual, textEmbed, w.scale), [t, gh, gw]);
    trace?.("pgp.relevance", relevance);
    // D: linear_1 + exact GELU on every token.
    const hidden = b.gelu(linear(b, feature, w.linear1));
    const width = hidden.shape[2];
    if (trace) {
      trace("projector.gelu", b.reshape(hidden, [t * patches, width]));
      // Only for the trace: the plain form linear_2 on every token (pooling after it must equal V below).
      trace("projector.out", b.reshape(linear(b, hidden, w.linear2), [t * patches, width]));
      const alphas = windowWeights(b, relevance, sizes, this.config.temperature);
      if (alphas) trace("pgp.window_weights", alphas);
    }
    // E: window softmax of p/τ, weighted sum (after the GELU), then linear_2 on the pooled tokens only.
    const weights = options.weights === "uniform" ? null : relevance;
    let pooled = b.windowPool(b.reshape(hidden, [t, gh, gw, width]), weights, {
      kernel: [sizes[0].kernel, sizes[1].kernel, sizes[2].kernel],
      stride: [sizes[0].stride, sizes[1].stride, sizes[2].stride],
      tau: this.config.temperature,
    });
    // Upstream takes exactly `output` windows per axis (in the output + kernel mode the stride could fit more).
    for (let a = 0; a < 3; a++) if (pooled.shape[a] > sizes[a].output) pooled = b.slice(pooled, a, 0, sizes[a].output);
    const count = sizes[0].output * sizes[1].output * sizes[2].output;
    const pooledHidden = b.reshape(b.contiguous(pooled), [count, width]);
    trace?.("pgp.pooled_hidden", pooledHidden);
    const out = linear(b, pooledHidden, w.linear2);
    trace?.("pgp.pooled", out);
    return out;
  }
}

/**
 * The window weights α = softmax(p_win/τ) as (windows, cells), cells in (t, h, w) order, for the trace: the same
 * windowPool kernel run on one-hot rows (row = the cell's index inside its window). Exact for non-overlapping
 * windows (kernel = stride, every shipped mode); undefined otherwise.
 */
function windowWeights(b: Backend, p: Tensor, sizes: readonly AxisSize[], tau: number): Tensor | undefined {
  if (sizes.some((s) => s.kernel !== s.stride)) return undefined;
  const [t, h, w] = p.shape;
  const [kt, kh, kw] = sizes.map((s) => s.kernel);
  const cells = kt * kh * kw;
  const oneHot = new Float32Array(t * h * w * cells);
  for (let i = 0; i < t; i++) {
    for (let j = 0; j < h; j++) {
      for (let l = 0; l < w; l++) {
        oneHot[((i * h + j) * w + l) * cells + ((i % kt) * kh + (j % kh)) * kw + (l % kw)] = 1;
      }
    }
  }
  const pooled = b.windowPool(b.upload(oneHot, [t, h, w, cells]), p, {
    kernel: [kt, kh, kw],
    stride: [kt, kh, kw],
    tau,
  });
  const count = sizes.reduce((n, s) => n * s.output, 1);
  return b.reshape(
    b.contiguous(
      b.slice(b.slice(b.slice(pooled, 0, 0, sizes[0].output), 1, 0, sizes[1].output), 2, 0, sizes[2].output),
    ),
    [count, cells],
  );
}

/** Prompt-guided pooling of visual features F (T, P, D) with a text embedding e_t: the public entry of §3.4. */
export function promptGuidedPooling(
  b: Backend,
  projector: PgpProjector,
  feature: Tensor,
  textEmbed: Tensor,
  options: PoolOptions = {},
): Tensor {
  return b.scope(() => projector.forward(b, feature, textEmbed, options));
}
