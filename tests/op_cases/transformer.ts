/** Op cases of the transformer blocks: matmul/linear, attention (incl. the KV cache), norms, activations. */
import type { FloatDType as DType } from "../../src/backend/backend.ts";
import { KvCache } from "../../src/backend/kv_cache.ts";
import * as ref from "../reference/ops.ts";
import { gaussian } from "../util/random.ts";
import { halfWeights, lazy, type OpCase, permuteData, size } from "./common.ts";

function linearCase(rows: number, k: number, n: number, dtype: DType, withBias: boolean, seed: number): OpCase {
  const data = lazy(() => {
    const x = gaussian(rows * k, seed);
    const half = dtype === "f32" ? null : halfWeights(n * k, seed + 1, dtype);
    const w = half ? half.values : Float64Array.from(gaussian(n * k, seed + 1));
    const bias = withBias ? gaussian(n, seed + 2) : undefined;
    return { x, w, wUpload: half ? half.bits : Float32Array.from(w), bias };
  });
  return {
    name: `linear ${rows}×${k} · (${n}×${k})ᵀ ${dtype}${withBias ? " + bias" : ""}`,
    op: "linear",
    dtypes: ["f32", dtype, "f32"],
    shape: [rows, n],
    flops: 2 * rows * k * n,
    prepare: (b) => {
      const { x, wUpload, bias } = data();
      const [tx, tw] = [b.upload(x, [rows, k]), b.upload(wUpload, [n, k], dtype)];
      const tb = bias ? b.upload(bias, [n]) : undefined;
      return () => b.linear(tx, tw, tb);
    },
    reference: () => ref.linear(data().x, data().w, rows, k, n, data().bias),
  };
}

const matmulCases: OpCase[] = [
  linearCase(1, 1, 1, "f32", false, 1),
  linearCase(67, 300, 130, "f32", true, 2),
  linearCase(33, 77, 50, "f16", false, 3),
  linearCase(17, 64, 40, "bf16", true, 4),
  linearCase(5, 513, 9, "f32", true, 5),
  // Decode-shaped products (m ≤ 4 takes the matrix–vector path).
  linearCase(1, 515, 67, "bf16", true, 6),
  linearCase(3, 300, 33, "f16", false, 7),
  linearCase(4, 1030, 21, "f32", true, 8),
  (() => {
    const [batch, m, k, n] = [3, 5, 19, 11];
    const a = lazy(() => gaussian(batch * m * k, 11));
    const bm = lazy(() => gaussian(batch * k * n, 12));
    return {
      name: "matmul batched (3, 5, 19) · (3, 19, 11)",
      op: "matmul",
      dtypes: ["f32", "f32"],
      shape: [batch, m, n],
      prepare: (b) => {
        const [ta, tb] = [b.upload(a(), [batch, m, k]), b.upload(bm(), [batch, k, n])];
        return () => b.matmul(ta, tb);
      },
      reference: () => ref.matmul(a(), bm(), batch, m, k, n, false),
    } satisfies OpCase;
  })(),
  (() => {
    // A stored (K, M) and read through a permuted view; B a slice of a wider matrix (row stride 2N).
    const [m, k, n] = [13, 29, 10];
    const at = lazy(() => gaussian(k * m, 13));
    const wide = lazy(() => gaussian(k * 2 * n, 14));
    return {
      name: "matmul strided views: Aᵀ view · B column slice",
      op: "matmul",
      dtypes: ["f32", "f32"],
      shape: [m, n],
      prepare: (b) => {
        const a = b.permute(b.upload(at(), [k, m]), [1, 0]);
        const bv = b.slice(b.upload(wide(), [k, 2 * n]), 1, n, 2 * n);
        return () => b.matmul(a, bv);
      },
      reference: () => {
        const a = permuteData(at(), [k, m], [1, 0]);
        const bv = new Float64Array(k * n);
        for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) bv[p * n + j] = wide()[p * 2 * n + n + j];
        return ref.matmul(a, bv, 1, m, k, n, true);
      },
    } satisfies OpCase;
  })(),
  (() => {
    const x = lazy(() => gaussian(768, 17));
    const w = lazy(() => halfWeights(768 * 40, 18, "bf16"));
    return {
      name: "linear of a vector (768) · (40×768)ᵀ bf16 (the text projection of the pooled token)",
      op: "linear",
      dtypes: ["f32", "bf16"],
      shape: [40],
      prepare: (b) => {
        const [tx, tw] = [b.upload(x(), [768]), b.upload(w().bits, [40, 768], "bf16")];
        return () => b.linear(tx, tw);
      },
      reference: () => ref.linear(x(), w().values, 1, 768, 40),
    } satisfies OpCase;
  })(),
  (() => {
    const shape = [2, 3, 5, 24];
    const x = lazy(() => gaussian(size(shape), 15));
    const w = lazy(() => gaussian(7 * 24, 16));
    return {
      name: "linear on a rank-4 input (2, 3, 5, 24) → (…, 7)",
      op: "linear",
      dtypes: ["f32", "f32"],
      shape: [2, 3, 5, 7],
      prepare: (b) => {
        const [tx, tw] = [b.upload(x(), shape), b.upload(w(), [7, 24])];
        return () => b.linear(tx, tw);
      },
      reference: () => ref.linear(x(), w(), 30, 24, 7),
    } satisfies OpCase;
  })(),
  (() => {
    // Batch rows that are not one run of rows (x stored (5, 3, 24), read as (3, 5, 24)): the GEMM runs per batch
    // entry; the dense rank-4 case above is folded into one GEMM of all rows. Both must give the same numbers.
    const x = lazy(() => gaussian(5 * 3 * 24, 19));
    const w = lazy(() => halfWeights(7 * 24, 20, "f16"));
    return {
      name: "linear on a permuted batch (3, 5, 24) view · (7×24)ᵀ f16 (no folding into one GEMM)",
      op: "linear",
      dtypes: ["f32", "f16"],
      shape: [3, 5, 7],
      prepare: (b) => {
        const [tx, tw] = [b.permute(b.upload(x(), [5, 3, 24]), [1, 0, 2]), b.upload(w().bits, [7, 24], "f16")];
        return () => b.linear(tx, tw);
      },
      reference: () => ref.linear(permuteData(x(), [5, 3, 24], [1, 0, 2]), w().values, 15, 24, 7),
    } satisfies OpCase;
  })(),
];

