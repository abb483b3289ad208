/**
 * The LLaMA/Vicuna tokenizer of the PPLLaVA checkpoint (spec §3.7, §8 item 10), behaving as transformers 4.45's
 * `LlamaTokenizerFast` does on the checkpoint's files:
 * - added tokens (`<unk>` 0, `<s>` 1, `</s>` 2, `<image>` 32000, …) are cut out first, so `<image>` stays one id and a
 *   literal "</s>" in the text is the EOS id (the multi-turn template relies on that);
 * - each remaining text segment: spaces → "▁", plus a "▁" dummy prefix: on every segment when `legacy` is true (HF's
 *   `Prepend` normalizer), only on a segment at the very start of the text (and not already starting with "▁") when
 *   `legacy` is false (HF's `Metaspace(prepend_scheme="first")`);
 * - BPE with byte fallback (sentencepiece_bpe.ts); `<s>` prepended when `add_bos_token`.
 * Decoding is HF's decoder chain: "▁" → " ", byte pieces fused into UTF-8 (an invalid run becomes one U+FFFD per
 * byte), one leading space stripped; `skipSpecialTokens` drops special added tokens. `createStreamDecoder()` emits
 * text token by token and always concatenates to exactly `decode(allIds)`.
 */
import {
  type AddedToken,
  addedTokensFromConfig,
  addedTokensFromJson,
  AddedTokenSplitter,
  plainToken,
} from "./added_tokens.ts";
import { TokenizerError } from "./errors.ts";
import { PieceType } from "./sentencepiece_model.ts";
import { type MergeRule, SentencePieceBpe } from "./sentencepiece_bpe.ts";

/**
 * Where the "▁" dummy prefix goes, i.e. what transformers' LlamaConverter builds from `legacy`/`add_prefix_space`:
 * - "prepend": on every text segment, even one already starting with a space (legacy: `Prepend("▁")` normalizer);
 * - "always": on every segment not already starting with "▁" (`Metaspace(prepend_scheme="always")`);
 * - "first": only on a segment at the very start of the text, unless it starts with "▁" (legacy=false);
 * - "never": no prefix (add_prefix_space=false).
 * These follow the fast tokenizer. The slow LlamaTokenizer with legacy=false differs on a text that starts with a
 * space ("▁▁x" there, "▁x" here); the spec's prompts never start with one.
 */
export type PrefixRule = "prepend" | "always" | "first" | "never";

export interface LlamaTokenizerOptions {
  /** Default "prepend" (HF's `legacy` defaults to true when tokenizer_config.json does not say). */
  prefixRule?: PrefixRule;
  addBosToken?: boolean;
  addEosToken?: boolean;
  /** Extra added tokens (tokenizer_config `added_tokens_decoder`, added_tokens.json). */
  addedTokens?: AddedToken[];
  /** Only for a tokenizer.model; see sentencepiece_bpe.ts. Default "hf". */
  mergeRule?: MergeRule;
}

/** The files of a checkpoint folder that concern the tokenizer, already read (this module does no I/O). */
export interface LlamaTokenizerFiles {
  tokenizerModel?: Uint8Array;
  tokenizerJson?: unknown;
  tokenizerConfig?: unknown;
  addedTokensJson?: unknown;
  specialTokensMap?: unknown;
}

export const LLAMA_BOS_ID = 1;
export const LLAMA_EOS_ID = 2;

