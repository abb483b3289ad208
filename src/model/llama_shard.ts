/**
 * One tensor-parallel slice of the LLaMA decoder (Megatron style), written against the Backend interface so it runs
 * inside a worker's own WASM instance (llm_worker.ts) or, for tests, on any backend. Worker w of W holds, for every
 * layer: the q/k/v rows of its KV-head group (and the query heads that share those KV heads), the o_proj columns
 * of its query heads, the gate/up rows of its slice of the MLP and the down_proj columns of that slice; plus its
 * slice of lm_head's vocabulary rows. Each phase returns a partial sum of the full layer's output:
 *
 *   attention(x) = o_proj[:, heads_w] · Attn_w(RMSNorm_in(x))        Σ_w attention_w(x) = o_proj(Attn(…))
 *   mlp(h)       = down[:, I_w] · (silu(gate[I_w] m) ⊙ up[I_w] m)     m = RMSNorm_post(h)
 *
 * The W partials and the residual are added by all_reduce.ts (or sharded_llama.ts when traced). The RMSNorms are
 * recomputed by every shard from its copy of the full residual stream (H values per row: cheaper than another
 * exchange).
 */
import { type Backend, type DType, QUANT_GROUP, type Tensor } from "../backend/backend.ts";
import { KvCache } from "../backend/kv_cache.ts";
import type { LlamaConfig, LlamaLayer } from "./llama.ts";
import { ModelError } from "./errors.ts";
import { type Range, splitEvenly, type TensorSpec } from "./worker_tensors.ts";

export interface ShardRanges {
  /** KV heads of this shard; its query heads are these times heads/kvHeads. */
  kvHeads: Range;
  heads: Range;
  /** Rows of gate/up, columns of down. */
  mlp: Range;
  /** Rows of lm_head. */
  vocab: Range;
}

/** How `shards` workers split a LLaMA: by KV-head groups, MLP rows and vocabulary rows. */
export function shardRanges(c: LlamaConfig, shards: number): ShardRanges[] {
  if (!Number.isInteger(shards) || shards < 1 || shards > c.kvHeads) {
    throw new ModelError(
      "bad_input",
      `the LLM splits into 1..${c.kvHeads} shards (one KV head each at least), not ${shards}`,
    );
  }
  const group = c.heads / c.kvHeads;
  const kv = splitEvenly(c.kvHeads, shards);
  // MLP slices in whole groups of 32 columns where possible, so a shard's down_proj columns quantise into exactly
  // the groups of the unsplit matrix (same q8/q4 values as one instance: docs/quantization.md).
  const unit = c.intermediateSize % QUANT_GROUP === 0 && c.intermediateSize / QUANT_GROUP >= shards ? QUANT_GROUP : 1;
  const mlp = splitEvenly(c.intermediateSize / unit, shards).map(([a, b]) => [a * unit, b * unit] as const);
  const vocab = splitEvenly(c.vocabSize, shards);
  return kv.map((k, w) => ({ kvHeads: k, heads: [k[0] * group, k[1] * group], mlp: mlp[w], vocab: vocab[w] }));
}

/** A LLaMA layer's tensors, sliced: q/k/v (and Qwen2's biases) rows of this shard's heads, o_proj columns of those
 * heads (H, heads·hd), gate/up rows of its MLP slice and down_proj columns of that slice (H, |mlp|). */
export type ShardLayer = LlamaLayer;

export interface ShardWeights {
  layers: ShardLayer[];
  norm: Tensor;
  /** lm_head rows of this shard's vocabulary slice: (|vocab|, H). */
  lmHead: Tensor;
}

/** The KV caches of one generation on one shard. */
export class ShardSession {
  caches: KvCache[];
  batch = 1;

  constructor(readonly b: Backend, readonly shard: LlamaShard, readonly capacity: number) {
    this.caches = this.#make(1);
  }

  get length(): number {
    return this.caches[0].length;
  }

  /** Beam search: same moves as LlamaSession.reorder. */
  reorder(from: readonly number[]): void {
    if (from.length === this.batch && from.every((row, i) => row === i)) return;
    if (from.length === this.batch) {
      for (const cache of this.caches) cache.reorder(from);
      return;
    }
    const b = this.b;
    const next = this.#make(from.length);
    for (const [layer, cache] of this.caches.entries()) {
      b.scope(() => {
        const { keys, values } = cache.view();
        const gather = (t: Tensor) => b.concat(from.map((r) => b.slice(t, 0, r, r + 1)), 0);
        next[layer].append(gather(keys), gather(values));
      });
      cache.dispose();
    }
    this.caches = next;
    this.batch = from.length;
  }

  dispose(): void {
    for (const cache of this.caches) cache.dispose();
  }

  #make(batch: number): KvCache[] {
    const { config: c, ranges } = this.shard;
    const kvHeads = ranges.kvHeads[1] - ranges.kvHeads[0];
    return Array.from(
      { length: c.numLayers },
      () => new KvCache(this.b, { batch, kvHeads, headDim: c.headDim, capacity: this.capacity }),
    );
  }
}

export class LlamaShard {
  constructor(readonly config: LlamaConfig, readonly ranges: ShardRanges, readonly w: ShardWeights) {}

