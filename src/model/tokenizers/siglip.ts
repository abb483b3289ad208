/**
 * The text tokenizer of the Qwen2 variant's PGP text tower (spec §9). Upstream (`LLaVA_Processer` in
 * ppllava/test/video_utils.py) loads `SiglipProcessor.from_pretrained("google/siglip-so400m-patch14-384").tokenizer`
 * — transformers' slow `SiglipTokenizer` over a SentencePiece unigram `spiece.model` (32,000 pieces: `</s>` 1 is EOS
 * and pad, `<unk>` 2, no BOS) — and calls it with `padding="max_length", truncation=True, max_length=196` (64 without
 * `extend_clip`). What that tokenizer does, step by step (transformers' tokenization_siglip.py):
 * 1. `"▁" + text.replace("▁", " ")`;
 * 2. lower-case character by character (`do_lower_case`), except the special tokens themselves, newlines untouched;
 * 3. cut out the special tokens `</s>` and `<unk>` (both lstrip/rstrip: they swallow the whitespace beside them);
 * 4. each text segment: remove ASCII punctuation (`string.punctuation`), whitespace runs → " ", strip (Python's
 *    whitespace: `str.isspace`), then sentencepiece on `"<unk>" + segment` with the pieces of `"<unk>"` alone cut
 *    off the front (a trick to avoid the dummy prefix, which SigLIP disables);
 * 5. drop a leading lone "▁" piece when a special token follows it; EOS appended unless the ids end with it;
 * 6. truncate to max_length − 1 before the EOS, pad with `</s>` to max_length; mask 1 for ids, 0 for padding.
 * The unigram model and the approximated nmt_nfkc normalizer are in unigram.ts. Gap: google's spiece.model is not
 * reachable from this machine (no HF hub, no npm package ships it), so this file is tested against transformers'
 * text steps (a Python oracle) and @huggingface/tokenizers' Unigram on another vocabulary, not on SigLIP's own ids.
 */
import { type AddedToken, AddedTokenSplitter } from "./added_tokens.ts";
import { TokenizerError } from "./errors.ts";
import type { ClipEncoding } from "./clip.ts";
import { PieceType, readSentencePieceModel } from "./sentencepiece_model.ts";
import { nmtNfkc, UnigramModel } from "./unigram.ts";

/** PPLLaVA's extended SigLIP text context (spec §9, `extend_clip`); 64 for plain SigLIP. */
export const SIGLIP_MAX_LENGTH = 196;
const MAX_INPUT_LENGTH = 1 << 20;

// Python's str.isspace / `\s` on str: Unicode White_Space plus the separators U+001C..U+001F.
const PY_WS = "\\t\\n\\v\\f\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_WS_RUN = new RegExp(`[${PY_WS}]+`, "gu");
const PY_STRIP = new RegExp(`^[${PY_WS}]+|[${PY_WS}]+$`, "gu");
const ASCII_PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

/** One step-4 input: canonicalized text for sentencepiece, or a special token. */
export type SiglipSegment = { text: string } | { special: string };

export class SiglipTokenizer {
  readonly eosId: number;
  readonly padId: number;
  private readonly splitter: AddedTokenSplitter;
  private readonly specials: AddedToken[];
  private readonly unkPrefixLength: number;

  constructor(
    readonly model: UnigramModel,
    private readonly options: { removeExtraWhitespaces?: boolean; doLowerCase?: boolean } = {},
  ) {
    const special = (content: string): AddedToken => {
      const id = model.pieces.indexOf(content);
      if (id < 0) throw new TokenizerError("invalid_data", `the SigLIP vocabulary has no ${content}`);
      return { id, content, special: true, lstrip: true, rstrip: true, normalized: false };
    };
    this.specials = [special("</s>"), special("<unk>")];
    this.eosId = this.padId = this.specials[0].id;
    this.splitter = new AddedTokenSplitter(this.specials, new RegExp(`[${PY_WS}]`, "u"));
    this.unkPrefixLength = this.model.encode(this.normalize("<unk>")).length;
  }

  /** google/siglip-*'s spiece.model (a SentencePiece unigram ModelProto). */
  static fromSentencePieceModel(bytes: Uint8Array): SiglipTokenizer {
    const proto = readSentencePieceModel(bytes);
    if (proto.modelType !== 1) {
      throw new TokenizerError(
        "unsupported",
        `spiece.model has model_type ${proto.modelType}; SigLIP's is unigram (1)`,
      );
    }
    const rule = proto.normalizer.name;
    if (rule !== "nmt_nfkc" && rule !== "" && rule !== "identity") {
      throw new TokenizerError("unsupported", `spiece.model normalizes with "${rule}" (allowed: nmt_nfkc, identity)`);
    }
    const types = proto.pieces.map((p) => p.type);
    const unk = types.indexOf(PieceType.Unknown);
    const model = new UnigramModel(
      proto.pieces.map((p) => p.piece),
      proto.pieces.map((p) => p.score),
      types,
      unk >= 0 ? unk : proto.unkId,
    );
    return new SiglipTokenizer(model, { removeExtraWhitespaces: proto.normalizer.removeExtraWhitespaces });
  }

