/**
 * The f32 linear on relaxed SIMD's multiply-add (wasm/ppllava_relaxed.wasm, kernels-rs/relaxed/f32.wat): against
 * the float64 sum within the f32 summation bound, every row of a prefill with its decode step's bits, tails of k,
 * odd weight rows and block edges, and the kernels module's product where relaxed SIMD is off; f16 and bf16 weights
 * (widened to f32 a block of rows at a time from 5 x rows on) against the float64 sum of their values.
 */
import { createWasmBackend, type WasmBackend } from "../src/backend/wasm/backend.ts";
import { loadKernels } from "../src/backend/wasm/loader.ts";
import { relaxedF32Product, relaxedSimdSupport } from "../src/backend/wasm/relaxed.ts";
import { gaussian } from "./util/random.ts";
import { bf16Value, f16Value } from "./reference/ops.ts";
import { toF16 } from "../src/model/synthetic_checkpoint.ts";
import { assert, assertEquals } from "./util/assert.ts";

/** y (m, n) = x (m, k) · Wᵀ + bias, W (n, k) row-major. */
interface Problem {
  x: Float32Array;
  w: Float32Array;
  bias: Float32Array | null;
  m: number;
  n: number;
  k: number;
}

/** The problem's y through `b.linear`. */
async function linear(b: WasmBackend, { x, w, bias, m, n, k }: Problem) {
  const y = b.scope(() =>
    b.keep(b.linear(b.upload(x, [m, k]), b.upload(w, [n, k]), bias ? b.upload(bias, [n]) : undefined))
  );
  const out = await b.download(y);
  y.dispose();
  return out;
}

/** The first output off the float64 sum by more than k·2⁻²³·(Σ|x·w| + |b|) (plus two roundings), or null. */
function offFloat64(y: Float32Array, { x, w, bias, m, n, k }: Problem) {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let [sum, magnitude] = [bias ? bias[j] : 0, bias ? Math.abs(bias[j]) : 0];
      for (let t = 0; t < k; t++) {
        sum += x[i * k + t] * w[j * k + t];
        magnitude += Math.abs(x[i * k + t] * w[j * k + t]);
      }
      const error = Math.abs(y[i * n + j] - sum), bound = (k + 2) * 2 ** -23 * magnitude;
      if (!(error <= bound)) return `y[${i}, ${j}] = ${y[i * n + j]}, float64 ${sum}: off by ${error} > ${bound}`;
    }
  }
  return null;
}

// (m, n, k): k mod 4 = 0..3 and k mod 8 = 4 (the tile's single last step); m below, at and past a quad with m mod 4
// rows left; n odd (the tile's odd last row), 32 (one block), 33 and 65 (a block edge with an odd row after it).
const SHAPES = [
  [1, 1, 1],
  [1, 7, 3],
  [2, 5, 6],
  [3, 9, 100],
  [4, 2, 64],
  [4, 3, 12],
  [5, 33, 67],
  [8, 32, 129],
  [9, 65, 130],
  [13, 40, 257],
  [64, 48, 4096],
];

Deno.test("relaxed SIMD f32 linear: used on Deno, within the f32 bound of the float64 sum, like the kernels module's", async () => {
  const support = await relaxedSimdSupport(await loadKernels());
  assert(support.f32 !== null, `relaxed f32 is off on Deno: ${support.reason}`);
  assert(support.reason.includes("f32 (madd)"), support.reason);
  const relaxed = await createWasmBackend(), plain = await createWasmBackend({ relaxedSimd: false });
  assert(relaxed.relaxedFormats.includes("f32") && !plain.relaxedFormats.includes("f32"));
  let seed = 900;
  for (const [m, n, k] of SHAPES) {
    for (const withBias of [true, false]) {
      seed += 3;
      const x = gaussian(m * k, seed, 2), w = gaussian(n * k, seed + 1, 0.5);
      const bias = withBias ? gaussian(n, seed + 2) : null;
      const label = `(${m}, ${n}, ${k}) bias ${withBias}`;
      for (const [name, b] of [["relaxed", relaxed], ["kernels module", plain]] as const) {
        const miss = offFloat64(await linear(b, { x, w, bias, m, n, k }), { x, w, bias, m, n, k });
        assertEquals(miss, null, `${name} ${label}`);
      }
    }
  }
});

