/**
 * ONE table of op cases, run by tests/ops.test.ts against every backend (and by bench/ for timing): odd sizes,
 * strided views, f16/bf16 weights, causal and full attention, GQA, a KV-cache decode step, the PGP kernels.
 * Each case uploads its inputs and returns a closure that runs only the op, plus the float64 reference.
 */
import { otherCases } from "./op_cases/other.ts";
import { transformerCases } from "./op_cases/transformer.ts";

export { type OpCase } from "./op_cases/common.ts";
export const OP_CASES = [...transformerCases, ...otherCases];
