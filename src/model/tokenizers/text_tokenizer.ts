/**
 * What the model and the generator need of an LLM tokenizer, whichever the checkpoint ships: the SentencePiece-style
 * LLaMA one (Vicuna variant) or the byte-level BPE of Qwen2 (spec §9). `tokenizerFromFiles` picks by the files.
 */
import { ByteLevelBpeTokenizer } from "./byte_level_bpe.ts";
import { ClipTokenizer } from "./clip.ts";
import { SiglipTokenizer } from "./siglip.ts";
import { LlamaTokenizer, type LlamaTokenizerFiles } from "./llama.ts";

export interface EncodeOptions {
  /** Add what the tokenizer adds around a text (LLaMA's BOS; nothing for Qwen2). Default true. */
  addSpecialTokens?: boolean;
}

/** Text per generated token: the pieces of `push` plus `flush` equal `decode` of all the ids. */
export interface StreamDecoder {
  push(id: number): string;
  flush(): string;
}

export interface TextTokenizer {
  readonly vocabSize: number;
  readonly eosId: number;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  createStreamDecoder(options?: { skipSpecialTokens?: boolean }): StreamDecoder;
  idToToken(id: number): string | undefined;
  isSpecial(id: number): boolean;
}

/** The files of a checkpoint folder that concern the tokenizer, already read (no I/O here). */
export type TextTokenizerFiles = LlamaTokenizerFiles;

/**
 * The checkpoint's LLM tokenizer: a byte-level BPE when tokenizer.json says so (a ByteLevel pre-tokenizer or
 * decoder: Qwen2, GPT-2, Llama-3), else the LLaMA tokenizer (tokenizer.json with Metaspace/byte fallback, or
 * tokenizer.model).
 */
export function tokenizerFromFiles(files: TextTokenizerFiles): TextTokenizer {
  if (files.tokenizerJson !== undefined && ByteLevelBpeTokenizer.handles(files.tokenizerJson)) {
    return ByteLevelBpeTokenizer.fromFiles(files);
  }
  return LlamaTokenizer.fromFiles(files);
}

/** The files of a folder's `clip_tokenizer/`, already read. */
export interface TextTowerTokenizerFiles {
  /** CLIP's vocab.json (parsed) + merges.txt (text). */
  vocabJson?: Record<string, number>;
  mergesTxt?: string;
  /** A tokenizer.json: a BPE model is CLIP's, a Unigram model SigLIP's. */
  tokenizerJson?: unknown;
  /** SigLIP's SentencePiece spiece.model. */
  spieceModel?: Uint8Array;
}

/**
 * The PGP text tower's tokenizer (spec §3.5 for CLIP, §9 for SigLIP), whichever the files hold; both encode a
 * question as `{ inputIds, attentionMask, eosIndex }` padded to the tower's positions. Undefined without files.
 */
export function textTowerTokenizerFromFiles(
  files: TextTowerTokenizerFiles,
): ClipTokenizer | SiglipTokenizer | undefined {
  if (files.spieceModel) return SiglipTokenizer.fromSentencePieceModel(files.spieceModel);
  if (files.vocabJson && files.mergesTxt !== undefined) {
    return ClipTokenizer.fromVocabAndMerges(files.vocabJson, files.mergesTxt);
  }
  if (files.tokenizerJson === undefined) return undefined;
  const type = (files.tokenizerJson as { model?: { type?: unknown } })?.model?.type;
  return type === "Unigram"
    ? SiglipTokenizer.fromTokenizerJson(files.tokenizerJson)
    : ClipTokenizer.fromTokenizerJson(files.tokenizerJson);
}
