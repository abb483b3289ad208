/**
 * Reads a SentencePiece `tokenizer.model`: a protobuf `ModelProto` (sentencepiece_model.proto). Only the fields that
 * encoding needs are decoded; every other field is skipped by wire type, so newer files with extra fields still load.
 *
 *   ModelProto      1: repeated SentencePiece pieces   2: TrainerSpec   3: NormalizerSpec
 *   SentencePiece   1: piece (string)   2: score (float)   3: type (enum, default NORMAL)
 *   TrainerSpec     3: model_type (UNIGRAM=1, BPE=2, …)   24: treat_whitespace_as_suffix   35: byte_fallback
 *                   40..43: unk_id, bos_id, eos_id, pad_id
 *   NormalizerSpec  1: name   2: precompiled_charsmap   3: add_dummy_prefix   4: remove_extra_whitespaces
 *                   5: escape_whitespaces
 */
import { TokenizerError } from "./errors.ts";

export enum PieceType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

export interface SentencePiece {
  piece: string;
  score: number;
  type: PieceType;
}

export interface SentencePieceModel {
  pieces: SentencePiece[];
  /** 1 unigram, 2 BPE, 3 word, 4 char. */
  modelType: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  normalizer: {
    name: string;
    hasCharsMap: boolean;
    addDummyPrefix: boolean;
    removeExtraWhitespaces: boolean;
    escapeWhitespaces: boolean;
  };
}

/** A bounds-checked protobuf wire reader over one message's bytes. */
class WireReader {
  pos: number;
  constructor(readonly bytes: Uint8Array, start = 0, readonly end = bytes.length) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    // Values up to 2^53 are exact; field numbers, lengths and enums are far below that. Negative int32 values are
    // sent as 10-byte two's complement varints; `int32()` folds them back.
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw invalid("a varint runs past the end of its message");
      const byte = this.bytes[this.pos++];
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
    throw invalid("a varint is longer than 10 bytes");
  }

  /** An int32/enum: only the low 32 bits count (a negative value is a sign-extended 10-byte varint). */
  int32(): number {
    let low = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw invalid("a varint runs past the end of its message");
      const byte = this.bytes[this.pos++];
      if (i < 5) low |= (byte & 0x7f) << (7 * i);
      if (byte < 0x80) return low | 0;
    }
    throw invalid("a varint is longer than 10 bytes");
  }

  float32(): number {
    if (this.pos + 4 > this.end) throw invalid("a float runs past the end of its message");
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.pos, 4);
    this.pos += 4;
    return view.getFloat32(0, true);
  }

  /** A length-delimited field: returns [start, end) and moves past it. */
  span(): [number, number] {
    const length = this.varint();
    const start = this.pos;
    if (start + length > this.end) throw invalid(`a field of ${length} bytes runs past the end of its message`);
    this.pos = start + length;
    return [start, start + length];
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.advance(8);
    else if (wireType === 2) this.span();
    else if (wireType === 5) this.advance(4);
    else throw invalid(`wire type ${wireType} is not used by sentencepiece_model.proto (allowed: 0, 1, 2, 5)`);
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw invalid("a fixed-size field runs past the end of its message");
    this.pos += n;
  }
}

function invalid(what: string): TokenizerError {
  return new TokenizerError("invalid_data", `tokenizer.model is not a valid SentencePiece ModelProto: ${what}`);
}

// ignoreBOM: a piece may be U+FEFF itself (LLaMA has one); the default would strip it as a byte-order mark.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function text(bytes: Uint8Array, [start, end]: [number, number]): string {
  try {
    return utf8.decode(bytes.subarray(start, end));
  } catch (cause) {
    throw invalid(`a string field is not UTF-8 (${String(cause)})`);
  }
}

function readPiece(bytes: Uint8Array, [start, end]: [number, number]): SentencePiece {
  const r = new WireReader(bytes, start, end);
  const piece: SentencePiece = { piece: "", score: 0, type: PieceType.Normal };
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8), wire = key & 7;
    if (field === 1 && wire === 2) piece.piece = text(bytes, r.span());
    else if (field === 2 && wire === 5) piece.score = r.float32();
    else if (field === 3 && wire === 0) piece.type = r.int32();
    else r.skip(wire);
  }
  if (!(piece.type >= PieceType.Normal && piece.type <= PieceType.Byte)) {
    throw invalid(`piece "${piece.piece}" has type ${piece.type} (allowed: 1..6)`);
  }
  return piece;
}

export function readSentencePieceModel(bytes: Uint8Array): SentencePieceModel {
  const model: SentencePieceModel = {
    pieces: [],
    modelType: 1,
    byteFallback: false,
    treatWhitespaceAsSuffix: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    normalizer: {
      name: "",
      hasCharsMap: false,
      addDummyPrefix: true,
      removeExtraWhitespaces: true,
      escapeWhitespaces: true,
    },
  };
  const top = new WireReader(bytes);
  while (!top.done) {
    const key = top.varint();
    const field = Math.floor(key / 8), wire = key & 7;
    if (field === 1 && wire === 2) model.pieces.push(readPiece(bytes, top.span()));
    else if (field === 2 && wire === 2) readTrainerSpec(bytes, top.span(), model);
    else if (field === 3 && wire === 2) readNormalizerSpec(bytes, top.span(), model);
    else top.skip(wire);
  }
  if (model.pieces.length === 0) throw invalid("it has no pieces");
  return model;
}

function readTrainerSpec(bytes: Uint8Array, span: [number, number], model: SentencePieceModel): void {
  const r = new WireReader(bytes, span[0], span[1]);
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8), wire = key & 7;
    if (wire !== 0) r.skip(wire);
    else if (field === 3) model.modelType = r.int32();
    else if (field === 24) model.treatWhitespaceAsSuffix = r.varint() !== 0;
    else if (field === 35) model.byteFallback = r.varint() !== 0;
    else if (field === 40) model.unkId = r.int32();
    else if (field === 41) model.bosId = r.int32();
    else if (field === 42) model.eosId = r.int32();
    else if (field === 43) model.padId = r.int32();
    else r.skip(wire);
  }
}

function readNormalizerSpec(bytes: Uint8Array, span: [number, number], model: SentencePieceModel): void {
  const r = new WireReader(bytes, span[0], span[1]);
  const n = model.normalizer;
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8), wire = key & 7;
    if (field === 1 && wire === 2) n.name = text(bytes, r.span());
    else if (field === 2 && wire === 2) {
      const [start, end] = r.span();
      n.hasCharsMap = end > start;
    } else if (field === 3 && wire === 0) n.addDummyPrefix = r.varint() !== 0;
    else if (field === 4 && wire === 0) n.removeExtraWhitespaces = r.varint() !== 0;
    else if (field === 5 && wire === 0) n.escapeWhitespaces = r.varint() !== 0;
    else r.skip(wire);
  }
}
