/**
 * SentencePiece's unigram model (unigram_model.cc) and its `nmt_nfkc` normalizer, for SigLIP's tokenizer (siglip.ts).
 *
 * Encoding is the Viterbi best path over a lattice of pieces: at each character, every piece that starts there
 * (NORMAL pieces with their score, USER_DEFINED ones with `length · max_score + 1` so they always win; UNUSED,
 * CONTROL and UNKNOWN pieces never match) and, where no one-character piece does, `<unk>` scored
 * `min_score − 10`. On equal scores the earlier-inserted path wins (sentencepiece keeps the first maximum); a run
 * of unknown characters becomes one `<unk>` (SentencePieceProcessor merges them).
 *
 * The normalizer is an approximation, and the one known gap of this file: a spiece.model normalizes with its
 * precompiled charsmap (a trie of NFKC rules that sentencepiece's builder made from ICU), which is not read here.
 * `nmtNfkc` rebuilds the rules the builder states: NFKC (the platform's String.prototype.normalize), plus TAB, LF,
 * FF, CR, U+1680, U+200B, U+200E, U+200F, U+2028, U+2029, U+2581, U+FEFF and U+FFFD mapped to a space, and the
 * full-width tilde U+FF5E left alone. Where the Unicode versions or the charsmap's character-wise composition differ
 * from whole-string NFKC, ids can differ.
 */
import { TokenizerError } from "./errors.ts";
import { PieceType } from "./sentencepiece_model.ts";

const UNK_PENALTY = 10;

export class UnigramModel {
  private readonly idOf = new Map<string, number>();
  private readonly score: Float64Array;
  private readonly maxChars: number;
  private readonly unkScore: number;

  constructor(
    readonly pieces: readonly string[],
    scores: ArrayLike<number>,
    readonly types: readonly PieceType[],
    readonly unkId: number,
  ) {
    if (!(unkId >= 0 && unkId < pieces.length)) {
      throw new TokenizerError(
        "invalid_data",
        `the unigram model's unk id ${unkId} is not one of its ${pieces.length} pieces`,
      );
    }
    let min = Infinity, max = -Infinity, maxChars = 1;
    pieces.forEach((piece, id) => {
      const type = types[id];
      if (type === PieceType.Normal) (min = Math.min(min, scores[id])), (max = Math.max(max, scores[id]));
      if (type !== PieceType.Normal && type !== PieceType.UserDefined) return;
      if (!this.idOf.has(piece)) this.idOf.set(piece, id);
      maxChars = Math.max(maxChars, [...piece].length);
    });
    this.score = Float64Array.from(pieces, (piece, id) => {
      return types[id] === PieceType.UserDefined ? [...piece].length * max + 1 : scores[id];
    });
    this.maxChars = maxChars;
    this.unkScore = (Number.isFinite(min) ? min : 0) - UNK_PENALTY;
  }

  /** The ids of an already normalized text (spaces already "▁"). */
  encode(normalized: string): number[] {
    const chars = Array.from(normalized);
    const n = chars.length;
    // best[e]: the best path ending at character e; from[e]/idAt[e]: where its last piece starts and which it is.
    const best = new Float64Array(n + 1).fill(-Infinity);
    const from = new Int32Array(n + 1).fill(-1);
    const idAt = new Int32Array(n + 1).fill(-1);
    best[0] = 0;
    for (let b = 0; b < n; b++) {
      let piece = "";
      let single = false;
      for (let e = b + 1; e <= Math.min(n, b + this.maxChars); e++) {
        piece += chars[e - 1];
        const id = this.idOf.get(piece);
        if (id === undefined) continue;
        if (e === b + 1) single = true;
        this.relax(best, from, idAt, b, e, id, this.score[id]);
      }
      if (!single) this.relax(best, from, idAt, b, b + 1, this.unkId, this.unkScore);
    }
    const reversed: number[] = [];
    for (let e = n; e > 0; e = from[e]) reversed.push(idAt[e]);
    const ids: number[] = [];
    for (let i = reversed.length - 1; i >= 0; i--) {
      const id = reversed[i];
      if (!(id === this.unkId && ids[ids.length - 1] === this.unkId)) ids.push(id);
    }
    return ids;
  }

  pieceToId(piece: string): number | undefined {
    return this.idOf.get(piece);
  }

  private relax(best: Float64Array, from: Int32Array, idAt: Int32Array, b: number, e: number, id: number, s: number) {
    const total = best[b] + s;
    if (total > best[e]) (best[e] = total), (from[e] = b), (idAt[e] = id);
  }
}

/** Characters sentencepiece's nmt_nfkc rules turn into a space (builder.cc, BuildNmtNFKCMap). */
const NMT_SPACES = /[\t\n\f\r\u1680\u200b\u200e\u200f\u2028\u2029\u2581\ufeff\ufffd]/gu;

/**
 * The normalizer of a spiece.model with rule `nmt_nfkc` (see the file comment for what is approximated), then what
 * sentencepiece's Normalizer does around it: optionally squeeze spaces (drop leading/trailing ones, one for a run),
 * and write each space as "▁". No dummy prefix (SigLIP turns it off).
 */
export function nmtNfkc(text: string, removeExtraWhitespaces = true): string {
  let out = "";
  for (const part of text.replace(NMT_SPACES, " ").split(/(\uff5e)/u)) {
    out += part === "\uff5e" ? part : part.normalize("NFKC");
  }
  if (removeExtraWhitespaces) out = out.replace(/ +/g, " ").replace(/^ | $/g, "");
  return out.replaceAll(" ", "▁");
}
