/**
 * The CLIP text tokenizer of openai/clip-vit-large-patch14-336 as PPLLaVA calls it (spec §3.5, §8 item 6):
 * `CLIPProcessor(...).tokenizer(question, padding="max_length", truncation=True, max_length=248)`. `CLIPProcessor`
 * loads the fast tokenizer, whose pipeline (tokenizer.json) is:
 * - added tokens `<|startoftext|>` 49406 and `<|endoftext|>` 49407 (normalized, special);
 * - normalizer: NFC, every whitespace run → one space, lower-case (per character, no final-sigma rule);
 * - pre-tokenizer: the CLIP regex picks the words (`'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`), the rest
 *   (spaces) is dropped; each word's UTF-8 bytes are mapped to printable characters (GPT-2's bytes_to_unicode);
 * - BPE over the word with "</w>" glued to its last character, merges by rank;
 * - BOS + ids + EOS, truncated to max_length (specials included), padded with EOS (the pad token), mask 1/0.
 * The slow CLIPTokenizer without ftfy differs in two ways nobody here hits on purpose: it puts spaces around CJK
 * ideographs (so each becomes its own word) and drops control characters; this file follows the fast one.
 */
import { mergeSymbols } from "./bpe_merge.ts";
import { type AddedToken, AddedTokenSplitter } from "./added_tokens.ts";
import { TokenizerError } from "./errors.ts";
import { BYTE_CHARS, BYTE_TO_CHAR, CHAR_TO_BYTE, WHITESPACE_CLASS as WS } from "./byte_level.ts";

export const CLIP_BOS_ID = 49406;
export const CLIP_EOS_ID = 49407;
/** PPLLaVA's extended CLIP text context (spec §3.6); 77 for plain CLIP. */
export const CLIP_MAX_LENGTH = 248;

export interface ClipEncoding {
  /** Exactly maxLength ids when padding, else BOS + text + EOS. */
  inputIds: number[];
  attentionMask: number[];
  /** Position of the first EOS (the pooled token of the CLIP text tower). */
  eosIndex: number;
}

export interface ClipEncodeOptions {
  maxLength?: number;
  padding?: "max_length" | "none";
  truncation?: boolean;
}

