/**
 * The Vicuna/LLaMA decoder (spec §2 text_config, §3.7, §3.8), and Qwen2 (§9: the same graph with q/k/v biases,
 * GQA and θ = 1e6, all from the config): embed_tokens, pre-RMSNorm layers with rotate-half
 * RoPE attention (GQA-ready) and the SiLU-gated MLP, final RMSNorm, untied lm_head. Per layer:
 *
 *   h = x + o_proj(Attn(RoPE(q_proj n), RoPE(k_proj n), v_proj n)),  n = RMSNorm_in(x)      (causal, KV cache)
 *   x' = h + down_proj(silu(gate_proj m) ⊙ up_proj m),                 m = RMSNorm_post(h)
 *
 * `LlamaSession` owns the KV caches of one generation (batch = 1, or the beams), positions continue from the cache
 * length. Names traced: llm.layers.{i} (and llm.logits by the caller).
 */
import type { Backend, Tensor } from "../backend/backend.ts";
import { KvCache } from "../backend/kv_cache.ts";
import type { PPLLaVAConfig } from "./config.ts";
import { ModelError } from "./errors.ts";
import type { Params, Trace } from "./layers.ts";
import { LLM } from "./weights.ts";

export interface LlamaConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  ropeTheta: number;
  vocabSize: number;
  maxPositions: number;
  /** Qwen2: q/k/v projections carry biases. */
  attentionBias?: boolean;
}

export function llamaConfig(c: PPLLaVAConfig): LlamaConfig {
  const l = c.llm;
  return {
    hiddenSize: l.hiddenSize,
    intermediateSize: l.intermediateSize,
    numLayers: l.numLayers,
    heads: l.numHeads,
    kvHeads: l.numKvHeads,
    headDim: l.headDim,
    eps: l.rmsNormEps,
    ropeTheta: l.ropeTheta,
    vocabSize: l.vocabSize,
    maxPositions: l.maxPositionEmbeddings,
    attentionBias: l.attentionBias,
  };
}

/** One decoder layer's tensors (a shard holds the same fields, sliced: llama_shard.ts). */
export interface LlamaLayer {
  inputNorm: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  /** Qwen2's q/k/v biases (absent for LLaMA). */
  qBias?: Tensor;
  kBias?: Tensor;
  vBias?: Tensor;
  o: Tensor;
  postNorm: Tensor;
  gate: Tensor;
  up: Tensor;
  down: Tensor;
}

export interface LlamaWeights {
  embedTokens: Tensor;
  layers: LlamaLayer[];
  norm: Tensor;
  lmHead: Tensor;
}

export class Llama {
  private constructor(readonly config: LlamaConfig, readonly w: LlamaWeights) {}

  static async load(p: Params, config: LlamaConfig, tied = false): Promise<Llama> {
    const layers: LlamaLayer[] = [];
    for (let i = 0; i < config.numLayers; i++) {
      const pre = `${LLM}.model.layers.${i}`;
      const bias = (name: string) => config.attentionBias ? p.vector(`${pre}.self_attn.${name}.bias`) : undefined;
      layers.push({
        qBias: await bias("q_proj"),
        kBias: await bias("k_proj"),
        vBias: await bias("v_proj"),
        inputNorm: await p.vector(`${pre}.input_layernorm.weight`),
        q: await p.matrix(`${pre}.self_attn.q_proj.weight`),
        k: await p.matrix(`${pre}.self_attn.k_proj.weight`),
        v: await p.matrix(`${pre}.self_attn.v_proj.weight`),
        o: await p.matrix(`${pre}.self_attn.o_proj.weight`),
        postNorm: await p.vector(`${pre}.post_attention_layernorm.weight`),
        gate: await p.matrix(`${pre}.mlp.gate_proj.weight`),
        up: await p.matrix(`${pre}.mlp.up_proj.weight`),
        down: await p.matrix(`${pre}.mlp.down_proj.weight`),
      });
    }
    const embedTokens = await p.matrix(`${LLM}.model.embed_tokens.weight`);
    return new Llama(config, {
      embedTokens,
      layers,
      norm: await p.vector(`${LLM}.model.norm.weight`),
      lmHead: tied ? embedTokens : await p.matrix(`${LLM}.lm_head.weight`),
    });
  }

