/**
 * A byte-level BPE tokenizer read from a HF `tokenizer.json` (spec §9: Qwen2's, 151,643 pieces + added tokens), as
 * HF tokenizers runs that file:
 * - added tokens (`<|endoftext|>` 151643, `<|im_start|>`, `<|im_end|>`, and `<image>` 151646 in LLaVA-OneVision's
 *   copy) are cut out of the raw text first (added_tokens.ts), so the chat template's markers are single ids;
 * - each text segment: the normalizer (NFC for Qwen2; NFD/NFKC/NFKD/Lowercase/Sequence also read), then the
 *   pre-tokenizer — a `Split` regex (behaviour "Isolated") and/or `ByteLevel` (its GPT-2 regex when `use_regex`) —
 *   and each piece's UTF-8 bytes mapped to GPT-2's printable characters (byte_level.ts);
 * - BPE on each piece by merge rank (bpe_merge.ts); `ignore_merges` (Llama-3 style) takes a whole piece that is
 *   itself in the vocabulary; a symbol outside the vocabulary becomes `unk_token` or is dropped, as HF does;
 * - the post-processor: `ByteLevel` adds nothing, `TemplateProcessing` adds the special tokens of its `single` form.
 * Decoding is HF's ByteLevel decoder: pieces → bytes → UTF-8 with U+FFFD for invalid sequences; a non-skipped added
 * token is written as its text and ends the byte run before it (HF tokenizers ≥ 0.20 and transformers.js do so);
 * ids outside the vocabulary are skipped, as HF's `id_to_token` → None is.
 * JavaScript strings may hold lone surrogates, which Rust strings cannot: they encode as U+FFFD (TextEncoder's rule).
 */
import { type AddedToken, addedTokensFromConfig, addedTokensFromJson, AddedTokenSplitter } from "./added_tokens.ts";
import { mergeSymbols } from "./bpe_merge.ts";
import { BYTE_TO_CHAR, CHAR_TO_BYTE, onigurumaToJs } from "./byte_level.ts";
import { TokenizerError } from "./errors.ts";
import type { EncodeOptions, StreamDecoder, TextTokenizer, TextTokenizerFiles } from "./text_tokenizer.ts";

/** GPT-2's pattern: what a `ByteLevel` pre-tokenizer with `use_regex: true` splits by. */
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/** Default bound on `encode`'s input, in UTF-16 code units (a VideoMME subtitle block is a few thousand). */
export const MAX_INPUT_LENGTH = 1 << 20;
const WORD_CACHE_SIZE = 65536;

type Json = Record<string, unknown>;

export interface ByteLevelBpeOptions {
  /** tokenizer_config.json (its `eos_token`, `added_tokens_decoder`). */
  tokenizerConfig?: unknown;
  addedTokensJson?: unknown;
  specialTokensMap?: unknown;
  /** Bound on `encode`'s input length (UTF-16 code units); default MAX_INPUT_LENGTH. */
  maxInputLength?: number;
}

export class ByteLevelBpeTokenizer implements TextTokenizer {
  readonly kind = "byte_level_bpe";
  readonly eosId: number;
  readonly maxInputLength: number;
  private readonly idOf = new Map<string, number>();
  private readonly pieces: string[] = [];
  private readonly ranks = new Map<string, number>();
  private readonly addedById = new Map<number, AddedToken>();
  private readonly splitter: AddedTokenSplitter;
  private readonly normalizers: ((text: string) => string)[];
  private readonly preTokenizers: PreTokenizerStep[];
  private readonly ignoreMerges: boolean;
  private readonly unkId: number | undefined;
  private readonly prefixIds: number[] = [];
  private readonly suffixIds: number[] = [];
  private readonly cache = new Map<string, number[]>();

