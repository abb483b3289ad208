/**
 * What the byte-level BPE tokenizers (GPT-2 style: CLIP's, Qwen2's) share: GPT-2's byte ↔ printable-character map,
 * and the translation of a HF tokenizer.json pre-tokenizer regex (written for Rust's Oniguruma) into a JavaScript
 * `u` regex that matches the same text on Deno, Bun and Node alike.
 */
import { TokenizerError } from "./errors.ts";

/**
 * GPT-2's bytes_to_unicode: the printable bytes ("!".."~", "¡".."¬", "®".."ÿ") stand for themselves, the others
 * become U+0100 + n in byte order. `BYTE_CHARS` lists the characters in that order (printable first): the order of
 * the first 256 vocabulary entries of CLIP's vocabulary.
 */
export const BYTE_TO_CHAR: readonly string[] = [];
export const BYTE_CHARS: readonly string[] = [];
{
  const toChar = BYTE_TO_CHAR as string[], inOrder = BYTE_CHARS as string[];
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  for (let b = 0; b < 256; b++) if (printable(b)) inOrder.push(toChar[b] = String.fromCharCode(b));
  let n = 0;
  for (let b = 0; b < 256; b++) if (!printable(b)) inOrder.push(toChar[b] = String.fromCharCode(256 + n++));
}
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/**
 * Oniguruma's `\s` (Unicode White_Space), as a character-class body. JavaScript's `\s` differs: it adds U+FEFF and
 * omits U+0085, so a translated pattern never uses it.
 */
export const WHITESPACE_CLASS =
  "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/** Case-insensitive twins under Unicode simple case folding (ſ folds to s, the Kelvin sign to k). */
const FOLDS: Record<string, string> = { s: "sSſ", k: "kK\u212a" };

/**
 * An Oniguruma pattern → a JavaScript source for `new RegExp(source, "gu")`:
 * - `\s`/`\S` become explicit White_Space classes, `\d`/`\D` Unicode decimal digits (Oniguruma's are Unicode);
 * - `(?i:…)` groups (regexp modifiers, which older V8 and JavaScriptCore lack) spell each ASCII letter as a class.
 * Anything else that could differ (`\w`, `\h`, nested classes, inline flags other than a `(?i:` group, a letter
 * class inside one) is refused as "unsupported" rather than guessed.
 */
export function onigurumaToJs(pattern: string): string {
  let out = "";
  let inClass = false;
  const groups: boolean[] = []; // per open group: does it end a case-insensitive span
  let ci = 0;
  const refuse = (what: string): never => {
    throw new TokenizerError("unsupported", `pre-tokenizer regex ${JSON.stringify(pattern)}: ${what}`);
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      const e = pattern[++i];
      if (e === undefined) refuse("ends with a lone backslash");
      if (e === "s") out += inClass ? WHITESPACE_CLASS : `[${WHITESPACE_CLASS}]`;
      else if (e === "S") out += inClass ? refuse("\\S inside a class") : `[^${WHITESPACE_CLASS}]`;
      else if (e === "d") out += "\\p{Nd}";
      else if (e === "D") out += inClass ? refuse("\\D inside a class") : "\\P{Nd}";
      else if ("wWhHbBAzZG".includes(e)) refuse(`\\${e} (its Unicode meaning differs between engines)`);
      else if (e === "p" || e === "P") {
        const end = pattern.indexOf("}", i);
        if (pattern[i + 1] !== "{" || end < 0) refuse("\\p without {…}");
        out += pattern.slice(i - 1, end + 1);
        i = end;
      } else out += "\\" + e;
    } else if (inClass) {
      if (c === "[") refuse("a nested character class");
      if (ci > 0 && /[A-Za-z]/.test(c)) refuse("a letter in a class inside (?i:…)");
      if (c === "]") inClass = false;
      out += c;
    } else if (c === "[") {
      inClass = true;
      out += c;
      if (pattern[i + 1] === "^") out += pattern[++i];
      if (pattern[i + 1] === "]") out += "\\" + pattern[++i]; // a leading "]" is a literal in Oniguruma
    } else if (c === "(") {
      if (pattern.startsWith("(?i:", i)) {
        groups.push(true);
        ci++;
        out += "(?:";
        i += 3;
        continue;
      }
      if (pattern[i + 1] === "?" && !/^\(\?(?::|=|!|<=|<!|<[A-Za-z])/.test(pattern.slice(i, i + 4))) {
        refuse("an inline flag group other than (?i:…)");
      }
      groups.push(false);
      out += c;
    } else if (c === ")") {
      if (groups.pop()) ci--;
      out += c;
    } else if (ci > 0 && /[A-Za-z]/.test(c)) {
      const lower = c.toLowerCase();
      out += `[${FOLDS[lower] ?? lower + lower.toUpperCase()}]`;
    } else out += c;
  }
  if (inClass || groups.length > 0) refuse("unbalanced brackets");
  return out;
}
