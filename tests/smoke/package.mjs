// Imports the package the way a user of this runtime would (`ppllava-edge`: Node gets dist/, Bun the TypeScript
// source) and checks the kernels and the app work there. Prints one JSON line: { runtime, passed, failed, errors }.
import { createApp, loadKernels, relaxedSimdSupport, relevanceWasm } from "ppllava-edge";

const results = { runtime: globalThis.Bun ? `bun ${Bun.version}` : `node ${process.version}`, passed: 0, failed: 0, errors: [] };
async function check(name, fn) {
  try {
    await fn();
    results.passed++;
  } catch (error) {
    results.failed++;
    results.errors.push(`${name}: ${error?.stack ?? error}`);
  }
}

await check("the kernels load with SIMD and compute relevance like float64 JavaScript", async () => {
  const kernels = await loadKernels();
  if (!kernels.hasSimd) throw new Error("no SIMD");
  const visual = new Float32Array([1, 2, 3, -1, 0.5, 2, 0, 0, 1]);
  const text = new Float32Array([0.3, -0.2, 0.9]);
  const p = relevanceWasm(kernels, visual, text);
  const cos = [0, 1, 2].map((n) => {
    const row = visual.slice(n * 3, n * 3 + 3);
    const dot = row.reduce((s, v, i) => s + v * text[i], 0);
    return dot / Math.hypot(...row) / Math.hypot(...text);
  });
  const max = Math.max(...cos.map((c) => 100 * c));
  const e = cos.map((c) => Math.exp(100 * c - max));
  const z = e.reduce((a, b) => a + b);
  e.forEach((v, i) => {
    if (Math.abs(p[i] - v / z) > 1e-6 * (v / z) + 1e-38) throw new Error(`p[${i}] = ${p[i]}, expected ${v / z}`);
  });
});

await check("relaxed SIMD: q4 and attention used on Bun; where a product is not used, the reason is given", async () => {
  // Bun lowers relaxed SIMD's dots right for 7-bit operands (q4); Node 20 cannot compile them without a flag, and
  // computes another sum with the flag: the known-answer check at load must decline it there, not fail the load. q8
  // also needs 8-bit unsigned operands multiplied unsaturated, which Bun's x86 lowering does not do; where q8 is
  // declined on x86, q4 runs on the 16-bit dot (pmaddubsw alone).
  const support = await relaxedSimdSupport(await loadKernels());
  if (globalThis.Bun && !support.q4) throw new Error(`relaxed SIMD is off on Bun: ${support.reason}`);
  if ((!support.q4 || !support.q8) && !support.reason) throw new Error("relaxed SIMD declined without a reason");
  if (support.q4 && !support.q8 && !support.reason.includes("q8 declined")) throw new Error(support.reason);
  const dot = !support.q8 && process.arch === "x64" ? 16 : 32;
  if (support.q4 && !support.reason.includes(`q4 (${dot}-bit dot)`)) throw new Error(support.reason);
  // f32: used where madd fuses, else kept in the kernels module with the reason (Bun 1.4.5 does not fuse it), unless
  // the module did not compile at all (Node 20), which the reason says once for every product.
  const compiled = !support.reason.includes("cannot compile");
  if (compiled && (support.f32 ? !support.reason.includes("f32 (madd)") : !/f32 (declined|kept)/.test(support.reason))) {
    throw new Error(support.reason);
  }
  // Attention: used where its check passes, fused or not (Bun too), else declined with the reason.
  if (compiled && (support.attention ? !support.reason.includes("attention (madd)") : !/attention declined/.test(support.reason))) {
    throw new Error(support.reason);
  }
  if (globalThis.Bun && !support.attention) throw new Error(`relaxed attention is off on Bun: ${support.reason}`);
});

await check("the app answers /healthz and a bad route", async () => {
  const app = createApp({ models: [{ id: "m" }] });
  const health = await app.request("/healthz");
  if (health.status !== 200 || (await health.json()).status !== "ok") throw new Error("healthz");
  const missing = await app.request("/missing");
  const body = await missing.json();
  if (missing.status !== 404 || body.error?.code !== "not_found") throw new Error(JSON.stringify(body));
});

console.log(JSON.stringify(results));
process.exitCode = results.failed ? 1 : 0;