  constructor(json: unknown, options: ByteLevelBpeOptions = {}) {
    const j = (json ?? {}) as Json;
    const model = j.model as Json | undefined;
    if (model?.type !== "BPE" || typeof model.vocab !== "object" || model.vocab === null) {
      throw new TokenizerError("invalid_data", "tokenizer.json must hold a BPE model with a vocab object");
    }
    for (const key of ["continuing_subword_prefix", "end_of_word_suffix"]) {
      if (model[key]) throw new TokenizerError("unsupported", `a byte-level BPE with ${key} "${model[key]}"`);
    }
    if (model.byte_fallback === true) throw new TokenizerError("unsupported", "byte_fallback in a byte-level BPE");
    if (typeof model.dropout === "number" && model.dropout > 0) {
      throw new TokenizerError("unsupported", `BPE dropout ${model.dropout} (only deterministic encoding)`);
    }
    for (const [piece, id] of Object.entries(model.vocab as Record<string, unknown>)) {
      if (!Number.isInteger(id) || (id as number) < 0) {
        throw new TokenizerError("invalid_data", `vocab entry ${JSON.stringify(piece)} has id ${id}`);
      }
      this.idOf.set(piece, id as number);
      this.pieces[id as number] = piece;
    }
    this.readMerges(model.merges);
    this.ignoreMerges = model.ignore_merges === true;
    this.unkId = typeof model.unk_token === "string" ? this.idOf.get(model.unk_token) : undefined;

    const config = (options.tokenizerConfig ?? {}) as Json;
    const added = [
      ...addedTokensFromJson(json),
      ...addedTokensFromConfig(config, options.addedTokensJson, options.specialTokensMap),
    ];
    for (const token of added) this.addedById.set(token.id, token);
    this.splitter = new AddedTokenSplitter([...this.addedById.values()]);
    this.normalizers = readNormalizer(j.normalizer as Json | null | undefined);
    this.preTokenizers = readPreTokenizer(j.pre_tokenizer as Json | null | undefined);
    this.readPostProcessor(j.post_processor as Json | null | undefined);
    const eos = tokenContent(config.eos_token);
    this.eosId = (eos !== undefined ? this.tokenToId(eos) : undefined) ?? this.tokenToId("<|endoftext|>") ?? -1;
    this.maxInputLength = options.maxInputLength ?? MAX_INPUT_LENGTH;
  }

  static fromFiles(files: TextTokenizerFiles, maxInputLength?: number): ByteLevelBpeTokenizer {
    return new ByteLevelBpeTokenizer(files.tokenizerJson, { ...files, maxInputLength });
  }

  /** Does this tokenizer.json describe a byte-level BPE (a ByteLevel pre-tokenizer or decoder)? */
  static handles(json: unknown): boolean {
    const j = (json ?? {}) as Json;
    const hasByteLevel = (node: unknown): boolean => {
      const n = node as Json | null | undefined;
      if (!n || typeof n !== "object") return false;
      if (n.type === "ByteLevel") return true;
      const list = n.pretokenizers ?? n.decoders;
      return Array.isArray(list) && list.some(hasByteLevel);
    };
    return (j.model as Json | undefined)?.type === "BPE" && (hasByteLevel(j.pre_tokenizer) || hasByteLevel(j.decoder));
  }

