/**
 * Shape and stride arithmetic shared by every backend: dense strides, contiguity, and the views (reshape, permute,
 * slice) that change only the handle. All counts are in elements.
 */
import { BackendError, type Shape } from "./backend.ts";

export interface Layout {
  shape: Shape;
  strides: readonly number[];
  offset: number;
}

export function size(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function denseStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = step;
    step *= shape[i];
  }
  return strides;
}

/** Whether the layout is row-major dense (axes of length 1 may have any stride). */
export function isDense(layout: Layout): boolean {
  let step = 1;
  for (let i = layout.shape.length - 1; i >= 0; i--) {
    if (layout.shape[i] !== 1 && layout.strides[i] !== step) return false;
    step *= layout.shape[i];
  }
  return true;
}

export function checkShape(shape: Shape, what: string): void {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new BackendError("bad_shape", `${what}: shape [${shape}] must be non-negative integers`);
  }
}

/**
 * The strides of `shape` over the same elements, or null when the layout cannot express it without a copy.
 * PyTorch's `computeStride`: split the old axes into chunks that are dense within themselves, and lay the new
 * axes over the chunks from the innermost out.
 */
export function reshapeStrides(layout: Layout, shape: Shape): number[] | null {
  const total = size(layout.shape);
  if (size(shape) !== total) return null;
  if (total === 0 || isDense(layout)) return denseStrides(shape);
  const { shape: oldShape, strides: oldStrides } = layout;
  const strides = new Array<number>(shape.length).fill(0);
  let viewAxis = shape.length - 1;
  let chunkStride = oldStrides[oldStrides.length - 1];
  let tensorCount = 1;
  let viewCount = 1;
  for (let axis = oldShape.length - 1; axis >= 0; axis--) {
    tensorCount *= oldShape[axis];
    const chunkEnds = axis === 0 ||
      (oldShape[axis - 1] !== 1 && oldStrides[axis - 1] !== tensorCount * chunkStride);
    if (!chunkEnds) continue;
    while (viewAxis >= 0 && (viewCount < tensorCount || shape[viewAxis] === 1)) {
      strides[viewAxis] = viewCount * chunkStride;
      viewCount *= shape[viewAxis];
      viewAxis--;
    }
    if (viewCount !== tensorCount) return null;
    if (axis > 0) {
      chunkStride = oldStrides[axis - 1];
      tensorCount = 1;
      viewCount = 1;
    }
  }
  return viewAxis === -1 ? strides : null;
}

export function permuteLayout(layout: Layout, axes: readonly number[]): Layout {
  const rank = layout.shape.length;
  const seen = new Set(axes);
  if (axes.length !== rank || seen.size !== rank || !axes.every((a) => Number.isInteger(a) && a >= 0 && a < rank)) {
    throw new BackendError("bad_shape", `permute: [${axes}] is not a permutation of ${rank} axes`);
  }
  return {
    shape: axes.map((a) => layout.shape[a]),
    strides: axes.map((a) => layout.strides[a]),
    offset: layout.offset,
  };
}

/** Broadcast: axes of length 1 (and new leading axes) stretched to `shape` with stride 0. */
export function expandLayout(layout: Layout, shape: Shape): Layout {
  const lead = shape.length - layout.shape.length;
  const ok = lead >= 0 && layout.shape.every((d, i) => d === shape[lead + i] || d === 1);
  if (!ok) throw new BackendError("bad_shape", `expand: [${layout.shape}] cannot broadcast to [${shape}]`);
  const strides = shape.map((d, i) => {
    if (i < lead) return 0;
    return layout.shape[i - lead] === 1 && d !== 1 ? 0 : layout.strides[i - lead];
  });
  return { shape: shape.slice(), strides, offset: layout.offset };
}

export function sliceLayout(layout: Layout, axis: number, start: number, end: number): Layout {
  const rank = layout.shape.length;
  if (!Number.isInteger(axis) || axis < 0 || axis >= rank) {
    throw new BackendError("bad_shape", `slice: axis ${axis} is outside a rank-${rank} tensor`);
  }
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > layout.shape[axis]) {
    throw new BackendError(
      "bad_shape",
      `slice: [${start}, ${end}) is not inside 0..${layout.shape[axis]} of axis ${axis}`,
    );
  }
  const shape = layout.shape.slice();
  shape[axis] = end - start;
  return { shape, strides: layout.strides, offset: layout.offset + start * layout.strides[axis] };
}

/** The number of rows b repeats over when broadcast against a: b's shape must equal a trailing part of a's. */
export function trailingBroadcast(a: Shape, b: Shape, what: string): void {
  const ok = b.length <= a.length && b.every((d, i) => d === a[a.length - b.length + i]);
  if (!ok || b.length === 0) {
    throw new BackendError("bad_shape", `${what}: [${b}] is neither [${a}] nor a trailing part of it`);
  }
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
