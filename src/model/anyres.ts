/**
 * LLaVA-NeXT anyres for single images (spec §4): tile 0 is the base image, tiles 1.. the grid picked from
 * `image_grid_pinpoints`; after PGP each tile is (1,3,3)-pooled to an 8×8 map. `packImageTokens` arranges the grid
 * tiles into one (nph·8)×(npw·8) map, unpads it to the image's aspect ratio, appends `image_newline` after every
 * row, flattens row-major and puts the base tile's 64 tokens first. One tile alone: its tokens + one newline.
 *
 * Upstream functions (transformers 4.45 llava_next, which PPLLaVA's merge code calls) [upstream]:
 * - select_best_resolution: the pinpoint keeping the most of the image when scaled into it (effective pixels =
 *   min(scaled w·h, original w·h)), ties to the least wasted area;
 * - unpad_image: scale = current/original along the axis that fits; the other axis keeps
 *   int(round(original·scale, 7)) and loses (current − new) // 2 from both ends.
 */
import type { Backend, Tensor } from "../backend/backend.ts";
import { ModelError } from "./errors.ts";

/** [height, width] in pixels. */
export type Size = readonly [number, number];

/** The pinpoint ([h, w]) an image of `size` ([h, w]) is tiled into. */
export function selectBestResolution(size: Size, pinpoints: ReadonlyArray<Size>): Size {
  const [h, w] = size;
  let best: Size | undefined;
  let bestEffective = -1;
  let bestWasted = Infinity;
  for (const [ph, pw] of pinpoints) {
    const scale = Math.min(pw / w, ph / h);
    const effective = Math.min(Math.trunc(w * scale) * Math.trunc(h * scale), w * h);
    const wasted = pw * ph - effective;
    if (effective > bestEffective || (effective === bestEffective && wasted < bestWasted)) {
      best = [ph, pw];
      bestEffective = effective;
      bestWasted = wasted;
    }
  }
  if (!best) throw new ModelError("bad_input", "image_grid_pinpoints is empty");
  return best;
}

/** [rows, cols] of tiles for an image of `size`: the best pinpoint divided by the tile size (336). */
export function gridShape(size: Size, pinpoints: ReadonlyArray<Size>, tile: number): Size {
  const [ph, pw] = selectBestResolution(size, pinpoints);
  return [Math.floor(ph / tile), Math.floor(pw / tile)];
}

/** Rows and columns kept by unpad_image of a (height × width) map for an image of `size`: [top, bottom, left, right). */
export function unpadBox(height: number, width: number, size: Size): [number, number, number, number] {
  const [oh, ow] = size;
  if (ow / oh > width / height) {
    const newHeight = Math.trunc(round7(oh * (width / ow)));
    const pad = Math.floor((height - newHeight) / 2);
    return [pad, height - pad, 0, width];
  }
  const newWidth = Math.trunc(round7(ow * (height / oh)));
  const pad = Math.floor((width - newWidth) / 2);
  return [0, height, pad, width - pad];
}

/** Python's round(x, 7) for the values here (positive, far from representability limits). */
function round7(x: number): number {
  return Math.round(x * 1e7) / 1e7;
}

/**
 * pooled (tiles·side², C) in tile, row, col order → the image's tokens (N, C).
 * grid [nph, npw] with tiles = 1 + nph·npw (or 1: a lone tile + newline); `size` the original [h, w].
 */
export function packImageTokens(
  b: Backend,
  pooled: Tensor,
  tiles: number,
  grid: Size,
  size: Size,
  newline: Tensor | undefined,
): Tensor {
  const [n, c] = pooled.shape;
  const side = Math.round(Math.sqrt(n / tiles));
  if (side * side * tiles !== n) {
    throw new ModelError("bad_input", `${n} pooled tokens are not ${tiles} square tiles`);
  }
  const withNewline = (rows: Tensor, count: number) =>
    newline ? b.concat([rows, b.expand(newline, [count, 1, c])], 1) : rows;
  if (tiles === 1) return newline ? b.concat([pooled, b.reshape(newline, [1, c])], 0) : pooled;
  const [nph, npw] = grid;
  if (tiles !== 1 + nph * npw) {
    throw new ModelError("bad_input", `${tiles} tiles, but a ${nph}×${npw} grid needs 1 + ${nph * npw}`);
  }
  const base = b.slice(pooled, 0, 0, side * side);
  const cells = b.reshape(b.slice(pooled, 0, side * side, n), [nph, npw, side, side, c]);
  const map = b.reshape(b.contiguous(b.permute(cells, [0, 2, 1, 3, 4])), [nph * side, npw * side, c]);
  const [top, bottom, left, right] = unpadBox(nph * side, npw * side, size);
  const kept = b.slice(b.slice(map, 0, top, bottom), 1, left, right);
  const rows = withNewline(kept, bottom - top); // (H', W' (+1), C)
  const flat = b.reshape(b.contiguous(rows), [rows.shape[0] * rows.shape[1], c]);
  return b.concat([base, flat], 0);
}
