/** Texts the tokenizers are compared on: a fixed list of hard cases plus seeded random mixtures of fragments. */
import { rng } from "./util/random.ts";

export const FIXED_TEXTS: readonly string[] = [
  "Hello world",
  "What is the man doing in the video?",
  " leading space",
  "   three leading spaces",
  "trailing space ",
  "ends with two  ",
  "a  b   c    d     e      f       g        h",
  "                                 32 spaces then text",
  "tab\tseparated\tvalues\t\t",
  "line one\nline two\n\nline four\r\nCRLF",
  "\n\nstarts with newlines",
  "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
  "for (let i = 0; i < n; i++) { sum += a[i] * b[i]; }",
  "SELECT * FROM videos WHERE frames >= 32 AND fps = 29.97;",
  "It's 3:45pm — don't worry, we'll arrive by 4.",
  "Numbers: 0 1 12 123 1234 12345 3.14159 -42 1e-5 0x1F",
  "Emoji: 🤖🎬📹 👩‍👩‍👧‍👦 🇫🇷 ✨ ❤️",
  "中文：这个视频里的人在做什么？",
  "日本語のテキストとカタカナ、ひらがな。",
  "한국어 문장입니다.",
  "Русский текст: Что происходит на видео?",
  "Ελληνικά: ΟΔΟΣ και οδός",
  "Accents: café naïve résumé São Paulo Zürich Øresund",
  "Combining: e\u0301 a\u0308 n\u0303 (decomposed)",
  "Arabic: ما الذي يحدث في الفيديو؟",
  "Hindi: वीडियो में क्या हो रहा है?",
  "Rare: \u{1F9EC} \u{10348} \u{E000} \u{FFFD} \u{2603}",
  "Control: \u0001\u0002\u001b[31m\u007f",
  "Zero width: a\u200bb\u200cc\u200dd\ufeffe",
  "NBSP:\u00a0here and\u3000ideographic space",
  "USER: <image>\nWhat is happening? ASSISTANT: ",
  "<image>\nstarts with image",
  "two images <image><image> adjacent",
  "image at the end <image>",
  "literal </s> inside text",
  "</s>USER: next turn",
  "<s>bos literal",
  "<unk> unknown literal",
  "almost tokens: <image <imag> </s <s",
  "Question: What does the person do first?\nOptions:\n(A) opens the door\n(B) sits down\nOnly give the best option.",
  "▁ literal metaspace ▁▁ and underscores ___",
  "URL: https://github.com/farewellthree/PPLLaVA?tab=readme#usage",
  "Markdown **bold** _it_ `code` > quote\n- item\n1. item",
  "mixed 中文 and English and русский 🎉 together",
  "",
  " ",
  "\n",
  "a",
];

export const FRAGMENTS: readonly string[] = [
  "the",
  " video",
  " shows",
  "a man",
  " cooking",
  "pasta",
  ",",
  ".",
  "?",
  "!",
  " ",
  "  ",
  "   ",
  "\t",
  "\n",
  "\n\n",
  "42",
  "3.5",
  "é",
  "ñ",
  "ü",
  "ß",
  "Ω",
  "Ж",
  "щ",
  "中",
  "国",
  "の",
  "한",
  "🙂",
  "🎥",
  "👍🏽",
  "\u{1F9EC}",
  "\u0007",
  "<image>",
  "</s>",
  "<s>",
  "'s",
  "'ll",
  "don't",
  "CamelCase",
  "snake_case",
  "x**2",
  "{}",
  "()",
  "[]",
  "//",
  "#",
  "▁",
  "café",
  "naïve",
  "Привет",
  "мир",
  "ẞ",
  "İ",
  "ﬁ",
  "\u00a0",
  "\u2028",
  "ǅ",
  "Σ",
];

const ASCII_FRAGMENTS = FRAGMENTS.filter((f) => /^[\x20-\x7e\t\n]+$/.test(f));

/** `count` random texts of 1..maxFragments fragments, reproducible from `seed`. */
export function randomTexts(count: number, seed: number, maxFragments = 24, asciiOnly = false): string[] {
  return mixFragments(asciiOnly ? ASCII_FRAGMENTS : FRAGMENTS, count, seed, maxFragments);
}

/** `count` texts of 1..maxFragments pieces drawn from `fragments`, reproducible from `seed`. */
export function mixFragments(
  fragments: readonly string[],
  count: number,
  seed: number,
  maxFragments: number,
): string[] {
  const next = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(next() * maxFragments);
    let text = "";
    for (let j = 0; j < n; j++) text += fragments[Math.floor(next() * fragments.length)];
    out.push(text);
  }
  return out;
}

/** The shared corpus: the fixed hard cases and 400 random mixtures. */
export const CORPUS: readonly string[] = [...FIXED_TEXTS, ...randomTexts(400, 7)];

/** "" when every id list matches, else the first differing text with both lists. */
export function firstMismatch(actual: number[][], expected: number[][], texts: readonly string[]): string {
  const i = actual.findIndex((a, k) => JSON.stringify(a) !== JSON.stringify(expected[k]));
  return i < 0
    ? ""
    : `text ${i} ${JSON.stringify(texts[i])}: got ${JSON.stringify(actual[i])}, want ${JSON.stringify(expected[i])}`;
}