  /** x (B, L, H) → this shard's part of o_proj(Attn(RMSNorm_in(x))) (B, L, H); appends to the session's cache. */
  attention(b: Backend, x: Tensor, layer: number, session: ShardSession): Tensor {
    const c = this.config;
    const w = this.w.layers[layer];
    const cache = session.caches[layer];
    const [batch, length] = x.shape;
    const heads = this.ranges.heads[1] - this.ranges.heads[0];
    const kvHeads = this.ranges.kvHeads[1] - this.ranges.kvHeads[0];
    const offset = cache.length;
    return b.scope(() => {
      const n = b.rmsNorm(x, w.inputNorm, c.eps);
      const split = (weight: Tensor, count: number, bias?: Tensor) =>
        b.reshape(b.linear(n, weight, bias), [batch, length, count, c.headDim]);
      const q = b.permute(b.rope(split(w.q, heads, w.qBias), { theta: c.ropeTheta, offset }), [0, 2, 1, 3]);
      const k = b.permute(b.rope(split(w.k, kvHeads, w.kBias), { theta: c.ropeTheta, offset }), [0, 2, 1, 3]);
      const v = b.permute(split(w.v, kvHeads, w.vBias), [0, 2, 1, 3]);
      cache.append(k, v);
      const { keys, values } = cache.view();
      const att = b.attention(q, keys, values, { causal: true });
      const merged = b.reshape(b.permute(att, [0, 2, 1, 3]), [batch, length, heads * c.headDim]);
      return b.linear(merged, w.o);
    });
  }

  /** h (B, L, H) → this shard's part of the MLP output (B, L, H). */
  mlp(b: Backend, h: Tensor, layer: number): Tensor {
    const w = this.w.layers[layer];
    return b.scope(() => {
      const m = b.rmsNorm(h, w.postNorm, this.config.eps);
      return b.linear(b.siluMul(b.linear(m, w.gate), b.linear(m, w.up)), w.down);
    });
  }

  /** x (B, L, H), already the rows wanted → this shard's logits (B, L, |vocab|). */
  logits(b: Backend, x: Tensor): Tensor {
    return b.scope(() => b.linear(b.rmsNorm(x, this.w.norm, this.config.eps), this.w.lmHead));
  }
}

/** Every tensor shard `ranges` needs, with the slices to cut (the loader on the main thread walks this list). */
export function shardTensorSpecs(
  c: LlamaConfig,
  r: ShardRanges,
  prefix: string,
  tiedEmbeddings: boolean,
): TensorSpec[] {
  const hd = c.headDim;
  const q: Range = [r.heads[0] * hd, r.heads[1] * hd];
  const kv: Range = [r.kvHeads[0] * hd, r.kvHeads[1] * hd];
  const specs: TensorSpec[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `${prefix}.model.layers.${i}`;
    const m = (key: string, source: string, axis: 0 | 1, range: Range) =>
      specs.push({ key: `layers.${i}.${key}`, source: `${p}.${source}`, take: { axis, range }, kind: "matrix" });
    specs.push({ key: `layers.${i}.inputNorm`, source: `${p}.input_layernorm.weight`, kind: "vector" });
    if (c.attentionBias) {
      for (
        const [key, proj, range] of [["qBias", "q_proj", q], ["kBias", "k_proj", kv], ["vBias", "v_proj", kv]] as const
      ) {
        specs.push({
          key: `layers.${i}.${key}`,
          source: `${p}.self_attn.${proj}.bias`,
          take: { axis: 0, range },
          kind: "vector",
        });
      }
    }
    m("q", "self_attn.q_proj.weight", 0, q);
    m("k", "self_attn.k_proj.weight", 0, kv);
    m("v", "self_attn.v_proj.weight", 0, kv);
    m("o", "self_attn.o_proj.weight", 1, q);
    specs.push({ key: `layers.${i}.postNorm`, source: `${p}.post_attention_layernorm.weight`, kind: "vector" });
    m("gate", "mlp.gate_proj.weight", 0, r.mlp);
    m("up", "mlp.up_proj.weight", 0, r.mlp);
    m("down", "mlp.down_proj.weight", 1, r.mlp);
  }
  specs.push({ key: "norm", source: `${prefix}.model.norm.weight`, kind: "vector" });
  specs.push({
    key: "lmHead",
    source: tiedEmbeddings ? `${prefix}.model.embed_tokens.weight` : `${prefix}.lm_head.weight`,
    take: { axis: 0, range: r.vocab },
    kind: "matrix",
  });
  return specs;
}

/** Assembles ShardWeights from tensors keyed as in `shardTensorSpecs`. */
export function shardWeights(c: LlamaConfig, get: (key: string) => Tensor): ShardWeights {
  const bias = (key: string) => c.attentionBias ? get(key) : undefined;
  const layers: ShardLayer[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const t = (k: string) => get(`layers.${i}.${k}`);
    layers.push({
      inputNorm: t("inputNorm"),
      q: t("q"),
      k: t("k"),
      v: t("v"),
      qBias: bias(`layers.${i}.qBias`),
      kBias: bias(`layers.${i}.kBias`),
      vBias: bias(`layers.${i}.vBias`),
      o: t("o"),
      postNorm: t("postNorm"),
      gate: t("gate"),
      up: t("up"),
      down: t("down"),
    });
  }
  return { layers, norm: get("norm"), lmHead: get("lmHead") };
}

/** Bytes of element of a stored dtype code (safetensors names). */
export function storedBytes(dtype: string): number {
  return dtype === "F32" ? 4 : 2;
}

export type { DType };
