/**
 * The op suite: every case of tests/op_cases.ts on every backend of tests/op_backends.ts, against the float64
 * reference. Bar (from ARCHITECTURE.md): max |got − ref| / scale ≤ 1e-5, where scale is the magnitude the case's
 * reference states (Σ|terms| for sums, |y| for single roundings); no NaN/Inf; the output shape; no leaked tensors.
 */
import { type Backend, BackendError, OP_NAMES, type Tensor } from "../src/backend/backend.ts";
import { KvCache } from "../src/backend/kv_cache.ts";
import { OP_CASES } from "./op_cases.ts";
import { BACKENDS } from "./op_backends.ts";
import { assert, assertEquals, assertThrows } from "./util/assert.ts";

const TOLERANCE = 1e-5;

const backends = new Map<string, Promise<Backend>>();
const backend = (name: string) => {
  if (!backends.has(name)) backends.set(name, BACKENDS.find((b) => b.name === name)!.make());
  return backends.get(name)!;
};

const worst = new Map<string, number>();

for (const entry of BACKENDS) {
  for (const c of OP_CASES) {
    Deno.test(`${entry.name}: ${c.name}`, async () => {
      const b = await backend(entry.name);
      if (!b.supports(c.op, c.dtypes)) {
        // Not supported is a status, never a crash: the op must say so when called.
        const error = assertThrows(() => b.scope(() => c.prepare(b)()), BackendError);
        assertEquals(error.code, "unsupported");
        return;
      }
      const before = b.stats();
      const out = b.scope(() => c.prepare(b)());
      assertEquals([...out.shape], c.shape, "output shape");
      const got = await b.download(out);
      out.dispose();
      assertEquals(b.stats(), before, "every tensor of the case should be disposed");
      const { value, scale } = c.reference();
      assertEquals(got.length, value.length);
      let error = 0;
      for (let i = 0; i < got.length; i++) {
        assert(Number.isFinite(got[i]), `element ${i} is ${got[i]}`);
        const e = Math.abs(got[i] - value[i]) / scale[i];
        if (e > error) error = e;
      }
      const key = `${c.op}`;
      worst.set(key, Math.max(worst.get(key) ?? 0, error));
      assert(error <= TOLERANCE, `max error ${error.toExponential(2)} > ${TOLERANCE} (${c.name})`);
    });
  }

  Deno.test(`${entry.name}: an unsupported op or dtype is reported by supports() and a typed error`, async () => {
    const b = await backend(entry.name);
    for (const op of OP_NAMES) assertEquals(typeof b.supports(op), "boolean");
    assert(b.supports("linear", ["f32", "bf16", "f32"]) && b.supports("embedding", ["f16"]));
    assert(!b.supports("layerNorm", ["f16", "f32", "f32"]), "LayerNorm takes f32 activations only");
    const x = b.upload(new Uint16Array(4), [2, 2], "f16");
    const g = b.upload(new Float32Array(2), [2]);
    const error = assertThrows(() => b.layerNorm(x, g, g, 1e-5), BackendError);
    assertEquals(error.code, "unsupported");
    x.dispose();
    g.dispose();
  });

  Deno.test(`${entry.name}: lifetime and argument errors are typed`, async () => {
    const b = await backend(entry.name);
    const before = b.stats();
    const x = b.upload(new Float32Array(6), [2, 3]);
    const view = b.permute(x, [1, 0]);
    x.dispose();
    // The view keeps the storage alive; disposing it frees it.
    assertEquals((await b.download(view)).length, 6);
    assertEquals(assertThrows(() => b.reshape(view, [6]), BackendError).code, "bad_shape");
    assertEquals(assertThrows(() => b.expand(view, [3, 4]), BackendError).code, "bad_shape");
    view.dispose();
    assertEquals(assertThrows(() => b.softmax(view), BackendError).code, "disposed");
    assertEquals(assertThrows(() => b.upload(new Float32Array(5), [2, 3]), BackendError).code, "bad_shape");
    const table = b.upload(new Float32Array(6), [3, 2]);
    assertEquals(assertThrows(() => b.embedding(table, Int32Array.from([3])), BackendError).code, "bad_argument");
    const q = b.upload(new Float32Array(2 * 3 * 4), [1, 3, 2, 4]);
    const k = b.upload(new Float32Array(2 * 2 * 4), [1, 2, 2, 4]);
    assertEquals(assertThrows(() => b.attention(q, k, k, { causal: false }), BackendError).code, "bad_shape");
    const p = b.upload(new Float32Array(1 * 3 * 3), [1, 3, 3]);
    const feats = b.upload(new Float32Array(9 * 2), [1, 3, 3, 2]);
    const pool = { kernel: [2, 3, 3], stride: [2, 3, 3], tau: 0.01 } as const;
    assertEquals(assertThrows(() => b.windowPool(feats, p, pool), BackendError).code, "bad_shape", "T < 2 errors");
    for (const t of [table, q, k, p, feats]) t.dispose();
    // A scope frees what it made except its result, also when the body throws.
    const kept = b.scope(() => {
      const a = b.upload(new Float32Array([1, 2]), [2]);
      return b.add(a, a);
    });
    assertThrows(() => b.scope(() => b.add(b.upload(new Float32Array(2), [2]), b.zeros([3]))), BackendError);
    assertEquals(b.stats().tensors, before.tensors + 1);
    assertEquals([...await b.download(kept)], [2, 4]);
    kept.dispose();
    // keep() takes a tensor out of the scope that made it (the scope returns nothing).
    let survivor: Tensor | null = null;
    b.scope(() => {
      survivor = b.keep(b.zeros([4]));
    });
    assertEquals(b.stats(), { tensors: before.tensors + 1, bytes: before.bytes + 16 });
    assert(!survivor!.disposed);
    survivor!.dispose();
    assertEquals(b.stats(), before);
  });
}

