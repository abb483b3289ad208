/**
 * The CLIP text tower of the PGP projector (spec §3.5, §3.6, §3.4 step B): token embedding + the extended
 * position table (positions < 20 from `position_embedding`, the rest from `position_embedding_res`), causal pre-LN
 * CLIP layers, final LayerNorm, the state at the first EOS, `clip_text_projection` → e_t.
 *
 * The ids come padded to 248 with EOS and a padding mask (§3.5). With the causal mask, rows up to the first EOS
 * only see keys before them, which the padding mask never hides, so running just ids[0..first EOS] gives the
 * pooled state exactly as the full 248-row pass would, at a fraction of the cost. Rows after the first EOS (pad
 * queries) are not computed; `text.last_hidden` traces the rows that are.
 */
import type { Backend, Tensor } from "../backend/backend.ts";
import { type ClipLayer, clipLayer, loadClipLayer } from "./clip_layer.ts";
import type { PPLLaVAConfig } from "./config.ts";
import { ModelError } from "./errors.ts";
import { type LayerNorm, layerNorm, type Params, type Trace } from "./layers.ts";
import { CLIP_TEXT, PROJECTOR } from "./weights.ts";

export interface ClipTextConfig {
  hiddenSize: number;
  heads: number;
  numLayers: number;
  eps: number;
  vocabSize: number;
  /** Rows of the effective position table: 248 with extend_clip. */
  positions: number;
  keepPositions: number;
  eosTokenId: number;
  extended: boolean;
}

export function clipTextConfig(c: PPLLaVAConfig): ClipTextConfig {
  const t = c.clipText;
  return {
    hiddenSize: t.hiddenSize,
    heads: t.numHeads,
    numLayers: t.numLayers,
    eps: t.layerNormEps,
    vocabSize: t.vocabSize,
    positions: t.positions,
    keepPositions: t.keepPositions,
    eosTokenId: t.eosTokenId,
    extended: c.extendClip,
  };
}

export interface ClipTextWeights {
  tokenEmbedding: Tensor;
  /** pos_eff = concat(position_embedding[0:20], position_embedding_res[20:248]) (§3.6). */
  positions: Tensor;
  layers: ClipLayer[];
  finalNorm: LayerNorm;
  textProjection: Tensor;
}

export class ClipTextTower {
  private constructor(readonly config: ClipTextConfig, readonly w: ClipTextWeights) {}

  static async load(p: Params, config: ClipTextConfig): Promise<ClipTextTower> {
    return new ClipTextTower(config, {
      ...await loadTextEncoder(p, config),
      textProjection: await p.matrix(`${PROJECTOR}.clip_text_projection.weight`),
    });
  }

  /** The rows that matter: ids[0..first EOS], checked (too long, no EOS, a padded row before it, bad ids). */
  usedIds(ids: ArrayLike<number>, mask?: ArrayLike<number>): Int32Array {
    const c = this.config;
    if (ids.length > c.positions) {
      throw new ModelError(
        "prompt_too_long",
        `the CLIP text prompt has ${ids.length} tokens; the text tower has ${c.positions} positions (truncate to ${c.positions})`,
      );
    }
    if (mask && mask.length !== ids.length) {
      throw new ModelError("bad_input", `clip mask has ${mask.length} entries for ${ids.length} ids`);
    }
    let eos = -1;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
        throw new ModelError("bad_input", `CLIP id ${id} at ${i} is outside the vocabulary 0..${c.vocabSize - 1}`);
      }
      if (mask && mask[i] !== 1 && eos < 0) {
        throw new ModelError(
          "bad_input",
          `the CLIP mask hides position ${i} before the first EOS; masks are a prefix of ones`,
        );
      }
      if (id === c.eosTokenId) {
        eos = i;
        break;
      }
    }
    if (eos < 0) {
      throw new ModelError(
        "bad_input",
        `the CLIP ids hold no EOS (${c.eosTokenId}): the pooled state is the first EOS`,
      );
    }
    return Int32Array.from(Array.prototype.slice.call(ids, 0, eos + 1));
  }

  /** CLIP ids (padded to 248 or not) → e_t (projection_dim,). */
  forward(b: Backend, ids: ArrayLike<number>, mask?: ArrayLike<number>, trace?: Trace): Tensor {
    const used = this.usedIds(ids, mask);
    const n = used.length;
    const w = this.w;
    let x = b.add(b.embedding(w.tokenEmbedding, used), b.slice(w.positions, 0, 0, n));
    trace?.("text.embeddings", x);
    x = b.reshape(x, [1, n, this.config.hiddenSize]);
    for (const layer of w.layers) x = clipLayer(b, x, layer, true);
    x = layerNorm(b, b.reshape(x, [n, this.config.hiddenSize]), w.finalNorm);
    trace?.("text.last_hidden", x);
    const pooled = b.slice(x, 0, n - 1, n); // the first EOS
    trace?.("text.pooled", pooled);
    const embed = b.reshape(b.linear(pooled, w.textProjection), [w.textProjection.shape[0]]);
    trace?.("pgp.text_embed", embed);
    return embed;
  }
}

/** The tensors every text tower of the checkpoint layout shares (CLIP's here, SigLIP's in siglip_text.ts): token
 * table, the effective position table, the encoder layers and the final LayerNorm. */
export async function loadTextEncoder(
  p: Params,
  config: Omit<ClipTextConfig, "eosTokenId">,
): Promise<{ tokenEmbedding: Tensor; positions: Tensor; layers: ClipLayer[]; finalNorm: LayerNorm }> {
  const layers: ClipLayer[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    layers.push(await loadClipLayer(p, `${CLIP_TEXT}.encoder.layers.${i}`, config.heads, config.eps));
  }
  return {
    tokenEmbedding: await p.matrix(`${CLIP_TEXT}.embeddings.token_embedding.weight`),
    positions: await loadPositions(p, config),
    layers,
    finalNorm: await p.layerNorm(`${CLIP_TEXT}.final_layer_norm`, config.eps),
  };
}

async function loadPositions(p: Params, c: Omit<ClipTextConfig, "eosTokenId">): Promise<Tensor> {
  if (!c.extended) return await p.vector(`${CLIP_TEXT}.embeddings.position_embedding.weight`);
  const base = await p.vector(`${CLIP_TEXT}.embeddings.position_embedding`);
  const resName = `${CLIP_TEXT}.embeddings.position_embedding_res`;
  // Without the _res table, positions ≥ 20 come from position_embedding, which holds the interpolated table the
  // _res copy was initialised from (§3.6; weights.ts marks _res optional).
  if (!p.weights.has(resName)) return base;
  const res = await p.vector(resName);
  const keep = c.keepPositions;
  const table = p.backend.concat([p.backend.slice(base, 0, 0, keep), p.backend.slice(res, 0, keep, c.positions)], 0);
  return p.adopt(table);
}