  /** A HF tokenizer.json with a Unigram model (`vocab: [[piece, score], …]`, `unk_id`): only the model is read (its
   * added tokens become CONTROL pieces, never matched inside text); the normalizer and pre-tokenizer are SigLIP's
   * slow pipeline above, whatever the file says. */
  static fromTokenizerJson(json: unknown): SiglipTokenizer {
    const j = json as { model?: { type?: string; vocab?: unknown; unk_id?: unknown }; added_tokens?: { id: number }[] };
    const vocab = j?.model?.vocab;
    if (j?.model?.type !== "Unigram" || !Array.isArray(vocab) || typeof j.model.unk_id !== "number") {
      throw new TokenizerError("invalid_data", "tokenizer.json must hold a Unigram model with a vocab list and unk_id");
    }
    const control = new Set((j.added_tokens ?? []).map((t) => t.id));
    const unkId = j.model.unk_id;
    const types = vocab.map((_, id) =>
      id === unkId ? PieceType.Unknown : control.has(id) ? PieceType.Control : PieceType.Normal
    );
    return new SiglipTokenizer(
      new UnigramModel(vocab.map((v) => String(v[0])), vocab.map((v) => Number(v[1])), types, unkId),
    );
  }

  /** Steps 1–4 up to sentencepiece's input: what transformers' SiglipTokenizer hands to `_tokenize`. */
  segments(text: string): SiglipSegment[] {
    if (text.length > MAX_INPUT_LENGTH) {
      throw new TokenizerError(
        "limit",
        `the text has ${text.length} UTF-16 units; at most ${MAX_INPUT_LENGTH} are tokenized`,
      );
    }
    // Lower-casing comes first, so "<UNK>" in the text becomes the special token (the specials are lower case).
    const prefixed = this.lowerCase("▁" + text.replaceAll("▁", " "));
    return this.splitter.split(prefixed).map((part) =>
      part.token
        ? { special: part.token.content }
        : { text: part.text.replace(ASCII_PUNCTUATION, "").replace(PY_WS_RUN, " ").replace(PY_STRIP, "") }
    );
  }

  /** The ids of the text without EOS, padding or truncation. */
  encodeText(text: string): number[] {
    const pieces: { id: number; lone: boolean; special: boolean }[] = [];
    for (const segment of this.segments(text)) {
      if ("special" in segment) {
        pieces.push({ id: this.specials.find((s) => s.content === segment.special)!.id, lone: false, special: true });
        continue;
      }
      const ids = this.model.encode(this.normalize("<unk>" + segment.text)).slice(this.unkPrefixLength);
      for (const id of ids) pieces.push({ id, lone: this.model.pieces[id] === "▁", special: false });
    }
    if (pieces.length > 1 && pieces[0].lone && pieces[1].special) pieces.shift();
    return pieces.map((p) => p.id);
  }

  /** What the SigLIP text tower gets: ids + EOS, truncated and padded with `</s>` to `maxLength` (default 196). */
  encode(
    text: string,
    { maxLength = SIGLIP_MAX_LENGTH, padding = "max_length", truncation = true }: {
      maxLength?: number;
      padding?: "max_length" | "none";
      truncation?: boolean;
    } = {},
  ): ClipEncoding {
    if (!Number.isInteger(maxLength) || maxLength < 1) {
      throw new TokenizerError("bad_argument", `maxLength must be an integer ≥ 1 (room for EOS), got ${maxLength}`);
    }
    let ids = this.encodeText(text);
    if (truncation && ids.length > maxLength - 1) ids = ids.slice(0, maxLength - 1);
    const inputIds = ids[ids.length - 1] === this.eosId ? ids : [...ids, this.eosId];
    const attentionMask = inputIds.map(() => 1);
    if (padding === "max_length") {
      while (inputIds.length < maxLength) inputIds.push(this.padId), attentionMask.push(0);
    }
    return { inputIds, attentionMask, eosIndex: inputIds.indexOf(this.eosId) };
  }

  private normalize(text: string): string {
    return nmtNfkc(text, this.options.removeExtraWhitespaces ?? true);
  }

  /** transformers' `re.sub(r"(specials)|(.+?)", … .lower())`: one character at a time; "." skips "\n". */
  private lowerCase(text: string): string {
    if (this.options.doLowerCase === false) return text;
    let out = "";
    for (const ch of text) out += ch === "\n" ? ch : ch.toLowerCase();
    return out;
  }
}
