/**
 * Float64 reference of the prompt relevance (spec §3.4 step C), written as the spec states it and nothing more:
 * L2-normalise (norm clamped to 1e-12, as torch.nn.functional.normalize), cosine, softmax of scale·cos over all tokens.
 * visual: (n, dim) row-major; text: (dim). Returns p (n) in float64.
 */
export function relevanceReference(visual: ArrayLike<number>, text: ArrayLike<number>, scale = 100): Float64Array {
  const dim = text.length;
  const n = visual.length / dim;
  const norm = (x: ArrayLike<number>, offset: number) => {
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += x[offset + i] * x[offset + i];
    return Math.max(Math.sqrt(sum), 1e-12);
  };
  const textNorm = norm(text, 0);
  const logits = new Float64Array(n);
  for (let row = 0; row < n; row++) {
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += visual[row * dim + i] * text[i];
    logits[row] = scale * dot / (norm(visual, row * dim) * textNorm);
  }
  const max = Math.max(...logits);
  let total = 0;
  for (let row = 0; row < n; row++) total += logits[row] = Math.exp(logits[row] - max);
  return logits.map((e) => e / total);
}
