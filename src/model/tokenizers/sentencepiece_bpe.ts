/**
 * The LLaMA vocabulary and its BPE model (spec §3.7), built from either file a checkpoint may ship:
 * - `tokenizer.model` (SentencePiece protobuf): pieces with scores and types;
 * - `tokenizer.json` (HF tokenizers): a BPE model with `vocab`, ranked `merges`, `byte_fallback`.
 *
 * Two merge rules, because the two libraries that read these files differ in rare cases:
 * - "hf": merges are ranked pairs (HF tokenizers' BPE). For a `tokenizer.model` the ranks are derived exactly as
 *   transformers' `SentencePieceExtractor` does when it converts the file for `LlamaTokenizerFast` (every split of
 *   every piece into two pieces, ordered by (piece score desc, then vocab order, then ids of the halves)). This is
 *   what `AutoTokenizer`/`LlavaNextProcessor` (use_fast=True, transformers 4.45) run, so it is the default.
 * - "sentencepiece": the piece with the best score wins, ties leftmost (SentencePiece's bpe_model.cc, i.e. the
 *   slow `LlamaTokenizer`). The two differ only when pieces share a score (LLaMA's whitespace-run pieces).
 * After merging, a symbol missing from the vocabulary becomes its UTF-8 bytes as `<0xXX>` pieces (byte fallback),
 * or `<unk>` when the model has no byte pieces.
 */
import { mergeSymbols, type PairRank } from "./bpe_merge.ts";
import { TokenizerError } from "./errors.ts";
import { PieceType, readSentencePieceModel, type SentencePieceModel } from "./sentencepiece_model.ts";

export type MergeRule = "hf" | "sentencepiece";

export interface SentencePieceBpeParts {
  pieces: string[];
  types: PieceType[];
  scores: Float32Array;
  unkId: number;
  byteFallback: boolean;
  /** The proto's normalizer; null for a tokenizer.json (HF's pipeline replaces it). */
  normalizer: SentencePieceModel["normalizer"] | null;
  /** Ranked merges "left right" → rank, when the source has them (tokenizer.json). */
  merges: Map<string, number> | null;
}

const encoder = new TextEncoder();

export class SentencePieceBpe {
  readonly pieces: readonly string[];
  readonly types: readonly PieceType[];
  readonly unkId: number;
  readonly normalizer: SentencePieceModel["normalizer"] | null;
  private readonly idOf = new Map<string, number>();
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly rank: PairRank;
  /** USER_DEFINED pieces: SentencePiece cuts them out whole before merging (its PrefixMatcher); longest first. */
  private readonly userDefined: string[] = [];

  private constructor(parts: SentencePieceBpeParts, rule: MergeRule) {
    this.pieces = parts.pieces;
    this.types = parts.types;
    this.unkId = parts.unkId;
    this.normalizer = parts.normalizer;
    parts.pieces.forEach((piece, id) => {
      if (!this.idOf.has(piece)) this.idOf.set(piece, id);
      const byte = parts.byteFallback ? byteOfPiece(piece) : -1;
      if (byte >= 0 && (parts.types[id] === PieceType.Byte || parts.normalizer === null)) this.byteIds[byte] = id;
    });
    if (rule === "sentencepiece") {
      this.rank = this.scoreRank(parts);
      parts.pieces.forEach((p, id) => parts.types[id] === PieceType.UserDefined && this.userDefined.push(p));
      this.userDefined.sort((a, b) => b.length - a.length);
    } else {
      const merges = parts.merges ?? deriveMerges(parts);
      this.rank = (left, right) => merges.get(left + " " + right);
    }
  }

  static fromModelProto(bytes: Uint8Array, rule: MergeRule = "hf"): SentencePieceBpe {
    const model = readSentencePieceModel(bytes);
    if (model.modelType !== 2) {
      throw new TokenizerError(
        "unsupported",
        `tokenizer.model has model_type ${model.modelType}; only BPE (2) is implemented (LLaMA/Vicuna use BPE)`,
      );
    }
    if (model.normalizer.hasCharsMap) {
      throw new TokenizerError(
        "unsupported",
        `tokenizer.model normalizes with "${model.normalizer.name}" (a precompiled charsmap); only identity is implemented`,
      );
    }
    if (model.treatWhitespaceAsSuffix) {
      throw new TokenizerError("unsupported", "tokenizer.model sets treat_whitespace_as_suffix; not implemented");
    }
    return new SentencePieceBpe({
      pieces: model.pieces.map((p) => p.piece),
      types: model.pieces.map((p) => p.type),
      scores: Float32Array.from(model.pieces, (p) => p.score),
      unkId: model.unkId,
      byteFallback: model.byteFallback,
      normalizer: model.normalizer,
      merges: null,
    }, rule);
  }