Deno.test("relaxed SIMD f32 linear: each prefill row has the bits of its decode step, and x views are read right", async () => {
  const b = await createWasmBackend();
  assert(b.relaxedFormats.includes("f32"), "relaxed f32 is off");
  let seed = 1300;
  for (const [m, n, k] of SHAPES.filter(([m]) => m > 1)) {
    seed += 3;
    const x = gaussian(m * k, seed, 2), w = gaussian(n * k, seed + 1, 0.5), bias = gaussian(n, seed + 2);
    const all = await linear(b, { x, w, bias, m, n, k });
    for (let i = 0; i < m; i++) {
      const row = await linear(b, { x: x.subarray(i * k, (i + 1) * k), w, bias, m: 1, n, k });
      const bits = (v: Float32Array) => [...new Uint32Array(v.slice().buffer)];
      assertEquals(bits(all.subarray(i * n, (i + 1) * n)), bits(row), `(${m}, ${n}, ${k}) row ${i}`);
    }
  }
  // A transposed (non-dense) x and a 3-D x: the same outputs as the dense 2-D call.
  const [m, n, k] = [6, 10, 20];
  const x = gaussian(m * k, 5), w = gaussian(n * k, 6), dense = await linear(b, { x, w, bias: null, m, n, k });
  const viaViews = b.scope(() => {
    const xt = b.upload(x, [m, k]);
    const twice = b.permute(b.contiguous(b.permute(xt, [1, 0])), [1, 0]); // (m, k) as a strided view
    return [
      b.keep(b.linear(twice, b.upload(w, [n, k]))),
      b.keep(b.linear(b.reshape(xt, [2, 3, k]), b.upload(w, [n, k]))),
    ];
  });
  for (const t of viaViews) {
    assertEquals([...await b.download(t)], [...dense]);
    t.dispose();
  }
});

Deno.test("relaxed SIMD f32 linear: the backend's linear is the relaxed product's, bit for bit", async () => {
  // The tests above would pass on the kernels module's product too; this one holds linear to the relaxed module.
  const kernels = await loadKernels();
  const product = await relaxedF32Product(kernels);
  assert(typeof product !== "string", String(product));
  const b = await createWasmBackend({ kernels });
  const [m, n, k] = [9, 37, 70];
  const x = gaussian(m * k, 41), w = gaussian(n * k, 42), bias = gaussian(n, 43);
  const viaLinear = await linear(b, { x, w, bias, m, n, k });
  const direct = kernels.scope((arena) => {
    const [xs, ws, bs] = [arena.input(x), arena.input(w), arena.input(bias)];
    const y = arena.output(Float32Array, m * n), packed = arena.output(Float32Array, 8 * k);
    product.matmul(xs.ptr, m, k, ws.ptr, n, bs.ptr, y.ptr, n, packed.ptr, true);
    return arena.read(y);
  });
  assertEquals([...new Uint32Array(viaLinear.buffer)], [...new Uint32Array(direct.buffer)]);
});

