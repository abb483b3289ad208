/** Hand-written SentencePiece ModelProto files for tests (no sentencepiece library needed). */

/** A ModelProto: pieces (piece, score, type), a trainer_spec with model_type, and optionally a normalizer name. */
export function modelProto(
  pieces: [string, number, number][],
  modelType: number,
  normalizerName?: string,
): Uint8Array {
  const bytes: number[] = [];
  const varint = (out: number[], v: number) => {
    while (v >= 0x80) out.push((v & 0x7f) | 0x80), v >>>= 7;
    out.push(v);
  };
  const field = (
    out: number[],
    num: number,
    body: number[],
  ) => (varint(out, (num << 3) | 2), varint(out, body.length), out.push(...body));
  for (const [piece, score, type] of pieces) {
    const body: number[] = [];
    field(body, 1, [...new TextEncoder().encode(piece)]);
    body.push(0x15, ...new Uint8Array(Float32Array.of(score).buffer));
    body.push(0x18, type);
    field(bytes, 1, body);
  }
  field(bytes, 2, [0x18, modelType]);
  if (normalizerName !== undefined) {
    const normalizer: number[] = [];
    field(normalizer, 1, [...new TextEncoder().encode(normalizerName)]);
    field(bytes, 3, normalizer);
  }
  return Uint8Array.from(bytes);
}