  /** `json` is a parsed HF tokenizer.json whose model is BPE (LLaMA's: byte_fallback, no pre-tokenizer split). */
  static fromTokenizerJson(json: unknown): SentencePieceBpe {
    const model = (json as { model?: Record<string, unknown> })?.model;
    if (!model || model.type !== "BPE" || typeof model.vocab !== "object" || !Array.isArray(model.merges)) {
      throw new TokenizerError("invalid_data", "tokenizer.json must hold a BPE model with a vocab object and merges");
    }
    const vocab = model.vocab as Record<string, number>;
    const pieces: string[] = [];
    for (const [piece, id] of Object.entries(vocab)) {
      if (!Number.isInteger(id) || id < 0) {
        throw new TokenizerError("invalid_data", `tokenizer.json: bad id for ${piece}`);
      }
      pieces[id] = piece;
    }
    for (let id = 0; id < pieces.length; id++) {
      if (pieces[id] === undefined) throw new TokenizerError("invalid_data", `tokenizer.json: vocab has no id ${id}`);
    }
    const merges = new Map<string, number>();
    (model.merges as unknown[]).forEach((merge, rank) => {
      const key = Array.isArray(merge) ? merge.join(" ") : String(merge);
      if (!merges.has(key)) merges.set(key, rank);
    });
    const unk = typeof model.unk_token === "string" ? vocab[model.unk_token] : undefined;
    return new SentencePieceBpe({
      pieces,
      types: pieces.map((p) => (byteOfPiece(p) >= 0 ? PieceType.Byte : PieceType.Normal)),
      scores: new Float32Array(pieces.length),
      unkId: unk ?? 0,
      byteFallback: model.byte_fallback === true,
      normalizer: null,
      merges,
    }, "hf");
  }

  get size(): number {
    return this.pieces.length;
  }

  pieceToId(piece: string): number | undefined {
    return this.idOf.get(piece);
  }

  /** BPE of one already-normalized string ("▁" for spaces): ids, with byte fallback. */
  encodeNormalized(text: string): number[] {
    if (text.length === 0) return [];
    const symbols = mergeSymbols(this.initialSymbols(text), this.rank);
    const ids: number[] = [];
    for (const symbol of symbols) {
      const id = this.idOf.get(symbol);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      const bytes = encoder.encode(symbol);
      if (bytes.every((b) => this.byteIds[b] >= 0)) { for (const b of bytes) ids.push(this.byteIds[b]); }
      else ids.push(this.unkId);
    }
    return ids;
  }

  private initialSymbols(text: string): string[] {
    if (this.userDefined.length === 0) return Array.from(text);
    const out: string[] = [];
    for (let i = 0; i < text.length;) {
      const match = this.userDefined.find((p) => text.startsWith(p, i));
      const symbol = match ?? String.fromCodePoint(text.codePointAt(i)!);
      out.push(symbol);
      i += symbol.length;
    }
    return out;
  }

  /** The byte a `<0xXX>` piece stands for, or -1. */
  byteOf(id: number): number {
    return this.types[id] === PieceType.Byte ? byteOfPiece(this.pieces[id]) : -1;
  }

  private scoreRank(parts: SentencePieceBpeParts): PairRank {
    // SentencePiece merges into NORMAL and USER_DEFINED pieces (UNUSED ones need its re-segmentation step, which
    // LLaMA never needs; they are left out). Higher score first → rank = −score.
    const mergeable = new Map<string, number>();
    const frozen = new Set(parts.pieces.filter((_, id) => parts.types[id] === PieceType.UserDefined));
    parts.pieces.forEach((piece, id) => {
      const type = parts.types[id];
      if ((type === PieceType.Normal || type === PieceType.UserDefined) && !mergeable.has(piece)) {
        mergeable.set(piece, -parts.scores[id]);
      }
    });
    return (left, right) => (frozen.has(left) || frozen.has(right) ? undefined : mergeable.get(left + right));
  }
}

function byteOfPiece(piece: string): number {
  return /^<0x[0-9A-Fa-f]{2}>$/.test(piece) ? parseInt(piece.slice(3, 5), 16) : -1;
}

/**
 * transformers' SentencePieceExtractor.extract (4.45): for each piece in vocab order, every split into two vocab
 * pieces, sorted by (id of left, id of right); then a stable sort of all of them by the piece's score, descending.
 * LlamaConverter reports pieces 0..2 with score 0.
 */
function deriveMerges(parts: SentencePieceBpeParts): Map<string, number> {
  const idOf = new Map<string, number>();
  parts.pieces.forEach((p, id) => idOf.set(p, id));
  const found: { left: string; right: string; leftId: number; rightId: number; score: number; order: number }[] = [];
  parts.pieces.forEach((piece, id) => {
    const score = id < 3 ? 0 : parts.scores[id];
    const chars = Array.from(piece);
    const local: typeof found = [];
    let left = "";
    for (let i = 1; i < chars.length; i++) {
      left += chars[i - 1];
      const right = chars.slice(i).join("");
      const leftId = idOf.get(left), rightId = idOf.get(right);
      if (leftId !== undefined && rightId !== undefined) {
        local.push({ left, right, leftId, rightId, score, order: 0 });
      }
    }
    local.sort((a, b) => a.leftId - b.leftId || a.rightId - b.rightId);
    for (const m of local) found.push({ ...m, order: found.length });
  });
  found.sort((a, b) => b.score - a.score || a.order - b.order);
  const merges = new Map<string, number>();
  found.forEach((m, rank) => {
    const key = m.left + " " + m.right;
    if (!merges.has(key)) merges.set(key, rank);
  });
  return merges;
}
