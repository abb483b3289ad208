/**
 * The SigLIP text tower of the Qwen variant's PGP (spec §9, §3.6; transformers' SiglipTextTransformer with
 * upstream's ExtendTextEmbeddings): token embedding + the extended position table (64 → 196 positions; rows < 20
 * from `position_embedding`, the rest from `position_embedding_res`), bidirectional pre-LN layers (tanh GELU),
 * final LayerNorm, the state of the LAST row, `head` linear → e_t.
 *
 * Unlike CLIP there is no causal mask and no EOS pooling: the last row is pooled whatever it holds (with ids padded
 * to 196 it is a pad token, a train/test mismatch of the original that we reproduce). A mask, when given, hides
 * padded keys (HF's 4-D padding mask); it must be a prefix of ones. Rows it hides other than the last cannot reach
 * the pooled state (they are neither keys nor the pooled row), so only rows [0, m) and the last row are computed.
 * Names traced: text.embeddings, text.last_hidden (the computed rows), text.pooled, pgp.text_embed.
 */
import type { Backend, Tensor } from "../backend/backend.ts";
import type { ClipLayer } from "./clip_layer.ts";
import { type ClipTextConfig, clipTextConfig, loadTextEncoder } from "./clip_text.ts";
import type { PPLLaVAConfig } from "./config.ts";
import { ModelError } from "./errors.ts";
import { type LayerNorm, layerNorm, type Linear, linear, type Params, type Trace } from "./layers.ts";
import { siglipLayer } from "./siglip_layer.ts";
import { CLIP_TEXT } from "./weights.ts";

/** The CLIP text tower's sizes (clip_text.ts) without the EOS id: SigLIP pools the last row, not the first EOS. */
export type SiglipTextConfig = Omit<ClipTextConfig, "eosTokenId">;

export function siglipTextConfig(c: PPLLaVAConfig): SiglipTextConfig {
  const { eosTokenId: _eos, ...sizes } = clipTextConfig(c);
  return sizes;
}

export interface SiglipTextWeights {
  tokenEmbedding: Tensor;
  positions: Tensor;
  layers: ClipLayer[];
  finalNorm: LayerNorm;
  head: Linear;
}

/** The rows to run: their ids and positions, and how many leading rows are keys. */
export interface TextRows {
  ids: Int32Array;
  positions: Int32Array;
  keys: number;
}

export class SiglipTextTower {
  private constructor(readonly config: SiglipTextConfig, readonly w: SiglipTextWeights) {}

  static async load(p: Params, config: SiglipTextConfig): Promise<SiglipTextTower> {
    return new SiglipTextTower(config, {
      ...await loadTextEncoder(p, config),
      head: await p.linear(`${CLIP_TEXT}.head`),
    });
  }

  /** The rows that matter, checked (too long, empty, bad ids, a mask that is not a non-empty prefix of ones). */
  usedIds(ids: ArrayLike<number>, mask?: ArrayLike<number>): TextRows {
    const c = this.config;
    const n = ids.length;
    if (n === 0) throw new ModelError("bad_input", "the text-tower ids are empty");
    if (n > c.positions) {
      throw new ModelError(
        "prompt_too_long",
        `the text-tower prompt has ${n} tokens; the SigLIP text tower has ${c.positions} positions (truncate to ${c.positions})`,
      );
    }
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
        throw new ModelError("bad_input", `text id ${id} at ${i} is outside the vocabulary 0..${c.vocabSize - 1}`);
      }
    }
    let keys = n;
    if (mask) {
      if (mask.length !== n) throw new ModelError("bad_input", `text mask has ${mask.length} entries for ${n} ids`);
      keys = 0;
      while (keys < n && mask[keys] === 1) keys++;
      for (let i = keys; i < n; i++) {
        if (mask[i] !== 0) {
          throw new ModelError("bad_input", `the text mask is not a prefix of ones (position ${i} is ${mask[i]})`);
        }
      }
      if (keys === 0) throw new ModelError("bad_input", "the text mask hides every token");
    }
    const rows = keys === n ? n : keys + 1; // the hidden rows except the last are not needed
    const positions = Int32Array.from({ length: rows }, (_, i) => (i < keys ? i : n - 1));
    return { ids: Int32Array.from(positions, (i) => ids[i]), positions, keys };
  }

  /** Text ids (padded to 196 or not) → e_t (hidden,). */
  forward(b: Backend, ids: ArrayLike<number>, mask?: ArrayLike<number>, trace?: Trace): Tensor {
    const rows = this.usedIds(ids, mask);
    const w = this.w;
    const d = this.config.hiddenSize;
    const n = rows.ids.length;
    let x = b.add(b.embedding(w.tokenEmbedding, rows.ids), b.embedding(w.positions, rows.positions));
    trace?.("text.embeddings", x);
    x = b.reshape(x, [1, n, d]);
    for (const layer of w.layers) x = siglipLayer(b, x, layer, rows.keys);
    x = layerNorm(b, b.reshape(x, [n, d]), w.finalNorm);
    trace?.("text.last_hidden", x);
    const pooled = b.slice(x, 0, n - 1, n);
    trace?.("text.pooled", pooled);
    const embed = b.reshape(linear(b, pooled, w.head), [w.head.weight.shape[0]]);
    trace?.("pgp.text_embed", embed);
    return embed;
  }
}
