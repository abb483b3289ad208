/**
 * The LLaMA-2/Vicuna vocabulary for tests, and the oracles around it. The vocabulary is the one inside
 * `llama-tokenizer-js` (its vocab and merges are LLaMA's HF tokenizer.json); `llamaTokenizerJson` rebuilds that
 * tokenizer.json, with `<image>` = 32000 as LLaVA-NeXT adds it, for either prefix rule.
 */
import { importOracle } from "./npm_oracles.ts";

export type LlamaJs = {
  vocabById: string[];
  merges: Map<string, number>;
  encode(t: string, bos?: boolean, space?: boolean): number[];
};
export type HfTokenizer = {
  encode(t: string, o?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(ids: number[], o?: { skip_special_tokens?: boolean }): string;
};
export type HfModule = { Tokenizer: new (json: unknown, config: unknown) => HfTokenizer };

export const llamaJs = (await importOracle<{ default: LlamaJs }>("llama-tokenizer-js", "llama-tokenizer.js"))?.default;
export const hf = await importOracle<HfModule>("@huggingface/tokenizers", "dist/tokenizers.mjs");

export const SPECIALS = ["<unk>", "<s>", "</s>", "<image>"];
export const IMAGE_ID = 32000;

/** LLaMA's HF tokenizer.json, rebuilt from llama-tokenizer-js's data, with `<image>` = 32000 as LLaVA-NeXT adds it. */
export function llamaTokenizerJson(ref: LlamaJs, rule: "prepend" | "first"): Record<string, unknown> {
  const added = (id: number, content: string) => ({
    id,
    content,
    special: true,
    normalized: false,
    lstrip: false,
    rstrip: false,
    single_word: false,
  });
  return {
    version: "1.0",
    added_tokens: [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"), added(IMAGE_ID, "<image>")],
    normalizer: rule === "prepend"
      ? {
        type: "Sequence",
        normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }],
      }
      : null,
    pre_tokenizer: rule === "first"
      ? { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false }
      : null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab: Object.fromEntries(ref.vocabById.map((piece, id) => [piece, id])),
      merges: [...ref.merges.keys()],
    },
  };
}
