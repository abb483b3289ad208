/**
 * Host-side arithmetic on the q8/q4 storage layout (docs/quantization.md: codes plane, then f32 scales plane): a
 * backend that splits a weight across workers or instances cuts it by rows here, without dequantising.
 */
import { BackendError, QUANT_GROUP, type QuantDType, type Shape } from "./backend.ts";

/** Bytes of one row's codes. */
export function rowCodeBytes(dtype: QuantDType, k: number): number {
  return Math.ceil(k / QUANT_GROUP) * (dtype === "q8" ? QUANT_GROUP : QUANT_GROUP / 2);
}

/** The storage bytes of rows [start, end) of a quantised (N, K) weight: a valid (end − start, K) weight. */
export function quantizedRows(
  bytes: Uint8Array,
  dtype: QuantDType,
  shape: Shape,
  start: number,
  end: number,
): Uint8Array {
  const [n, k] = shape;
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= n)) {
    throw new BackendError("bad_shape", `quantizedRows: rows [${start}, ${end}) of [${shape}]`);
  }
  const rcb = rowCodeBytes(dtype, k);
  const g = Math.ceil(k / QUANT_GROUP);
  if (bytes.length !== n * (rcb + 4 * g)) {
    throw new BackendError("bad_shape", `quantizedRows: ${bytes.length} bytes for ${dtype} [${shape}]`);
  }
  const rows = end - start;
  const out = new Uint8Array(rows * (rcb + 4 * g));
  out.set(bytes.subarray(start * rcb, end * rcb), 0);
  out.set(bytes.subarray(n * rcb + start * 4 * g, n * rcb + end * 4 * g), rows * rcb);
  return out;
}