interface AttentionDims {
  batch: number;
  heads: number;
  kvHeads: number;
  sq: number;
  skv: number;
  d: number;
}

function attentionCase(name: string, dims: AttentionDims, causal: boolean, seed: number): OpCase {
  const { batch, heads, kvHeads, sq, skv, d } = dims;
  const data = lazy(() => ({
    q: gaussian(batch * heads * sq * d, seed),
    k: gaussian(batch * kvHeads * skv * d, seed + 1),
    v: gaussian(batch * kvHeads * skv * d, seed + 2),
  }));
  return {
    name: `attention ${name}`,
    op: "attention",
    dtypes: ["f32", "f32", "f32"],
    shape: [batch, heads, sq, d],
    flops: 4 * batch * heads * sq * skv * d,
    prepare: (b) => {
      const { q, k, v } = data();
      const tq = b.upload(q, [batch, heads, sq, d]);
      const [tk, tv] = [b.upload(k, [batch, kvHeads, skv, d]), b.upload(v, [batch, kvHeads, skv, d])];
      return () => b.attention(tq, tk, tv, { causal });
    },
    reference: () => ref.attention(data().q, data().k, data().v, dims, causal),
  };
}

const attentionCases: OpCase[] = [
  attentionCase("full MHA (2, 3, 17, 8)", { batch: 2, heads: 3, kvHeads: 3, sq: 17, skv: 17, d: 8 }, false, 21),
  attentionCase(
    "causal MHA (1, 2, 70, 16) across query blocks",
    { batch: 1, heads: 2, kvHeads: 2, sq: 70, skv: 70, d: 16 },
    true,
    22,
  ),
  attentionCase(
    "causal GQA 8 q heads over 2 kv heads",
    { batch: 1, heads: 8, kvHeads: 2, sq: 9, skv: 9, d: 32 },
    true,
    23,
  ),
  attentionCase(
    "causal, 3 new queries over 11 keys",
    { batch: 1, heads: 2, kvHeads: 1, sq: 3, skv: 11, d: 64 },
    true,
    24,
  ),
  (() => {
    // q, k, v as the views a graph makes of one fused (S, 3·H·D) projection: (S, 3, H, D) → slice → (1, H, S, D).
    const [s, h, d] = [12, 4, 16];
    const qkv = lazy(() => gaussian(s * 3 * h * d, 25));
    const part = (which: number) => {
      const out = new Float64Array(h * s * d);
      for (let t = 0; t < s; t++) {
        for (let hh = 0; hh < h; hh++) {
          for (let e = 0; e < d; e++) out[(hh * s + t) * d + e] = qkv()[((t * 3 + which) * h + hh) * d + e];
        }
      }
      return out;
    };
    return {
      name: "attention on strided q/k/v views of a fused projection",
      op: "attention",
      dtypes: ["f32", "f32", "f32"],
      shape: [1, h, s, d],
      prepare: (b) => {
        const t = b.upload(qkv(), [s, 3, h, d]);
        const view = (which: number) =>
          b.reshape(b.permute(b.slice(t, 1, which, which + 1), [1, 2, 0, 3]), [1, h, s, d]);
        const [q, k, v] = [view(0), view(1), view(2)];
        return () => b.attention(q, k, v, { causal: true });
      },
      reference: () =>
        ref.attention(part(0), part(1), part(2), { batch: 1, heads: h, kvHeads: h, sq: s, skv: s, d }, true),
    } satisfies OpCase;
  })(),
  (() => {
    // Decoding: prefill 6 positions into a KV cache, then one step; must equal the last row of full causal attention.
    const [heads, kvHeads, s, d] = [4, 2, 7, 8];
    const data = lazy(() => ({
      q: gaussian(heads * s * d, 26),
      k: gaussian(kvHeads * s * d, 27),
      v: gaussian(kvHeads * s * d, 28),
    }));
    return {
      name: "attention KV-cache decode step == full causal recompute (GQA)",
      op: "attention",
      dtypes: ["f32", "f32", "f32"],
      shape: [1, heads, 1, d],
      prepare: (b) => {
        const { q, k, v } = data();
        const [tq, tk, tv] = [
          b.upload(q, [1, heads, s, d]),
          b.upload(k, [1, kvHeads, s, d]),
          b.upload(v, [1, kvHeads, s, d]),
        ];
        return () =>
          b.scope(() => {
            const cache = new KvCache(b, { batch: 1, kvHeads, headDim: d, capacity: 16 });
            try {
              cache.append(b.slice(tk, 2, 0, s - 1), b.slice(tv, 2, 0, s - 1));
              const prefill = cache.view();
              b.attention(b.slice(tq, 2, 0, s - 1), prefill.keys, prefill.values, { causal: true });
              cache.append(b.slice(tk, 2, s - 1, s), b.slice(tv, 2, s - 1, s));
              const { keys, values } = cache.view();
              return b.attention(b.slice(tq, 2, s - 1, s), keys, values, { causal: true });
            } finally {
              cache.dispose();
            }
          });
      },
      reference: () => {
        const full = ref.attention(data().q, data().k, data().v, { batch: 1, heads, kvHeads, sq: s, skv: s, d }, true);
        const pick = (a: Float64Array) => {
          const out = new Float64Array(heads * d);
          for (let h = 0; h < heads; h++) for (let e = 0; e < d; e++) out[h * d + e] = a[(h * s + s - 1) * d + e];
          return out;
        };
        return { value: pick(full.value), scale: pick(full.scale) };
      },
    } satisfies OpCase;
  })(),
];

