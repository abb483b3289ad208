/**
 * The prompt templates of PPLLaVA (spec §3.7, §9), as data plus one render function, so a new template is a new
 * table entry, not new code.
 *
 * plain_v1 (Vicuna): `USER: <image>\n{question} ASSISTANT: `. The trailing space is part of the prompt (spec §8
 * item 10: with the LLaMA tokenizer it becomes its own "▁" token, as in training). A system text goes first,
 * followed by one space. History: `USER: q1 ASSISTANT: a1</s>USER: q2 ASSISTANT: ` (the literal "</s>" is split
 * out as the EOS id by the tokenizer). A forced answer prefix follows "ASSISTANT: " directly.
 *
 * plain_qwen (Qwen2): `<|im_start|>user\n<image>\n{q}<|im_end|>\n<|im_start|>assistant\n`. The spec prints no
 * system rule for it; the ChatML system block used here (`<|im_start|>system\n…<|im_end|>\n`) is the Qwen2 chat
 * convention and applies only when a system text is given.
 */

export interface ChatTemplate {
  name: string;
  /** Written before the first turn when a system text is given: systemPrefix + system + systemSuffix. */
  systemPrefix: string;
  systemSuffix: string;
  /** Role headers, user then assistant (they include their trailing space or newline). */
  roles: readonly [string, string];
  /** Written after a finished user message and after a finished assistant answer. */
  seps: readonly [string, string];
  /** Put before the text of a user message once per image or video it carries. */
  mediaToken: string;
}

export const PLAIN_V1: ChatTemplate = {
  name: "plain_v1",
  systemPrefix: "",
  systemSuffix: " ",
  roles: ["USER: ", "ASSISTANT: "],
  seps: [" ", "</s>"],
  mediaToken: "<image>\n",
};

export const PLAIN_QWEN: ChatTemplate = {
  name: "plain_qwen",
  systemPrefix: "<|im_start|>system\n",
  systemSuffix: "<|im_end|>\n",
  roles: ["<|im_start|>user\n", "<|im_start|>assistant\n"],
  seps: ["<|im_end|>\n", "<|im_end|>\n"],
  mediaToken: "<image>\n",
};

export const CHAT_TEMPLATES: Readonly<Record<string, ChatTemplate>> = { plain_v1: PLAIN_V1, plain_qwen: PLAIN_QWEN };

/** Answer prefixes the benchmarks force (spec §3.7). */
export const ANSWER_PREFIX = {
  mvbench: "Best option:(",
  videomme: "The best answer is:",
  videoqa: "Answer: In the video,",
} as const;

export interface ChatMessage {
  role: "user" | "assistant";
  content: string;
  /** How many images/videos this user message carries; each one becomes one media token before the text. */
  media?: number;
}

export interface RenderOptions {
  system?: string;
  /** Text the assistant's answer is forced to start with (it ends the prompt; the model continues it). */
  answerPrefix?: string;
}

export class ChatTemplateError extends Error {
  override name = "ChatTemplateError";
  readonly code = "bad_conversation";
}

/**
 * The prompt for the model to answer the last user message. `messages` alternate user, assistant, user, …, and
 * end with a user message.
 */
export function renderChat(
  template: ChatTemplate,
  messages: readonly ChatMessage[],
  options: RenderOptions = {},
): string {
  if (messages.length === 0 || messages[messages.length - 1].role !== "user") {
    throw new ChatTemplateError("a conversation must end with a user message (the one the model answers)");
  }
  let prompt = options.system ? template.systemPrefix + options.system + template.systemSuffix : "";
  messages.forEach((message, i) => {
    const expected = i % 2 === 0 ? "user" : "assistant";
    if (message.role !== expected) {
      throw new ChatTemplateError(
        `message ${i} is "${message.role}"; messages alternate user, assistant, … from a user message`,
      );
    }
    const media = message.media ?? 0;
    if (!(Number.isInteger(media) && media >= 0) || (media > 0 && message.role === "assistant")) {
      throw new ChatTemplateError(`message ${i}: media must be a count ≥ 0 on a user message, got ${media}`);
    }
    const turn = i % 2;
    prompt += template.roles[turn] + template.mediaToken.repeat(media) + message.content + template.seps[turn];
  });
  return prompt + template.roles[1] + (options.answerPrefix ?? "");
}

/** One question about one video or image: the prompt of the reference demo. */
export function renderQuestion(
  template: ChatTemplate,
  question: string,
  options: RenderOptions & { media?: number } = {},
): string {
  return renderChat(template, [{ role: "user", content: question, media: options.media ?? 1 }], options);
}
