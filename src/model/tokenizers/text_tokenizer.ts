/**
 * What the model and the generator need of an LLM tokenizer, whichever the checkpoint ships: the SentencePiece-style
 * LLaMA one (Vicuna variant) or the byte-level BPE of Qwen2 (spec §9). `tokenizerFromFiles` picks by the files.
 */
import { ByteLevelBpeTokenizer } from "./byte_level_bpe.ts";
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
