/**
 * Attention on relaxed SIMD's multiply-add (kernels-rs/relaxed/attention.wat `f32_attention_head`, driven by
 * src/backend/wasm/attention.ts) against the float64 reference: query blocks with fewer than four rows, keys not a
 * multiple of eight, causal with earlier keys (a KV cache), GQA, scores large enough that most probabilities underflow,
 * and d not a multiple of 8 (the kernels module's product then). The op suite (tests/ops.test.ts) runs its attention
 * cases on it as well.
 */
import type { Tensor } from "../src/backend/backend.ts";
import { createWasmBackend, type WasmBackend } from "../src/backend/wasm/backend.ts";
import { loadKernels } from "../src/backend/wasm/loader.ts";
import { relaxedAttention } from "../src/backend/wasm/relaxed.ts";
import { attention as reference } from "./reference/ops.ts";
import { gaussian } from "./util/random.ts";
import { assert, assertEquals } from "./util/assert.ts";

/** The values of `t` (attention returns a permuted view) in logical order; `t` and its dense copy are freed. */
async function downloadDense(b: WasmBackend, t: Tensor): Promise<Float32Array> {
  const dense = b.contiguous(t);
  try {
    return await b.download(dense);
  } finally {
    dense.dispose();
    t.dispose();
  }
}

// [batch, heads, kvHeads, sq, skv, d, causal, spread of q]
const CASES = [
  [1, 2, 2, 1, 1, 8, false, 1],
  [1, 2, 1, 5, 9, 16, true, 1],
  [2, 4, 2, 7, 13, 8, true, 1],
  [1, 3, 3, 9, 9, 24, false, 1],
  [1, 2, 2, 70, 70, 16, true, 1],
  [1, 1, 1, 3, 577, 64, false, 1],
  [1, 2, 2, 11, 40, 32, false, 30], // logits in the hundreds: most exp(l − max) below −87.3, i.e. 0
  [1, 2, 2, 6, 6, 12, false, 1], // d = 12: the kernels module's product
] as const;

Deno.test("relaxed SIMD attention: within the f32 bound of the float64 reference, full and causal, GQA, tails", async () => {
  const b = await createWasmBackend();
  assert(b.relaxedAttention, "relaxed attention is off");
  let seed = 4000;
  for (const [batch, heads, kvHeads, sq, skv, d, causal, spread] of CASES) {
    seed += 3;
    const q = gaussian(batch * heads * sq * d, seed, spread);
    const k = gaussian(batch * kvHeads * skv * d, seed + 1), v = gaussian(batch * kvHeads * skv * d, seed + 2);
    const out = b.scope(() =>
      b.keep(b.attention(
        b.upload(q, [batch, heads, sq, d]),
        b.upload(k, [batch, kvHeads, skv, d]),
        b.upload(v, [batch, kvHeads, skv, d]),
        { causal },
      ))
    );
    const got = await downloadDense(b, out);
    const ref = reference(q, k, v, { batch, heads, kvHeads, sq, skv, d }, causal);
    const label = `(${batch}, ${heads}/${kvHeads}, ${sq}×${skv}, d ${d}) ${
      causal ? "causal" : "full"
    } spread ${spread}`;
    // Measured: 1.3–2.7e-7 of Σ p·|v| at spread 1, 2.0e-5 at spread 30 (a logit's rounding, ε of its size, moves its
    // probability by as much). 1e-6 per unit of spread; an exp polynomial off by 1e-3 in one coefficient gave 1–8e-6.
    const worst = got.reduce((w, x, i) => Math.max(w, Math.abs(x - ref.value[i]) / ref.scale[i]), 0);
    assert(worst <= 1e-6 * spread, `${label}: error ${worst} of Σ p·|v|`);
  }
});

Deno.test("relaxed SIMD attention: the backend's attention is the relaxed head's, bit for bit", async () => {
  const kernels = await loadKernels();
  const attention = await relaxedAttention(kernels);
  assert(typeof attention !== "string", String(attention));
  const b = await createWasmBackend({ kernels });
  const [sq, skv, d] = [6, 19, 16];
  const q = gaussian(sq * d, 51), k = gaussian(skv * d, 52), v = gaussian(skv * d, 53);
  const out = b.scope(() =>
    b.keep(b.attention(b.upload(q, [1, 1, sq, d]), b.upload(k, [1, 1, skv, d]), b.upload(v, [1, 1, skv, d]), {
      causal: true,
    }))
  );
  const viaBackend = await downloadDense(b, out);
  const direct = kernels.scope((arena) => {
    const [qs, ks, vs] = [arena.input(q), arena.input(k), arena.input(v)];
    const y = arena.output(Float32Array, sq * d), kt = arena.output(Float32Array, d * 24);
    const p = arena.output(Float32Array, 4 * 24);
    attention.head(
      qs.ptr,
      4 * d,
      ks.ptr,
      4 * d,
      vs.ptr,
      4 * d,
      y.ptr,
      4 * d,
      sq,
      skv,
      d,
      0.25,
      true,
      kt.ptr,
      p.ptr,
    );
    return arena.read(y);
  });
  assertEquals([...new Uint32Array(viaBackend.buffer)], [...new Uint32Array(direct.buffer)]);
});