Deno.test("tensors of one backend are refused by another", async () => {
  const [a, b] = [await backend(BACKENDS[0].name), await backend(BACKENDS[1].name)];
  const t = a.upload(new Float32Array(2), [2]);
  assertEquals(assertThrows(() => b.softmax(t), BackendError).code, "wrong_backend");
  t.dispose();
});

Deno.test("summary: worst error per op (all backends)", () => {
  const rows = [...worst.entries()].map(([op, e]) => `${op.padEnd(12)} ${e.toExponential(2)}`);
  console.log(`\n${rows.join("\n")}`);
});

Deno.test("a long-running loop of scoped forward passes does not grow memory", async () => {
  const b = await backend(BACKENDS[0].name);
  const [s, h, d] = [40, 4, 16];
  const weight = b.upload(new Float32Array(3 * h * d * h * d).map((_, i) => Math.sin(i) * 0.05), [3 * h * d, h * d]);
  const gain = b.upload(new Float32Array(h * d).fill(1), [h * d]);
  const cache = new KvCache(b, { batch: 1, kvHeads: h, headDim: d, capacity: 64 });
  const step = (x: Tensor) =>
    b.scope(() => {
      const qkv = b.reshape(b.linear(b.rmsNorm(x, gain, 1e-6), weight), [x.shape[0], 3, h, d]);
      const part = (i: number) => b.reshape(b.slice(qkv, 1, i, i + 1), [x.shape[0], h, d]);
      const q = b.rope(part(0), { theta: 10000, offset: cache.length });
      const k = b.rope(part(1), { theta: 10000, offset: cache.length });
      cache.append(
        b.permute(b.reshape(k, [1, x.shape[0], h, d]), [0, 2, 1, 3]),
        b.permute(b.reshape(part(2), [1, x.shape[0], h, d]), [0, 2, 1, 3]),
      );
      const { keys, values } = cache.view();
      const out = b.attention(b.permute(b.reshape(q, [1, x.shape[0], h, d]), [0, 2, 1, 3]), keys, values, {
        causal: true,
      });
      return b.add(x, b.reshape(b.permute(out, [0, 2, 1, 3]), [x.shape[0], h * d]));
    });
  const before = b.stats();
  let memory = 0;
  for (let round = 0; round < 30; round++) {
    cache.reset();
    const prompt = b.upload(new Float32Array(s * h * d).map((_, i) => Math.cos(i + round)), [s, h * d]);
    let x = step(prompt);
    prompt.dispose();
    for (let t = 0; t < 8; t++) {
      const last = x;
      // The view of the last row is made inside a scope too, so it is disposed with it.
      const next = b.scope(() => step(b.slice(last, 0, last.shape[0] - 1, last.shape[0])));
      x.dispose();
      x = next;
    }
    assert((await b.download(x)).every(Number.isFinite));
    x.dispose();
    assertEquals(b.stats(), before, `round ${round}: live tensors`);
    if (round === 2) memory = (b as unknown as { memoryBytes: number }).memoryBytes;
    if (round > 2) assertEquals((b as unknown as { memoryBytes: number }).memoryBytes, memory, "module memory grew");
  }
  cache.dispose();
  weight.dispose();
  gain.dispose();
});

Deno.test("wasm SIMD and its scalar twin agree bit for bit where they sum in the same order", async () => {
  // The register tile, the decode dot and axpy keep the scalar twin's order of f32 operations (no FMA in
  // WebAssembly SIMD), so these ops must match exactly; f64-accumulated ones (norms) may differ in the last bit. The
  // kernels module's SIMD alone: relaxed SIMD's f32 linear fuses multiply-add (tests/relaxed_f32.test.ts).
  const [simd, scalar] = [await backend("wasm-simd-kernels"), await backend("wasm-scalar")];
  const exact = new Set(["linear", "matmul", "attention", "softmax", "patchEmbed", "windowPool", "add", "mul"]);
  let compared = 0;
  for (const c of OP_CASES.filter((c) => exact.has(c.op))) {
    const results = [];
    for (const b of [simd, scalar]) {
      const out = b.scope(() => c.prepare(b)());
      results.push(await b.download(out));
      out.dispose();
    }
    assertEquals(results[0], results[1], c.name);
    compared++;
  }
  assert(compared > 20, `compared ${compared} cases`);
});

Deno.test("KvCache.reorder copies beam rows (repeats allowed) and keeps memory constant", async () => {
  const b = await backend(BACKENDS[0].name);
  const before = b.stats();
  const [batch, heads, d] = [3, 2, 4];
  const cache = new KvCache(b, { batch, kvHeads: heads, headDim: d, capacity: 5 });
  const step = (base: number) => {
    const data = new Float32Array(batch * heads * 2 * d).map((_, i) => base + i);
    return b.upload(data, [batch, heads, 2, d]);
  };
  b.scope(() => cache.append(step(0), step(1000)));
  cache.reorder([2, 2, 0]);
  const { keys, values } = cache.view();
  const [k, v] = [await b.download(keys), await b.download(values)];
  keys.dispose();
  values.dispose();
  const per = heads * 2 * d;
  for (const [row, source] of [[0, 2], [1, 2], [2, 0]]) {
    for (let i = 0; i < per; i++) {
      assertEquals(k[row * per + i], source * per + i);
      assertEquals(v[row * per + i], 1000 + source * per + i);
    }
  }
  assertEquals(assertThrows(() => cache.reorder([0, 1]), BackendError).code, "bad_argument");
  cache.dispose();
  assertEquals(b.stats(), before);
});
