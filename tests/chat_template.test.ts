/**
 * The chat templates (spec §3.7, §9): exact prompt strings as the spec prints them, and their LLaMA-2 ids under
 * both of HF's prefix rules, checked against @huggingface/tokenizers.
 */
import { assertEquals, assertThrows } from "./util/assert.ts";
import { hf, IMAGE_ID, llamaJs, llamaTokenizerJson } from "./util/llama_oracle.ts";
import {
  ANSWER_PREFIX,
  CHAT_TEMPLATES,
  ChatTemplateError,
  PLAIN_QWEN,
  PLAIN_V1,
  renderChat,
  renderQuestion,
} from "../src/model/chat_template.ts";
import { LlamaTokenizer } from "../src/model/tokenizers/llama.ts";

Deno.test("plain_v1: single question, system prefix, answer prefix, multi-turn history (spec §3.7)", () => {
  assertEquals(renderQuestion(PLAIN_V1, "What is happening?"), "USER: <image>\nWhat is happening? ASSISTANT: ");
  assertEquals(renderQuestion(PLAIN_V1, "Hi", { media: 0 }), "USER: Hi ASSISTANT: ");
  assertEquals(renderQuestion(PLAIN_V1, "q", { system: "Be brief." }), "Be brief. USER: <image>\nq ASSISTANT: ");
  const mvbench = "Question: What happens first?\nOptions:\n(A) a\n(B) b\nOnly give the best option.";
  assertEquals(
    renderQuestion(PLAIN_V1, mvbench, { answerPrefix: ANSWER_PREFIX.mvbench }),
    "USER: <image>\nQuestion: What happens first?\nOptions:\n(A) a\n(B) b\nOnly give the best option. ASSISTANT: Best option:(",
  );
  assertEquals(
    renderQuestion(PLAIN_V1, "q", { answerPrefix: ANSWER_PREFIX.videomme }),
    "USER: <image>\nq ASSISTANT: The best answer is:",
  );
  const history = [
    { role: "user", content: "q1" },
    { role: "assistant", content: "a1" },
    { role: "user", content: "q2" },
  ] as const;
  assertEquals(renderChat(PLAIN_V1, history), "USER: q1 ASSISTANT: a1</s>USER: q2 ASSISTANT: ");
  assertEquals(
    renderChat(PLAIN_V1, [{ ...history[0], media: 1 }, history[1], history[2]]),
    "USER: <image>\nq1 ASSISTANT: a1</s>USER: q2 ASSISTANT: ",
  );
  assertEquals(renderQuestion(PLAIN_V1, "compare", { media: 2 }), "USER: <image>\n<image>\ncompare ASSISTANT: ");
});

Deno.test("plain_qwen: the spec's single-turn string and ChatML history (spec §9)", () => {
  assertEquals(renderQuestion(PLAIN_QWEN, "q"), "<|im_start|>user\n<image>\nq<|im_end|>\n<|im_start|>assistant\n");
  assertEquals(
    renderChat(PLAIN_QWEN, [{ role: "user", content: "q1" }, { role: "assistant", content: "a1" }, {
      role: "user",
      content: "q2",
    }]),
    "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n",
  );
  assertEquals(Object.keys(CHAT_TEMPLATES).sort(), ["plain_qwen", "plain_v1"]);
});

Deno.test("templates: a conversation that does not alternate or end with the user is a typed error", () => {
  assertThrows(() => renderChat(PLAIN_V1, []), ChatTemplateError, "end with a user message");
  assertThrows(
    () => renderChat(PLAIN_V1, [{ role: "user", content: "q" }, { role: "assistant", content: "a" }]),
    ChatTemplateError,
  );
  assertThrows(
    () => renderChat(PLAIN_V1, [{ role: "assistant", content: "a" }, { role: "user", content: "q" }]),
    ChatTemplateError,
    "alternate",
  );
  assertThrows(() => renderChat(PLAIN_V1, [{ role: "user", content: "q", media: -1 }]), ChatTemplateError, "media");
});

// ids of the plain_v1 prompts; the two lists differ only where HF's prefix rules differ (after <image> and </s>).
const EXPECTED_IDS = {
  prepend: {
    single: [
      1,
      3148,
      1001,
      29901,
      29871,
      32000,
      29871,
      13,
      5618,
      338,
      10464,
      29973,
      319,
      1799,
      9047,
      13566,
      29901,
      29871,
    ],
    multi: [
      1,
      3148,
      1001,
      29901,
      29871,
      32000,
      29871,
      13,
      29939,
      29896,
      319,
      1799,
      9047,
      13566,
      29901,
      263,
      29896,
      2,
      3148,
      1001,
      29901,
      3855,
      29906,
      319,
      1799,
      9047,
      13566,
      29901,
      29871,
    ],
  },
  first: {
    single: [1, 3148, 1001, 29901, 29871, 32000, 13, 5618, 338, 10464, 29973, 319, 1799, 9047, 13566, 29901, 29871],
    multi: [
      1,
      3148,
      1001,
      29901,
      29871,
      32000,
      13,
      29939,
      29896,
      319,
      1799,
      9047,
      13566,
      29901,
      263,
      29896,
      2,
      11889,
      29901,
      3855,
      29906,
      319,
      1799,
      9047,
      13566,
      29901,
      29871,
    ],
  },
};

for (const rule of ["prepend", "first"] as const) {
  Deno.test({
    name:
      `plain_v1 ids with the LLaMA-2 vocabulary (${rule}): <image> = 32000 once, </s> = 2, trailing ▁ (spec §8 item 10)`,
    ignore: !llamaJs || !hf,
    fn() {
      const json = llamaTokenizerJson(llamaJs!, rule);
      const tok = LlamaTokenizer.fromFiles({ tokenizerJson: json });
      const oracle = new hf!.Tokenizer(json, { add_bos_token: true, legacy: rule === "prepend" });
      const single = renderQuestion(PLAIN_V1, "What is happening?");
      const multi = renderChat(PLAIN_V1, [
        { role: "user", content: "q1", media: 1 },
        { role: "assistant", content: "a1" },
        { role: "user", content: "q2" },
      ]);
      for (
        const [prompt, expected] of [[single, EXPECTED_IDS[rule].single], [multi, EXPECTED_IDS[rule].multi]] as const
      ) {
        const ids = tok.encode(prompt);
        assertEquals(ids, [...expected]);
        assertEquals(ids, oracle.encode(prompt).ids);
        assertEquals(ids.filter((id) => id === IMAGE_ID).length, 1);
        assertEquals(tok.idToToken(ids[ids.length - 1]), "▁");
      }
    },
  });
}