Deno.test("relaxed SIMD linear with f16 and bf16 weights: blocks of widened rows, within the f32 bound", async () => {
  const b = await createWasmBackend(), plain = await createWasmBackend({ relaxedSimd: false });
  assert(b.relaxedFormats.includes("f32"), "relaxed f32 is off");
  let seed = 2100;
  // (m, n, k): m = 4 stays in the kernels module (decoding reads the 2-byte weights as they are); k = 1000 widens 256
  // rows a block, so n = 300 is a full block and a part one; k = 4096 widens 64, so n = 130 is three blocks.
  for (const [m, n, k] of [[4, 9, 40], [5, 300, 1000], [11, 130, 4096], [6, 37, 33]]) {
    for (const [dtype, value] of [["f16", f16Value], ["bf16", bf16Value]] as const) {
      seed += 3;
      const x = gaussian(m * k, seed, 2), bias = gaussian(n, seed + 2);
      // Bit patterns of moderate values (exponents around 2⁰), with some subnormal f16 and negative ones.
      let state = seed;
      const bits = Uint16Array.from({ length: n * k }, (_, i) => {
        state = (Math.imul(state, 1103515245) + 12345) >>> 0;
        const sign = (state >>> 31) << 15, low = (state >>> 8) & 0x3ff;
        if (dtype === "bf16") return sign | (0x3e00 + ((state >>> 4) & 0x1ff)); // ±2⁻³…2¹
        return i % 97 === 0 ? sign | low : sign | (0x3000 + ((state >>> 6) & 0x1fff)); // subnormal, or ±2⁻³…2²
      });
      const w = Float32Array.from(bits, value);
      for (const [name, backend] of [["relaxed", b], ["kernels module", plain]] as const) {
        const y = backend.scope(() =>
          backend.keep(
            backend.linear(backend.upload(x, [m, k]), backend.upload(bits, [n, k], dtype), backend.upload(bias, [n])),
          )
        );
        const out = await backend.download(y);
        y.dispose();
        assertEquals(offFloat64(out, { x, w, bias, m, n, k }), null, `${name} ${dtype} (${m}, ${n}, ${k})`);
      }
    }
  }
});

Deno.test("relaxed SIMD widening: every f16 and bf16 bit pattern becomes its exact f32 value", async () => {
  const kernels = await loadKernels();
  const product = await relaxedF32Product(kernels);
  assert(typeof product !== "string", String(product));
  // All 65536 patterns, plus 5 more so that the last ones take the one-at-a-time tail after the 8-wide passes.
  const bits = Uint16Array.from({ length: 65541 }, (_, i) => (i * 40503) & 0xffff);
  for (const [dtype, value] of [["f16", f16Value], ["bf16", bf16Value]] as const) {
    const got = kernels.scope((arena) => {
      const src = arena.input(bits), dst = arena.output(Float32Array, bits.length);
      product.widen(dtype, src.ptr, bits.length, dst.ptr);
      return arena.read(dst);
    });
    const wrong = [...bits].findIndex((b, i) =>
      !Object.is(got[i], Math.fround(value(b))) && !(isNaN(got[i]) && isNaN(value(b)))
    );
    assertEquals(wrong, -1, `${dtype} 0x${bits[wrong]?.toString(16)}: ${got[wrong]} against ${value(bits[wrong])}`);
  }
});

Deno.test("relaxed SIMD linear: x past the packed scratch goes in chunks of rows, each row as it would alone", async () => {
  // K = 4096 packs 1024 rows at the most (gemm.ts PACKED_VALUES): 1030 rows are a chunk of 1024 and one of 6.
  const b = await createWasmBackend();
  const [m, k] = [1030, 4096];
  const x = gaussian(m * k, 3100, 2);
  for (const [dtype, n] of [["f32", 6], ["f16", 70]] as const) {
    const w = gaussian(n * k, 3101, 0.5), bias = gaussian(n, 3102);
    // f16: W rounded to f16 (synthetic checkpoints' encoder), the reference on those exact values.
    const bits16 = Uint16Array.from(dtype === "f16" ? w : [], toF16);
    if (dtype === "f16") {
      w.set(Float32Array.from(bits16, f16Value));
    }
    const run = (rows: Float32Array, count: number) => {
      const y = b.scope(() => {
        const weight = dtype === "f16" ? b.upload(bits16, [n, k], "f16") : b.upload(w, [n, k]);
        return b.keep(b.linear(b.upload(rows, [count, k]), weight, b.upload(bias, [n])));
      });
      return b.download(y).finally(() => y.dispose());
    };
    const all = await run(x, m);
    assertEquals(offFloat64(all, { x, w, bias, m, n, k }), null, `${dtype} (${m}, ${n}, ${k})`);
    // Rows at the chunk edge against the same rows in a call of their own (the last chunk's rows: 6 of them).
    const tail = await run(x.subarray(1024 * k), m - 1024);
    assertEquals([...new Uint32Array(all.slice(1024 * n).buffer)], [...new Uint32Array(tail.slice().buffer)], dtype);
  }
});