export class LlamaTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly addBosToken: boolean;
  readonly addEosToken: boolean;
  readonly prefixRule: PrefixRule;
  private readonly addedById = new Map<number, AddedToken>();
  private readonly splitter: AddedTokenSplitter;

  constructor(readonly model: SentencePieceBpe, options: LlamaTokenizerOptions = {}) {
    this.prefixRule = options.prefixRule ?? "prepend";
    this.addBosToken = options.addBosToken ?? true;
    this.addEosToken = options.addEosToken ?? false;
    // LLaMA's control pieces and <unk> are HF special tokens; then the listed ones (a later entry replaces an id).
    model.types.forEach((type, id) => {
      if (type === PieceType.Control || type === PieceType.Unknown) {
        this.addedById.set(id, plainToken(id, model.pieces[id], true));
      }
    });
    for (const token of options.addedTokens ?? []) this.addedById.set(token.id, token);
    this.splitter = new AddedTokenSplitter([...this.addedById.values()]);
    this.bosId = model.pieceToId("<s>") ?? LLAMA_BOS_ID;
    this.eosId = model.pieceToId("</s>") ?? LLAMA_EOS_ID;
  }

  /** From a checkpoint's files: tokenizer.json when present (what HF loads first), else tokenizer.model. */
  static fromFiles(files: LlamaTokenizerFiles, mergeRule: MergeRule = "hf"): LlamaTokenizer {
    const config = (files.tokenizerConfig ?? {}) as Record<string, unknown>;
    const addedTokens = [
      ...addedTokensFromJson(files.tokenizerJson),
      ...addedTokensFromConfig(config, files.addedTokensJson, files.specialTokensMap),
    ];
    const flags = {
      addBosToken: typeof config.add_bos_token === "boolean" ? config.add_bos_token : true,
      addEosToken: config.add_eos_token === true,
    };
    if (files.tokenizerJson !== undefined) {
      return new LlamaTokenizer(SentencePieceBpe.fromTokenizerJson(files.tokenizerJson), {
        ...flags,
        ...prefixRuleOfTokenizerJson(files.tokenizerJson),
        addedTokens,
      });
    }
    if (files.tokenizerModel === undefined) {
      throw new TokenizerError("invalid_data", "the checkpoint has neither tokenizer.json nor tokenizer.model");
    }
    return new LlamaTokenizer(SentencePieceBpe.fromModelProto(files.tokenizerModel, mergeRule), {
      ...flags,
      prefixRule: config.add_prefix_space === false ? "never" : config.legacy === false ? "first" : "prepend",
      addedTokens,
      mergeRule,
    });
  }

  get vocabSize(): number {
    return Math.max(this.model.size, ...[...this.addedById.keys()].map((id) => id + 1));
  }

  /** HF `tokenizer(text).input_ids`: BOS (when configured) + the ids of the text. */
  encode(text: string, { addSpecialTokens = true }: { addSpecialTokens?: boolean } = {}): number[] {
    const ids: number[] = [];
    if (addSpecialTokens && this.addBosToken) ids.push(this.bosId);
    for (const segment of this.splitter.split(text)) {
      if (segment.token) {
        ids.push(segment.token.id);
        continue;
      }
      const normalized = this.normalizeSegment(segment.text, segment.start);
      for (const id of this.model.encodeNormalized(normalized)) ids.push(id);
    }
    if (addSpecialTokens && this.addEosToken) ids.push(this.eosId);
    return ids;
  }

  /**
   * SentencePiece's own `encode` (no added tokens, no BOS), using the normalizer of the tokenizer.model:
   * dummy prefix, optional whitespace squeezing, spaces → "▁". This is what the slow tokenizer runs per segment.
   */
  encodePlain(text: string): number[] {
    const spec = this.model.normalizer ??
      { addDummyPrefix: true, removeExtraWhitespaces: false, escapeWhitespaces: true };
    let t = text;
    if (spec.removeExtraWhitespaces) t = t.replace(/ +/g, " ").replace(/^ | $/g, "");
    if (t.length === 0) return [];
    if (spec.addDummyPrefix) t = " " + t;
    if (spec.escapeWhitespaces) t = t.replaceAll(" ", "▁");
    return this.model.encodeNormalized(t);
  }

  /** The piece (or added token content) of an id; undefined outside the vocabulary. */
  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.model.pieces[id];
  }

  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special === true;
  }

  decode(ids: readonly number[], { skipSpecialTokens = false }: { skipSpecialTokens?: boolean } = {}): string {
    const stream = this.createStreamDecoder({ skipSpecialTokens });
    let text = "";
    for (const id of ids) text += stream.push(id);
    return text + stream.flush();
  }

  createStreamDecoder({ skipSpecialTokens = true }: { skipSpecialTokens?: boolean } = {}): LlamaStreamDecoder {
    return new LlamaStreamDecoder(this, skipSpecialTokens, this.prefixRule !== "never");
  }

  private normalizeSegment(text: string, start: number): string {
    const escaped = text.replaceAll(" ", "▁");
    const rule = this.prefixRule;
    if (rule === "prepend") return "▁" + escaped;
    const wanted = rule === "always" || (rule === "first" && start === 0);
    return wanted && !escaped.startsWith("▁") ? "▁" + escaped : escaped;
  }
}