  get vocabSize(): number {
    return Math.max(this.pieces.length, ...[...this.addedById.keys()].map((id) => id + 1));
  }

  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.pieces[id];
  }

  tokenToId(token: string): number | undefined {
    for (const added of this.addedById.values()) if (added.content === token) return added.id;
    return this.idOf.get(token);
  }

  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special === true;
  }

  /** HF `tokenizer(text).input_ids` (post-processor tokens when `addSpecialTokens`; Qwen2 adds none). */
  encode(text: string, { addSpecialTokens = true }: EncodeOptions = {}): number[] {
    if (text.length > this.maxInputLength) {
      throw new TokenizerError(
        "limit",
        `the text has ${text.length} UTF-16 units; at most ${this.maxInputLength} are tokenized (maxInputLength)`,
      );
    }
    const ids: number[] = addSpecialTokens ? this.prefixIds.slice() : [];
    for (const segment of this.splitter.split(text)) {
      if (segment.token) {
        ids.push(segment.token.id);
        continue;
      }
      let normalized = segment.text;
      for (const normalize of this.normalizers) normalized = normalize(normalized);
      for (const word of this.preTokenize(normalized)) for (const id of this.encodeWord(word)) ids.push(id);
    }
    if (addSpecialTokens) ids.push(...this.suffixIds);
    return ids;
  }

  decode(ids: readonly number[], { skipSpecialTokens = false }: { skipSpecialTokens?: boolean } = {}): string {
    const stream = this.createStreamDecoder({ skipSpecialTokens });
    let text = "";
    for (const id of ids) text += stream.push(id);
    return text + stream.flush();
  }

  /**
   * Text token by token. The bytes of an unfinished UTF-8 character wait in a streaming TextDecoder (the WHATWG
   * decoder replaces exactly what a one-shot decode would), so the pieces concatenate to `decode(ids)`.
   */
  createStreamDecoder({ skipSpecialTokens = true }: { skipSpecialTokens?: boolean } = {}): StreamDecoder {
    const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
    return {
      push: (id: number): string => {
        const added = this.addedById.get(id);
        if (added) return skipSpecialTokens && added.special ? "" : utf8.decode() + added.content;
        const piece = this.pieces[id];
        return piece === undefined ? "" : utf8.decode(pieceBytes(piece), { stream: true });
      },
      flush: (): string => utf8.decode(),
    };
  }

  /** The pre-tokenizer's pieces of one normalized segment, each already mapped to byte characters. */
  private preTokenize(text: string): string[] {
    let parts = [text];
    for (const step of this.preTokenizers) parts = parts.flatMap(step);
    return parts.map((part) => {
      let chars = "";
      for (const b of encoder.encode(part)) chars += BYTE_TO_CHAR[b];
      return chars;
    });
  }

  private encodeWord(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    let ids: number[];
    const whole = this.ignoreMerges ? this.idOf.get(word) : undefined;
    if (whole !== undefined) ids = [whole];
    else {
      const symbols = mergeSymbols(Array.from(word), (left, right) => this.ranks.get(pairKey(left, right)));
      ids = [];
      for (const symbol of symbols) {
        const id = this.idOf.get(symbol) ?? this.unkId;
        if (id !== undefined) ids.push(id); // HF drops a symbol it cannot map when there is no unk_token
      }
    }
    if (this.cache.size < WORD_CACHE_SIZE) this.cache.set(word, ids);
    return ids;
  }

  /** Merges as "a b" strings or [a, b] pairs; a later duplicate replaces an earlier one (HF collects a HashMap). */
  private readMerges(merges: unknown): void {
    if (!Array.isArray(merges)) throw new TokenizerError("invalid_data", "the BPE model has no merges list");
    merges.forEach((m, rank) => {
      const pair = typeof m === "string" ? splitMerge(m) : m;
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
        throw new TokenizerError("invalid_data", `merge ${rank} is not "a b" or [a, b]: ${JSON.stringify(m)}`);
      }
      const missing = [pair[0], pair[1], pair[0] + pair[1]].find((piece) => !this.idOf.has(piece));
      if (missing !== undefined) {
        throw new TokenizerError("invalid_data", `merge ${rank} uses ${JSON.stringify(missing)}, not in the vocab`);
      }
      this.ranks.set(pairKey(pair[0], pair[1]), rank);
    });
  }

  private readPostProcessor(post: Json | null | undefined): void {
    if (!post || post.type === "ByteLevel") return;
    if (post.type !== "TemplateProcessing" || !Array.isArray(post.single)) {
      throw new TokenizerError(
        "unsupported",
        `post-processor ${String(post.type)} (allowed: ByteLevel, TemplateProcessing)`,
      );
    }
    let target = this.prefixIds;
    for (const item of post.single as Json[]) {
      if (item.Sequence) target = this.suffixIds;
      const special = item.SpecialToken as Json | undefined;
      if (!special) continue;
      const spec = (post.special_tokens as Record<string, Json> | undefined)?.[String(special.id)];
      const ids = spec?.ids;
      if (!Array.isArray(ids)) {
        throw new TokenizerError("invalid_data", `template token ${String(special.id)} has no ids`);
      }
      target.push(...(ids as number[]));
    }
  }
}

