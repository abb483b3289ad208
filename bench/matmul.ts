/**
 * f32 matmul, 512³ and 1024³: ours (WASM SIMD, and the scalar twin) against onnxruntime-web's WASM backend on one
 * thread (MatMul with the right-hand matrix as a constant initializer, the way a model holds weights).
 *
 * Ours is validated against the float64 reference before it is timed (error relative to Σ|a·b| ≤ 1e-5).
 * onnxruntime-web is a devDependency; when it is not installed the peer is skipped with a note (or point
 * ORT_WEB_MODULE at its dist/ort.wasm.min.mjs).
 */
import { runBench } from "./harness.ts";
import { matmulModel } from "./onnx_model.ts";
import type { Backend } from "../src/backend/backend.ts";
import { createWasmBackend } from "../src/backend/wasm/backend.ts";
import { matmul as matmulReference } from "../tests/reference/ops.ts";
import { gaussian } from "../tests/util/random.ts";

// deno-lint-ignore no-explicit-any
type Ort = any;

async function loadOrt(): Promise<{ ort: Ort; from: string } | null> {
  const env = (globalThis as { Deno?: { env: { get(k: string): string | undefined } } }).Deno?.env.get(
    "ORT_WEB_MODULE",
  );
  for (const specifier of [env, "onnxruntime-web/wasm"]) {
    if (!specifier) continue;
    try {
      return { ort: await import(specifier), from: specifier };
    } catch {
      // try the next one
    }
  }
  return null;
}

async function check(backend: Backend, n: number, a: Float32Array, b: Float32Array): Promise<number> {
  // A 64-row slice is enough to catch a wrong kernel and keeps the float64 reference cheap.
  const rows = 64;
  const got = backend.scope(() => {
    const ta = backend.upload(a.subarray(0, rows * n), [rows, n]);
    const tb = backend.upload(b, [n, n]);
    return backend.matmul(ta, tb);
  });
  const expected = matmulReference(a.subarray(0, rows * n), b, 1, rows, n, n, true);
  const values = await backend.download(got);
  got.dispose();
  let worst = 0;
  for (let i = 0; i < values.length; i++) {
    worst = Math.max(worst, Math.abs(values[i] - expected.value[i]) / expected.scale[i]);
  }
  if (!(worst <= 1e-5)) throw new Error(`${backend.name}: matmul ${n}³ max error ${worst} > 1e-5; not timing it`);
  return worst;
}

export async function main(): Promise<void> {
  const loaded = await loadOrt();
  if (loaded) {
    loaded.ort.env.wasm.numThreads = 1;
    loaded.ort.env.wasm.simd = true;
  } else {
    console.log("matmul: onnxruntime-web is not installed (npm install, or set ORT_WEB_MODULE); timing ours only");
  }
  const simd = await createWasmBackend({ simd: true });
  const scalar = await createWasmBackend({ simd: false });
  for (const n of [512, 1024]) {
    const a = gaussian(n * n, 1);
    const b = gaussian(n * n, 2);
    const errors = { simd: await check(simd, n, a, b), scalar: await check(scalar, n, a, b) };
    const resident = (backend: Backend) => ({ a: backend.upload(a, [n, n]), b: backend.upload(b, [n, n]) });
    const [rs, rc] = [resident(simd), resident(scalar)];
    const cases = [
      { label: "ours wasm simd  a·b", run: () => simd.matmul(rs.a, rs.b).dispose() },
      { label: "ours wasm simd  x·Wᵀ (linear)", run: () => simd.linear(rs.a, rs.b).dispose() },
      { label: "ours wasm scalar twin a·b", run: () => scalar.matmul(rc.a, rc.b).dispose() },
    ];
    let session: Ort = null;
    if (loaded) {
      const { ort } = loaded;
      session = await ort.InferenceSession.create(matmulModel(n, n, n, b), { executionProviders: ["wasm"] });
      const input = new ort.Tensor("float32", a, [n, n]);
      cases.push({
        label: "onnxruntime-web wasm, 1 thread",
        run: async () => {
          const out = await session.run({ A: input });
          out.C.dispose?.();
        },
      } as never);
    }
    await runBench({
      name: `matmul-${n}`,
      cases,
      reps: n >= 1024 ? 5 : 9,
      warmup: 2,
      work: { amount: 2 * n ** 3, unit: "FLOP" },
      notes: { m: n, k: n, n, dtype: "f32", maxRelErrorVsFloat64: errors, peer: loaded?.from ?? "none", threads: 1 },
    });
    await session?.release();
    for (const t of [rs.a, rs.b, rc.a, rc.b]) t.dispose();
  }
}

if (import.meta.main) await main();