/**
 * Incremental decoding. A run of byte-fallback pieces is held until the next non-byte token (or `flush`), because
 * HF decodes the whole run at once (a run that is not valid UTF-8 becomes one U+FFFD per byte); so a character split
 * over several tokens is never emitted half-way, and the chunks concatenate to `decode(ids)` exactly.
 */
export class LlamaStreamDecoder {
  private pendingBytes: number[] = [];
  private atStart: boolean;

  constructor(
    private readonly tokenizer: LlamaTokenizer,
    private readonly skipSpecialTokens: boolean,
    stripLeadingSpace: boolean,
  ) {
    this.atStart = stripLeadingSpace;
  }

  /** Text that became final with this token ("" while a byte run is pending). */
  push(id: number): string {
    const { tokenizer } = this;
    if (this.skipSpecialTokens && tokenizer.isSpecial(id)) return "";
    const byte = tokenizer.isSpecial(id) ? -1 : tokenizer.model.byteOf(id);
    if (byte >= 0) {
      this.pendingBytes.push(byte);
      return "";
    }
    const piece = tokenizer.idToToken(id);
    if (piece === undefined) return ""; // HF's id_to_token gives None for an id outside the vocabulary: skipped.
    return this.emit(this.takeBytes() + piece.replaceAll("▁", " "));
  }

  /** The rest at the end of generation. */
  flush(): string {
    return this.emit(this.takeBytes());
  }

  private takeBytes(): string {
    if (this.pendingBytes.length === 0) return "";
    const bytes = Uint8Array.from(this.pendingBytes);
    this.pendingBytes = [];
    try {
      return strictUtf8.decode(bytes);
    } catch {
      return "\uFFFD".repeat(bytes.length);
    }
  }

  private emit(text: string): string {
    if (!this.atStart || text.length === 0) return text;
    this.atStart = false;
    return text.startsWith(" ") ? text.slice(1) : text;
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A tokenizer.json says its prefix rule itself: a `Prepend` normalizer (legacy) or a `Metaspace` pre-tokenizer. */
function prefixRuleOfTokenizerJson(json: unknown): { prefixRule: PrefixRule } {
  const j = json as { normalizer?: Record<string, unknown> | null; pre_tokenizer?: Record<string, unknown> | null };
  const normalizers = j.normalizer?.type === "Sequence" ? (j.normalizer.normalizers as Record<string, unknown>[]) : [
    j.normalizer,
  ];
  if (normalizers.some((n) => n?.type === "Prepend")) return { prefixRule: "prepend" };
  const pre = j.pre_tokenizer;
  if (pre?.type === "Metaspace") {
    const scheme = pre.prepend_scheme ?? (pre.add_prefix_space === false ? "never" : "always");
    if (scheme === "always" || scheme === "first" || scheme === "never") return { prefixRule: scheme };
    throw new TokenizerError(
      "unsupported",
      `Metaspace prepend_scheme "${String(scheme)}" (allowed: always, first, never)`,
    );
  }
  return { prefixRule: "never" };
}