const WHITESPACE_RUN = new RegExp(`[${WS}]+`, "gu");
const WORD = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WS}\\p{L}\\p{N}]+`, "gu");

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly idOf: Map<string, number>;
  private readonly pieces: string[] = [];
  private readonly ranks = new Map<string, number>();
  private readonly splitter: AddedTokenSplitter;
  private readonly cache = new Map<string, number[]>();

  constructor(vocab: Record<string, number>, merges: readonly (string | readonly string[])[]) {
    this.idOf = new Map(Object.entries(vocab));
    for (const [piece, id] of this.idOf) this.pieces[id] = piece;
    merges.forEach((m, rank) => {
      const key = typeof m === "string" ? m : m.join(" ");
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
    const special = (content: string): AddedToken => {
      const id = this.idOf.get(content);
      if (id === undefined) throw new TokenizerError("invalid_data", `the CLIP vocabulary has no ${content}`);
      return { id, content, special: true, lstrip: false, rstrip: false, normalized: true };
    };
    const bos = special("<|startoftext|>"), eos = special("<|endoftext|>");
    this.bosId = bos.id;
    this.eosId = eos.id;
    this.padId = eos.id;
    this.splitter = new AddedTokenSplitter([bos, eos]);
  }

  /** HF files: vocab.json (parsed) and merges.txt (text, first line "#version: …"). */
  static fromVocabAndMerges(vocab: Record<string, number>, mergesTxt: string): ClipTokenizer {
    return new ClipTokenizer(vocab, parseMergesTxt(mergesTxt));
  }

  /** A parsed HF tokenizer.json with a BPE model (CLIP's). */
  static fromTokenizerJson(json: unknown): ClipTokenizer {
    const model = (json as { model?: { type?: string; vocab?: unknown; merges?: unknown } })?.model;
    if (model?.type !== "BPE" || typeof model.vocab !== "object" || !Array.isArray(model.merges)) {
      throw new TokenizerError("invalid_data", "tokenizer.json must hold a BPE model with a vocab object and merges");
    }
    return new ClipTokenizer(model.vocab as Record<string, number>, model.merges as string[]);
  }

  /**
   * OpenAI's own file, bpe_simple_vocab_16e6.txt (CLIP's simple_tokenizer.py): only merges; the vocabulary is
   * the 256 byte characters, the same with "</w>", one entry per merge (first 48,894), then the two specials —
   * the exact id layout of HF's vocab.json.
   */
  static fromOpenAiBpe(text: string): ClipTokenizer {
    const merges = text.split("\n").slice(1, 49152 - 256 - 2 + 1).map((line) => line.split(" "));
    const list = [
      ...BYTE_CHARS,
      ...BYTE_CHARS.map((c) => c + "</w>"),
      ...merges.map((m) => m.join("")),
      "<|startoftext|>",
      "<|endoftext|>",
    ];
    return new ClipTokenizer(Object.fromEntries(list.map((p, id) => [p, id])), merges);
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  idToToken(id: number): string | undefined {
    return this.pieces[id];
  }

  /** The ids of the text alone (no BOS/EOS, no truncation). */
  encodeText(text: string): number[] {
    const ids: number[] = [];
    for (const segment of this.splitter.split(normalize(text))) {
      if (segment.token) {
        ids.push(segment.token.id);
        continue;
      }
      for (const match of segment.text.matchAll(WORD)) for (const id of this.encodeWord(match[0])) ids.push(id);
    }
    return ids;
  }

  /** What the CLIP text tower gets: BOS + ids + EOS, truncated and padded to `maxLength` (default 248). */
  encode(
    text: string,
    { maxLength = CLIP_MAX_LENGTH, padding = "max_length", truncation = true }: ClipEncodeOptions = {},
  ): ClipEncoding {
    if (!Number.isInteger(maxLength) || maxLength < 2) {
      throw new TokenizerError("bad_argument", `maxLength must be an integer ≥ 2 (BOS + EOS), got ${maxLength}`);
    }
    let body = this.encodeText(text);
    if (truncation && body.length > maxLength - 2) body = body.slice(0, maxLength - 2);
    const inputIds = [this.bosId, ...body, this.eosId];
    const attentionMask = inputIds.map(() => 1);
    if (padding === "max_length") {
      while (inputIds.length < maxLength) {
        inputIds.push(this.padId);
        attentionMask.push(0);
      }
    }
    return { inputIds, attentionMask, eosIndex: inputIds.indexOf(this.eosId) };
  }

  /** Slow CLIPTokenizer's decode: pieces joined, bytes decoded, "</w>" → " ", trimmed. */
  decode(ids: readonly number[], { skipSpecialTokens = true }: { skipSpecialTokens?: boolean } = {}): string {
    const specials = new Set([this.bosId, this.eosId]);
    let joined = "";
    for (const id of ids) {
      const piece = this.pieces[id];
      if (piece === undefined) {
        throw new TokenizerError(
          "unknown_token",
          `id ${id} is outside the CLIP vocabulary (0..${this.pieces.length - 1})`,
        );
      }
      if (!(skipSpecialTokens && specials.has(id))) joined += piece;
    }
    const bytes: number[] = [];
    let text = "";
    for (const ch of joined) {
      const b = CHAR_TO_BYTE.get(ch);
      if (b !== undefined) {
        bytes.push(b);
        continue;
      }
      text += new TextDecoder().decode(Uint8Array.from(bytes.splice(0))) + ch;
    }
    text += new TextDecoder().decode(Uint8Array.from(bytes));
    return text.replaceAll("</w>", " ").trim();
  }

  private encodeWord(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const chars = Array.from(encoder.encode(word), (b) => BYTE_TO_CHAR[b]);
    chars[chars.length - 1] += "</w>";
    const symbols = mergeSymbols(chars, (left, right) => this.ranks.get(left + " " + right));
    const ids = symbols.map((s) => {
      const id = this.idOf.get(s);
      // Every byte and byte+"</w>" is in CLIP's vocabulary, so this only fires on a foreign vocabulary.
      if (id === undefined) throw new TokenizerError("unknown_token", `the CLIP vocabulary has no piece "${s}"`);
      return id;
    });
    if (this.cache.size < 65536) this.cache.set(word, ids);
    return ids;
  }
}

/** NFC, whitespace runs → " ", lower-case character by character (as Rust's char::to_lowercase). */
export function normalize(text: string): string {
  const collapsed = text.normalize("NFC").replace(WHITESPACE_RUN, " ");
  let out = "";
  for (const ch of collapsed) out += ch.toLowerCase();
  return out;
}

export function parseMergesTxt(text: string): string[][] {
  const lines = text.split("\n");
  const start = lines[0]?.startsWith("#version") ? 1 : 0;
  return lines.slice(start).filter((l) => l.length > 0).map((l) => l.split(" "));
}

const encoder = new TextEncoder();
