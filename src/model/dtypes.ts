/**
 * safetensors dtypes and their decoding (little-endian bytes → typed arrays: F32/F16/BF16 → Float32Array exactly,
 * any float → Float64Array, I64/I32 → numbers), and `WeightsError`, the typed error of everything weights-related.
 */
export type WeightsErrorCode =
  | "bad_header"
  | "bad_dtype"
  | "out_of_bounds"
  | "truncated"
  | "bad_index"
  | "missing_tensor"
  | "bad_shape"
  | "no_weights"
  | "io";

export class WeightsError extends Error {
  override name = "WeightsError";
  readonly code: WeightsErrorCode;
  /** The tensor (checkpoint key) the error is about, when there is one. */
  readonly tensor?: string;
  constructor(code: WeightsErrorCode, message: string, tensor?: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.tensor = tensor;
  }
}

export type DType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";
export const ITEM_SIZE: Record<DType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};
let f16Table: Float32Array | undefined;
/** All 65536 f16 values as f32 (exact: f16 ⊂ f32), built once: decoding is then one lookup per element. */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  f16Table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) f16Table[h] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) f16Table[h] = mantissa ? NaN : sign * Infinity;
    else f16Table[h] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return f16Table;
}

// Every host this runs on is little-endian; the DataView loops stay as the portable path for any other.
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function copyBuffer(raw: Uint8Array): ArrayBuffer {
  return raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer;
}

function u16s(raw: Uint8Array): Uint16Array {
  if (LITTLE_ENDIAN_HOST) return new Uint16Array(copyBuffer(raw));
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Uint16Array(raw.byteLength / 2);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint16(2 * i, true);
  return out;
}

/** F32, F16 or BF16 bytes → Float32Array (exact for all three). */
export function decodeF32(raw: Uint8Array, dtype: DType, name = "<tensor>"): Float32Array {
  if (dtype === "F32") {
    if (LITTLE_ENDIAN_HOST) return new Float32Array(copyBuffer(raw));
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = new Float32Array(raw.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }
  if (dtype === "F16") {
    const table = halfTable();
    const bits = u16s(raw);
    const out = new Float32Array(bits.length);
    for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
    return out;
  }
  if (dtype === "BF16") {
    const bits = u16s(raw);
    const out = new Uint32Array(bits.length);
    for (let i = 0; i < bits.length; i++) out[i] = bits[i] << 16;
    return new Float32Array(out.buffer);
  }
  throw new WeightsError("bad_dtype", `tensor ${name} is ${dtype}; weights must be F32, F16 or BF16`, name);
}

/** Any float dtype → Float64Array (golden files hold F64). */
export function decodeF64(raw: Uint8Array, dtype: DType, name = "<tensor>"): Float64Array {
  if (dtype !== "F64") return Float64Array.from(decodeF32(raw, dtype, name));
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float64Array(raw.byteLength / 8);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(8 * i, true);
  return out;
}

/** I64 or I32 → numbers; an I64 outside the safe-integer range is an error, not a rounded value. */
export function decodeInts(raw: Uint8Array, dtype: DType, name = "<tensor>"): number[] {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (dtype === "I32") return Array.from({ length: raw.byteLength / 4 }, (_, i) => view.getInt32(4 * i, true));
  if (dtype !== "I64") throw new WeightsError("bad_dtype", `tensor ${name} is ${dtype}; expected I64 or I32`, name);
  return Array.from({ length: raw.byteLength / 8 }, (_, i) => {
    const value = view.getBigInt64(8 * i, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new WeightsError("bad_dtype", `tensor ${name}[${i}] = ${value} is not a safe integer`, name);
    }
    return Number(value);
  });
}
