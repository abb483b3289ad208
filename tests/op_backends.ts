/** Every backend the op suite runs against. The WebGPU backend joins this list when it lands. */
import type { Backend } from "../src/backend/backend.ts";
import { createWasmBackend } from "../src/backend/wasm/backend.ts";

export interface BackendEntry {
  name: string;
  make(): Promise<Backend>;
}

export const BACKENDS: BackendEntry[] = [
  { name: "wasm-simd", make: () => createWasmBackend({ simd: true }) },
  { name: "wasm-scalar", make: () => createWasmBackend({ simd: false }) },
];