function normCase(kind: "layerNorm" | "rmsNorm", rows: number, dim: number, view: boolean, seed: number): OpCase {
  const data = lazy(() => {
    const x = gaussian(rows * dim * (view ? 2 : 1), seed).map((v) => v + 3);
    return { x, g: gaussian(dim, seed + 1), bias: gaussian(dim, seed + 2) };
  });
  const logical = () => {
    if (!view) return data().x;
    const out = new Float64Array(rows * dim);
    for (let r = 0; r < rows; r++) for (let i = 0; i < dim; i++) out[r * dim + i] = data().x[r * 2 * dim + dim + i];
    return out;
  };
  return {
    name: `${kind} (${rows}, ${dim})${view ? " on a column-slice view" : ""}, mean shifted by 3`,
    op: kind,
    dtypes: kind === "layerNorm" ? ["f32", "f32", "f32"] : ["f32", "f32"],
    shape: [rows, dim],
    prepare: (b) => {
      const { x, g, bias } = data();
      const tx = view ? b.slice(b.upload(x, [rows, 2 * dim]), 1, dim, 2 * dim) : b.upload(x, [rows, dim]);
      const [tg, tb] = [b.upload(g, [dim]), b.upload(bias, [dim])];
      return kind === "layerNorm" ? () => b.layerNorm(tx, tg, tb, 1e-5) : () => b.rmsNorm(tx, tg, 1e-6);
    },
    reference: () =>
      kind === "layerNorm"
        ? ref.layerNorm(logical(), rows, dim, data().g, data().bias, 1e-5)
        : ref.rmsNorm(logical(), rows, dim, data().g, 1e-6),
  };
}

function elementCase(kind: "gelu" | "geluTanh" | "quickGelu" | "silu"): OpCase {
  // A grid over [−20, 20], the far tails (where f32 exponentials leave the normal range), tiny values, and
  // Gaussian values: 4101 in all.
  const tails = [-110, -100, -90, -87.5, -86, -60, -45, 45, 60, 100, 1e-20, -1e-20, 3e-39, 0];
  const x = lazy(() => {
    const out = new Float32Array(4101);
    for (let i = 0; i < 401; i++) out[i] = -20 + i * 0.1;
    out.set(tails, 401);
    out.set(gaussian(4101 - 401 - tails.length, 31), 401 + tails.length);
    return out;
  });
  return {
    name: `${kind} on [−20, 20], the far tails and Gaussian values`,
    op: kind,
    dtypes: ["f32"],
    shape: [3, 1367],
    prepare: (b) => {
      const t = b.upload(x(), [3, 1367]);
      return () => b[kind](t);
    },
    reference: () => ref.activate(kind, x()),
  };
}

export const transformerCases: OpCase[] = [
  ...matmulCases,
  ...attentionCases,
  normCase("layerNorm", 5, 1027, false, 41),
  normCase("layerNorm", 6, 64, true, 42),
  normCase("rmsNorm", 7, 515, false, 43),
  normCase("rmsNorm", 3, 32, true, 44),
  elementCase("gelu"),
  elementCase("geluTanh"),
  elementCase("quickGelu"),
  elementCase("silu"),
];
