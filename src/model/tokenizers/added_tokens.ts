/**
 * Added tokens (`<s>`, `</s>`, `<image>`, `<|endoftext|>`, …) are cut out of the text before the BPE model sees it,
 * as HF tokenizers' `AddedVocabulary` does: at each position the earliest match wins, and among matches starting
 * there the longest (Aho-Corasick leftmost-longest). `lstrip`/`rstrip` tokens also swallow the whitespace beside
 * them. Not implemented: `single_word` (such tokens match anywhere), and matching `normalized: true` tokens after
 * the normalizer — every token is matched on the raw text. The two agree for the checkpoints here (LLaVA-NeXT adds
 * `<image>` with normalized=false; LLaMA's and CLIP's specials contain no spaces or upper case), but HF's legacy
 * `Prepend("▁")` normalizer would also rewrite a normalized token's own content, which is not reproduced.
 */

import { TokenizerError } from "./errors.ts";

export interface AddedToken {
  id: number;
  content: string;
  /** Special tokens are dropped by `decode(…, { skipSpecialTokens: true })`. */
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
  /** Matched after the normalizer ran (true) or on the raw text (false). */
  normalized: boolean;
}

/** A piece of the input: either plain text for the model or one added token. `start` is its offset in the input. */
export type Segment = { text: string; start: number; token?: undefined } | { token: AddedToken; start: number };

// HF's whitespace for lstrip/rstrip is Rust's char::is_whitespace (Unicode White_Space).
const WHITESPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;

export class AddedTokenSplitter {
  private readonly byFirstChar = new Map<string, AddedToken[]>();

  /** `whitespace`: what lstrip/rstrip swallow (default HF's; transformers' slow tokenizers strip Python's). */
  constructor(tokens: readonly AddedToken[], private readonly whitespace: RegExp = WHITESPACE) {
    for (const token of tokens) {
      if (token.content.length === 0) continue;
      const first = token.content[0];
      const list = this.byFirstChar.get(first) ?? [];
      list.push(token);
      this.byFirstChar.set(first, list);
    }
    // Longest first, so the first hit at a position is the leftmost-longest match.
    for (const list of this.byFirstChar.values()) list.sort((a, b) => b.content.length - a.content.length);
  }

  get empty(): boolean {
    return this.byFirstChar.size === 0;
  }

  /** Splits `text` (whose first character sits at `offset` of the whole input) into text and token segments. */
  split(text: string, offset = 0): Segment[] {
    const out: Segment[] = [];
    let textStart = 0;
    let i = 0;
    while (i < text.length) {
      const token = this.matchAt(text, i);
      if (!token) {
        i++;
        continue;
      }
      let before = i;
      if (token.lstrip) { while (before > textStart && this.whitespace.test(text[before - 1])) before--; }
      let after = i + token.content.length;
      if (token.rstrip) { while (after < text.length && this.whitespace.test(text[after])) after++; }
      if (before > textStart) out.push({ text: text.slice(textStart, before), start: offset + textStart });
      out.push({ token, start: offset + before });
      textStart = i = after;
    }
    if (textStart < text.length) out.push({ text: text.slice(textStart), start: offset + textStart });
    return out;
  }

  private matchAt(text: string, i: number): AddedToken | undefined {
    const candidates = this.byFirstChar.get(text[i]);
    if (!candidates) return undefined;
    for (const token of candidates) if (text.startsWith(token.content, i)) return token;
    return undefined;
  }
}

export function plainToken(id: number, content: string, special: boolean): AddedToken {
  return { id, content, special, lstrip: false, rstrip: false, normalized: !special };
}

export function addedTokensFromJson(json: unknown): AddedToken[] {
  const list = (json as { added_tokens?: unknown })?.added_tokens;
  if (!Array.isArray(list)) return [];
  return list.map((t) => tokenFromRecord(Number(t.id), t));
}

function tokenFromRecord(id: number, t: Record<string, unknown>): AddedToken {
  if (!Number.isInteger(id) || typeof t.content !== "string") {
    throw new TokenizerError(
      "invalid_data",
      `an added token needs an integer id and a string content, got ${JSON.stringify(t)}`,
    );
  }
  const special = t.special === true;
  return {
    id,
    content: t.content,
    special,
    lstrip: t.lstrip === true,
    rstrip: t.rstrip === true,
    normalized: typeof t.normalized === "boolean" ? t.normalized : !special,
  };
}

/**
 * tokenizer_config.json `added_tokens_decoder` (transformers ≥ 4.34 writes every added token there with its flags),
 * then added_tokens.json entries not yet known: special when special_tokens_map lists them, as transformers does.
 */
export function addedTokensFromConfig(
  config: Record<string, unknown>,
  addedJson: unknown,
  specialMap: unknown,
): AddedToken[] {
  const out: AddedToken[] = [];
  const decoder = config.added_tokens_decoder;
  if (decoder && typeof decoder === "object") {
    for (const [id, t] of Object.entries(decoder as Record<string, Record<string, unknown>>)) {
      out.push(tokenFromRecord(Number(id), t));
    }
  }
  const specials = new Set<string>();
  const map = (specialMap ?? {}) as Record<string, unknown>;
  for (const value of Object.values(map)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      const content = typeof v === "string" ? v : (v as { content?: unknown })?.content;
      if (typeof content === "string") specials.add(content);
    }
  }
  if (addedJson && typeof addedJson === "object") {
    for (const [content, id] of Object.entries(addedJson as Record<string, number>)) {
      if (out.some((t) => t.id === id)) continue;
      out.push(plainToken(Number(id), content, specials.has(content)));
    }
  }
  return out;
}
