/** Every backend the op suite runs against. The WebGPU backend joins this list when it lands. */
import type { Backend } from "../src/backend/backend.ts";
import { createWasmBackend } from "../src/backend/wasm/backend.ts";

export interface BackendEntry {
  name: string;
  make(): Promise<Backend>;
}

export const BACKENDS: BackendEntry[] = [
  // As users get it: relaxed SIMD's products where the runtime computes them right (the f32 linear fuses madd).
  { name: "wasm-simd", make: () => createWasmBackend({ simd: true }) },
  { name: "wasm-scalar", make: () => createWasmBackend({ simd: false }) },
  // The kernels module's SIMD alone, the scalar twin's order of operations.
  { name: "wasm-simd-kernels", make: () => createWasmBackend({ simd: true, relaxedSimd: false }) },
];
