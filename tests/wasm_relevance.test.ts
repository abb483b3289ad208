import { assert, assertEquals, assertRejects, assertThrows } from "./util/assert.ts";
import { KernelError, loadKernels, WasmKernels } from "../src/backend/wasm/loader.ts";
import { relevanceWasm } from "../src/backend/wasm/relevance.ts";
import { readPackageFile } from "../src/util/files.ts";
import { relevanceReference } from "./reference/relevance.ts";
import { gaussian, maxRelativeError } from "./util/random.ts";

// f32 output of an f64 computation: one rounding (6e-8) plus the subnormal step for values below 1.2e-38.
const TOLERANCE = 1e-6;
const SUBNORMAL_FLOOR = 1e-38;

Deno.test("kernels module is built with SIMD and its code uses v128 instructions", async () => {
  const kernels = await loadKernels();
  assert(kernels.hasSimd, "ppl_has_simd() should be 1");
  // Independent check on the bytes: binaryen's disassembler must find SIMD instructions in the code.
  const text = new TextDecoder().decode(
    (await new Deno.Command("wasm-dis", { args: ["wasm/ppllava_kernels.wasm"], stdout: "piped" }).output()).stdout,
  );
  const simdOps = text.match(/\b(f64x2|f32x4|i32x4|i64x2|v128)\.[a-z_]+/g) ?? [];
  assert(simdOps.length > 10, `expected SIMD instructions in the module, found ${simdOps.length}`);
  assert(simdOps.some((op) => op.startsWith("f64x2.add")), "the relevance dot product should use f64x2.add");
});

for (const [n, dim, scale] of [[1, 1, 100], [7, 3, 100], [576 * 2, 768, 100], [301, 1027, 100], [64, 768, 1e4]]) {
  Deno.test(`relevance n=${n} dim=${dim} scale=${scale}: SIMD and scalar match the float64 reference`, async () => {
    const kernels = await loadKernels();
    const visual = gaussian(n * dim, 1 + n + dim);
    const text = gaussian(dim, 2 + dim);
    const expected = relevanceReference(visual, text, scale);
    const simd = relevanceWasm(kernels, visual, text, { scale });
    const scalar = relevanceWasm(kernels, visual, text, { scale, simd: false });
    const simdError = maxRelativeError(simd, expected, SUBNORMAL_FLOOR);
    const scalarError = maxRelativeError(scalar, expected, SUBNORMAL_FLOOR);
    assert(simdError <= TOLERANCE, `SIMD max relative error ${simdError}`);
    assert(scalarError <= TOLERANCE, `scalar max relative error ${scalarError}`);
  });
}

Deno.test("relevance: a token aligned with the question takes the mass, a zero token scores like cos = 0", async () => {
  const kernels = await loadKernels();
  const text = new Float32Array([0, 3, 4]);
  const visual = new Float32Array([0, 0.6, 0.8, 0, 0, 0, 1, 0, 0]);
  const p = relevanceWasm(kernels, visual, text);
  const z = 1 + 2 * Math.exp(-100);
  assert(Math.abs(p[0] - 1 / z) < 1e-7);
  assertEquals(p[1], p[2]);
});

Deno.test("relevance: bad shapes and non-finite inputs are typed errors, and the instance stays usable", async () => {
  const kernels = await loadKernels();
  const error = assertThrows(() => relevanceWasm(kernels, new Float32Array(5), new Float32Array(2)), KernelError);
  assertEquals(error.code, "bad_shape");
  const nan = assertThrows(
    () => relevanceWasm(kernels, new Float32Array([NaN, 1]), new Float32Array([1, 0])),
    KernelError,
  );
  assertEquals(nan.code, "bad_argument");
  const memoryBefore = kernels.memoryBytes;
  for (let i = 0; i < 200; i++) relevanceWasm(kernels, gaussian(576 * 16, i), gaussian(16, i + 1));
  assertEquals(kernels.memoryBytes, memoryBefore, "every block should be freed after each call");
  assertEquals(relevanceWasm(kernels, new Float32Array([1, 0]), new Float32Array([1, 0]))[0], 1);
});

Deno.test("loader: foreign bytes are a typed load error", async () => {
  const error = await assertRejects(() => WasmKernels.instantiate(new Uint8Array([0, 1, 2, 3])), KernelError);
  assertEquals(error.code, "load");
  const module = await WebAssembly.compile(await readPackageFile("wasm/ppllava_kernels.wasm"));
  assert((await WasmKernels.instantiate(module)).hasSimd);
});
