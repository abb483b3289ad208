/** The shape of an op case and the helpers the case files share (see tests/op_cases.ts). */
import type { Backend, DType, OpName, Tensor } from "../../src/backend/backend.ts";
import * as ref from "../reference/ops.ts";
import { rng } from "../util/random.ts";

export interface OpCase {
  name: string;
  op: OpName;
  /** Input dtypes in argument order (what `supports` is asked). */
  dtypes: DType[];
  /** Shape of the output. */
  shape: number[];
  /** Uploads the inputs (call inside `backend.scope`) and returns the op itself. */
  prepare(backend: Backend): () => Tensor;
  reference(): ref.Ref;
  /** Floating-point operations of one run (for bench/). */
  flops?: number;
}

/** Lazily made, shared seeded data. */
export function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

/** Random f16 or bf16 bits of moderate magnitude (no Inf/NaN), with their values. */
export function halfWeights(
  n: number,
  seed: number,
  dtype: "f16" | "bf16",
): { bits: Uint16Array; values: Float64Array } {
  const next = rng(seed);
  const bits = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const sign = next() < 0.5 ? 0x8000 : 0;
    if (dtype === "f16") bits[i] = sign | ((10 + Math.floor(next() * 6)) << 10) | Math.floor(next() * 1024);
    else bits[i] = sign | ((120 + Math.floor(next() * 7)) << 7) | Math.floor(next() * 128);
  }
  const decode = dtype === "f16" ? ref.f16Value : ref.bf16Value;
  return { bits, values: Float64Array.from(bits, decode) };
}

/** Dense row-major data of `shape` permuted by `axes` (the logical content of a permuted view). */
export function permuteData(data: ArrayLike<number>, shape: number[], axes: number[]): Float64Array {
  const outShape = axes.map((a) => shape[a]);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float64Array(data.length);
  const index = new Array(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let i = 0; i < axes.length; i++) src += index[i] * strides[axes[i]];
    out[o] = data[src];
    for (let i = outShape.length - 1; i >= 0; i--) {
      if (++index[i] < outShape[i]) break;
      index[i] = 0;
    }
  }
  return out;
}

export const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
