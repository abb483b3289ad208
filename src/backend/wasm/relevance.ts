/** Typed wrapper of the relevance kernel (kernels-rs/ops/src/relevance.rs). */
import { KernelError, type WasmKernels } from "./loader.ts";

export interface RelevanceOptions {
  /** Multiplier of the cosines before the softmax: exp(logit_scale) = 100 in PPLLaVA. */
  scale?: number;
  /** false runs the scalar twin of the SIMD kernel (tests and benchmarks compare them). */
  simd?: boolean;
}

/**
 * Prompt relevance (spec §3.4 step C): p[n] = softmax_n(scale · cos(visual[n], text)), computed in f64.
 * visual: (n, dim) row-major; text: (dim). Returns p (n).
 */
export function relevanceWasm(
  kernels: WasmKernels,
  visual: Float32Array,
  text: Float32Array,
  options: RelevanceOptions = {},
): Float32Array {
  const dim = text.length;
  if (dim === 0 || visual.length === 0 || visual.length % dim !== 0) {
    throw new KernelError(
      "bad_shape",
      `relevance: visual has ${visual.length} values, not a positive multiple of the text dimension ${dim}`,
    );
  }
  const n = visual.length / dim;
  return kernels.scope((arena) => {
    const v = arena.input(visual);
    const t = arena.input(text);
    const out = arena.output(Float32Array, n);
    const simd = options.simd === false ? 0 : 1;
    kernels.call("relevance", "ppl_relevance_f32", v.ptr, t.ptr, n, dim, options.scale ?? 100, out.ptr, simd);
    return arena.read(out);
  });
}