const encoder = new TextEncoder();

function pairKey(left: string, right: string): string {
  return left.length + ":" + left + right; // unambiguous even when a piece holds a space
}

function splitMerge(merge: string): string[] {
  const space = merge.indexOf(" ", 1);
  return space < 0 ? [merge] : [merge.slice(0, space), merge.slice(space + 1)];
}

function pieceBytes(piece: string): Uint8Array {
  const bytes = new Uint8Array(piece.length);
  let n = 0;
  for (const ch of piece) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b === undefined) return encoder.encode(piece); // HF's ByteLevel decoder takes such a piece as its UTF-8
    bytes[n++] = b;
  }
  return bytes.subarray(0, n);
}

/** HF `Split` with behaviour "Isolated": every match and every stretch between matches is a piece. */
function splitIsolated(text: string, pattern: RegExp): string[] {
  const out: string[] = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match[0].length === 0) continue;
    if (match.index! > last) out.push(text.slice(last, match.index));
    out.push(match[0]);
    last = match.index! + match[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  const content = (value as Json | null | undefined)?.content;
  return typeof content === "string" ? content : undefined;
}

function readNormalizer(node: Json | null | undefined): ((text: string) => string)[] {
  if (!node) return [];
  switch (node.type) {
    case "Sequence":
      return (node.normalizers as Json[]).flatMap(readNormalizer);
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD": {
      const form = node.type;
      return [(t) => t.normalize(form)];
    }
    case "Lowercase": // character by character, as Rust's char::to_lowercase (no final-sigma rule)
      return [(t) => Array.from(t, (ch) => ch.toLowerCase()).join("")];
    default:
      throw new TokenizerError(
        "unsupported",
        `normalizer ${String(node.type)} (allowed: NFC, NFD, NFKC, NFKD, Lowercase, Sequence)`,
      );
  }
}

/** One pre-tokenizer stage: a piece in, its pieces out. */
type PreTokenizerStep = (piece: string) => string[];

/** Split (Isolated) and ByteLevel stages, in the file's order; ByteLevel's prefix space goes on every piece. */
function readPreTokenizer(node: Json | null | undefined): PreTokenizerStep[] {
  const nodes = !node ? [] : node.type === "Sequence" ? (node.pretokenizers as Json[]) : [node];
  const steps: PreTokenizerStep[] = [];
  const split = (source: string): PreTokenizerStep => {
    const regex = new RegExp(source, "gu");
    return (piece) => splitIsolated(piece, regex);
  };
  for (const n of nodes) {
    if (n.type === "Split") {
      const pattern = (n.pattern as Json | undefined) ?? {};
      if (n.behavior !== "Isolated" || n.invert === true) {
        throw new TokenizerError(
          "unsupported",
          `Split behaviour ${String(n.behavior)}, invert ${n.invert} (allowed: Isolated, not inverted)`,
        );
      }
      if (typeof pattern.Regex === "string") steps.push(split(onigurumaToJs(pattern.Regex)));
      else if (typeof pattern.String === "string") {
        steps.push(split(pattern.String.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
      } else throw new TokenizerError("invalid_data", "a Split pre-tokenizer without a pattern");
    } else if (n.type === "ByteLevel") {
      if (n.add_prefix_space === true) steps.push((piece) => [piece.startsWith(" ") ? piece : " " + piece]);
      if (n.use_regex !== false) steps.push(split(onigurumaToJs(GPT2_PATTERN)));
    } else {
      throw new TokenizerError("unsupported", `pre-tokenizer ${String(n.type)} (allowed: Split, ByteLevel, Sequence)`);
    }
  }
  return steps;
}