  /** Token ids → embeddings (n, H). */
  embed(b: Backend, ids: Int32Array): Tensor {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) {
        throw new ModelError("bad_input", `token id ${id} is outside the vocabulary 0..${this.config.vocabSize - 1}`);
      }
    }
    return b.embedding(this.w.embedTokens, ids);
  }

  /** embeds (B, L, H) at positions caches.length.. → logits (B, L, V), or (B, 1, V) of the last row. */
  forward(b: Backend, embeds: Tensor, caches: KvCache[], options: { allLogits?: boolean; trace?: Trace } = {}): Tensor {
    const c = this.config;
    const [batch, length] = embeds.shape;
    let x = embeds;
    for (const [i, w] of this.w.layers.entries()) {
      const cache = caches[i];
      const offset = cache.length;
      const n = b.rmsNorm(x, w.inputNorm, c.eps);
      const heads = (weight: Tensor, count: number, bias?: Tensor) =>
        b.reshape(b.linear(n, weight, bias), [batch, length, count, c.headDim]);
      const q = b.permute(b.rope(heads(w.q, c.heads, w.qBias), { theta: c.ropeTheta, offset }), [0, 2, 1, 3]);
      const k = b.permute(b.rope(heads(w.k, c.kvHeads, w.kBias), { theta: c.ropeTheta, offset }), [0, 2, 1, 3]);
      const v = b.permute(heads(w.v, c.kvHeads, w.vBias), [0, 2, 1, 3]);
      cache.append(k, v);
      const { keys, values } = cache.view();
      const att = b.attention(q, keys, values, { causal: true }); // (B, H, L, hd) over (B, L, H, hd)
      const merged = b.reshape(b.permute(att, [0, 2, 1, 3]), [batch, length, c.heads * c.headDim]);
      const h = b.add(x, b.linear(merged, w.o));
      const m = b.rmsNorm(h, w.postNorm, c.eps);
      x = b.add(h, b.linear(b.siluMul(b.linear(m, w.gate), b.linear(m, w.up)), w.down));
      options.trace?.(`llm.layers.${i}`, x);
    }
    if (!options.allLogits && length > 1) x = b.slice(x, 1, length - 1, length);
    return b.linear(b.rmsNorm(x, this.w.norm, c.eps), this.w.lmHead);
  }
}

/** The KV caches of one generation, and the batch moves beam search needs. */
export class LlamaSession {
  #caches: KvCache[];
  #batch: number;

  constructor(readonly b: Backend, readonly llama: Llama, readonly capacity: number) {
    const c = llama.config;
    if (capacity > c.maxPositions) {
      throw new ModelError(
        "prompt_too_long",
        `${capacity} positions (prompt + new tokens) exceed the LLM's max_position_embeddings ${c.maxPositions}`,
      );
    }
    this.#batch = 1;
    this.#caches = this.#make(1);
  }

  get batch(): number {
    return this.#batch;
  }

  get length(): number {
    return this.#caches[0].length;
  }

  /** embeds (B, L, H) → logits of the last row per sequence, (B, V) on the host. */
  async run(embeds: Tensor, options: { allLogits?: boolean; trace?: Trace } = {}): Promise<Float32Array> {
    if (this.length + embeds.shape[1] > this.capacity) {
      throw new ModelError(
        "prompt_too_long",
        `the context would hold ${this.length + embeds.shape[1]} positions; capacity ${this.capacity}`,
      );
    }
    const logits = this.b.scope(() => {
      const all = this.llama.forward(this.b, embeds, this.#caches, options);
      if (!options.allLogits) return all;
      const [batch, length, vocab] = all.shape;
      options.trace?.("llm.logits", batch === 1 ? this.b.reshape(all, [length, vocab]) : all);
      return this.b.contiguous(this.b.slice(all, 1, length - 1, length));
    });
    try {
      return await this.b.download(logits);
    } finally {
      logits.dispose();
    }
  }

  /** One new token per sequence → logits (B, V). */
  step(tokens: readonly number[]): Promise<Float32Array> {
    const h = this.llama.config.hiddenSize;
    const embeds = this.b.scope(() =>
      this.b.reshape(this.llama.embed(this.b, Int32Array.from(tokens)), [tokens.length, 1, h])
    );
    return this.run(embeds).finally(() => embeds.dispose());
  }

  /** Row i of the new batch takes the cache of old row from[i] (beam search): `KvCache.reorder` at the same batch
   * size; a change of batch (1 → beams after the prefill) gathers into new caches. */
  reorder(from: readonly number[]): void {
    if (from.length === this.#batch && from.every((row, i) => row === i)) return;
    if (from.length === this.#batch) {
      for (const cache of this.#caches) cache.reorder(from);
      return;
    }
    const b = this.b;
    const next = this.#make(from.length);
    for (const [layer, cache] of this.#caches.entries()) {
      b.scope(() => {
        const { keys, values } = cache.view();
        const gather = (t: Tensor) => b.concat(from.map((r) => b.slice(t, 0, r, r + 1)), 0);
        next[layer].append(gather(keys), gather(values));
      });
      cache.dispose();
    }
    this.#caches = next;
    this.#batch = from.length;
  }

  dispose(): void {
    for (const cache of this.#caches) cache.dispose();
  }

  #make(batch: number): KvCache[] {
    const c = this.llama.config;
    return Array.from(
      { length: c.numLayers },
      () => new KvCache(this.b, { batch, kvHeads: c.kvHeads, headDim: c.headDim, capacity: this.capacity }),
    );
  }
}
