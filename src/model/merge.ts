/**
 * The `<image>` merge (spec §3.7, the legacy HF LLaVA `_merge_input_ids_with_image_features` for batch 1): every
 * `<image>` id (32000) is replaced, in order, by the next visual sequence; every other id by its `embed_tokens`
 * row. Positions are then 0..L−1 over the merged sequence; no padding, the attention mask is all ones.
 * With `padTokenId`, rows of that id are zeros (upstream's step 6, "mask out the embedding at padding positions";
 * Qwen's pad is `<|endoftext|>` 151643, Vicuna's `<unk>` 0).
 */
import type { Backend, Tensor } from "../backend/backend.ts";
import { ModelError } from "./errors.ts";

/** ids (n) and visual sequences (Ni, H) → embeds (L, H), L = n − #visuals + Σ Ni. */
export function mergeImageTokens(
  b: Backend,
  embed: (ids: Int32Array) => Tensor,
  ids: ArrayLike<number>,
  visuals: readonly Tensor[],
  imageTokenIndex: number,
  padTokenId?: number,
): Tensor {
  const pieces: Tensor[] = [];
  let run: number[] = [];
  let next = 0;
  const flush = () => {
    if (run.length > 0) pieces.push(embed(Int32Array.from(run)));
    run = [];
  };
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === padTokenId) {
      flush();
      pieces.push(b.zeros(embed(Int32Array.of(ids[i])).shape));
      continue;
    }
    if (ids[i] !== imageTokenIndex) {
      run.push(ids[i]);
      continue;
    }
    if (next >= visuals.length) {
      throw new ModelError(
        "bad_input",
        `the prompt has more <image> tokens (${imageTokenIndex}) than visual sequences (${visuals.length})`,
      );
    }
    flush();
    pieces.push(visuals[next++]);
  }
  flush();
  if (next !== visuals.length) {
    throw new ModelError(
      "bad_input",
      `${visuals.length} visual sequences (one per <image>) but ${next} <image> tokens in the prompt`,
    );
  }
  if (pieces.length === 0) throw new ModelError("bad_input", "the prompt is empty");
  return pieces.length === 1 ? pieces[0] : b.concat(pieces, 0);
}
