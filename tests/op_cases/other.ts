/** Op cases of RoPE, softmax, element-wise products, embedding, patch embedding, PGP and data movement. */
import type { FloatDType as DType } from "../../src/backend/backend.ts";
import * as ref from "../reference/ops.ts";
import { relevanceReference } from "../reference/relevance.ts";
import { gaussian } from "../util/random.ts";
import { halfWeights, lazy, type OpCase, permuteData, size } from "./common.ts";

function ropeCase(
  batch: number,
  seq: number,
  heads: number,
  d: number,
  theta: number,
  offset: number,
  view: boolean,
): OpCase {
  // With `view`, x is the first of two halves of a (B, S, 2, H, D) buffer: strides that are not dense.
  const x = lazy(() => gaussian(batch * seq * (view ? 2 : 1) * heads * d, 50 + d));
  const logical = () => {
    if (!view) return x();
    const out = new Float64Array(batch * seq * heads * d);
    for (let r = 0; r < batch * seq; r++) {
      for (let i = 0; i < heads * d; i++) out[r * heads * d + i] = x()[r * 2 * heads * d + i];
    }
    return out;
  };
  const shape = batch === 1 ? [seq, heads, d] : [batch, seq, heads, d];
  return {
    name: `rope ${shape.join("×")} θ=${theta} offset ${offset}${view ? " on a strided view" : ""}`,
    op: "rope",
    dtypes: ["f32"],
    shape,
    prepare: (b) => {
      const t = view
        ? b.reshape(b.slice(b.upload(x(), [batch * seq, 2, heads * d]), 1, 0, 1), shape)
        : b.upload(x(), shape);
      return () => b.rope(t, { theta, offset });
    },
    reference: () => {
      const all = logical();
      const value = new Float64Array(all.length);
      const scale = new Float64Array(all.length);
      const per = seq * heads * d;
      for (let bb = 0; bb < batch; bb++) {
        const r = ref.rope(all.subarray(bb * per, (bb + 1) * per), seq, heads, d, theta, offset);
        value.set(r.value, bb * per);
        scale.set(r.scale, bb * per);
      }
      return { value, scale };
    },
  };
}

function softmaxCase(rows: number, n: number, scale: number, permuted: boolean): OpCase {
  const x = lazy(() => gaussian(rows * n, 60 + n).map((v) => v * 3));
  return {
    name: `softmax (${rows}, ${n}) scale ${scale}${permuted ? " of a transposed view" : ""}`,
    op: "softmax",
    dtypes: ["f32"],
    shape: [rows, n],
    prepare: (b) => {
      const t = permuted ? b.permute(b.upload(x(), [n, rows]), [1, 0]) : b.upload(x(), [rows, n]);
      return () => b.softmax(t, scale);
    },
    reference: () => ref.softmax(permuted ? permuteData(x(), [n, rows], [1, 0]) : x(), rows, n, scale),
  };
}

function binaryCase(op: "add" | "mul", shape: number[], bShape: number[]): OpCase {
  const a = lazy(() => gaussian(size(shape), 70 + size(bShape)));
  const bb = lazy(() => gaussian(size(bShape), 71 + size(bShape)));
  return {
    name: `${op} [${shape}] ∘ [${bShape}]`,
    op,
    dtypes: ["f32", "f32"],
    shape,
    prepare: (b) => {
      const [ta, tb] = [b.upload(a(), shape), b.upload(bb(), bShape)];
      return () => b[op](ta, tb);
    },
    reference: () => ref.binary(a(), bb(), op),
  };
}

function embeddingCase(dtype: DType): OpCase {
  const [rows, dim] = [50, 24];
  const ids = Int32Array.from([0, 49, 7, 7, 23, 1]);
  const table = lazy(() => {
    if (dtype === "f32") {
      const t = gaussian(rows * dim, 80);
      return { upload: t, values: Float64Array.from(t) };
    }
    const { bits, values } = halfWeights(rows * dim, 81, dtype);
    return { upload: bits, values };
  });
  return {
    name: `embedding of a (${rows}, ${dim}) ${dtype} table`,
    op: "embedding",
    dtypes: [dtype],
    shape: [ids.length, dim],
    prepare: (b) => {
      const t = b.upload(table().upload, [rows, dim], dtype);
      return () => b.embedding(t, ids);
    },
    reference: () => ref.embedding(table().values, dim, ids),
  };
}

function patchCase(n: number, c: number, height: number, width: number, p: number, dout: number, dtype: DType): OpCase {
  const pixels = lazy(() => gaussian(n * c * height * width, 90 + p));
  const weight = lazy(() => {
    if (dtype === "f32") {
      const w = gaussian(dout * c * p * p, 91);
      return { upload: w, values: Float64Array.from(w) };
    }
    const { bits, values } = halfWeights(dout * c * p * p, 92, dtype);
    return { upload: bits, values };
  });
  const patches = Math.floor(height / p) * Math.floor(width / p);
  return {
    name: `patchEmbed (${n}, ${c}, ${height}, ${width}) patch ${p} → ${dout}, ${dtype} weight`,
    op: "patchEmbed",
    dtypes: ["f32", dtype],
    shape: [n, patches, dout],
    flops: 2 * n * patches * dout * c * p * p,
    prepare: (b) => {
      const tp = b.upload(pixels(), [n, c, height, width]);
      const tw = b.upload(weight().upload, [dout, c, p, p], dtype);
      return () => b.patchEmbed(tp, tw);
    },
    reference: () => ref.patchEmbed(pixels(), n, c, height, width, weight().values, dout, p),
  };
}

function poolCase(
  dims: [number, number, number, number],
  kernel: [number, number, number],
  weights: "uniform" | "mild" | "peaked",
): OpCase {
  const [t, h, w, c] = dims;
  const x = lazy(() => gaussian(t * h * w * c, 100 + t));
  // Relevance-like probabilities summing to 1 over the video: mild (p/τ ≪ 1) or with a few dominant cells.
  const p = lazy(() => {
    const logits = gaussian(t * h * w, 101 + t).map((v, i) => (weights === "peaked" && i % 17 === 3 ? v + 6 : v));
    return Float32Array.from(ref.softmax(logits, 1, logits.length).value);
  });
  const o = [t, h, w].map((d, a) => Math.floor((d - kernel[a]) / kernel[a]) + 1);
  return {
    name: `windowPool (${dims}) kernel = stride (${kernel}), ${weights} weights`,
    op: "windowPool",
    dtypes: weights === "uniform" ? ["f32"] : ["f32", "f32"],
    shape: [o[0], o[1], o[2], c],
    prepare: (b) => {
      const tx = b.upload(x(), dims);
      const tp = weights === "uniform" ? null : b.upload(p(), [t, h, w]);
      return () => b.windowPool(tx, tp, { kernel, stride: kernel, tau: 0.01 });
    },
    reference: () => ref.windowPool(x(), weights === "uniform" ? null : p(), dims, kernel, kernel, 0.01),
  };
}

const relevanceCase: OpCase = (() => {
  const [n, dim] = [301, 67];
  const visual = lazy(() => gaussian(n * dim, 110));
  const text = lazy(() => gaussian(dim, 111));
  return {
    name: `relevance (${n}, ${dim}) scale 100`,
    op: "relevance",
    dtypes: ["f32", "f32"],
    shape: [n],
    prepare: (b) => {
      const [tv, tt] = [b.upload(visual(), [n, dim]), b.upload(text(), [dim])];
      return () => b.relevance(tv, tt, 100);
    },
    reference: () => {
      const value = relevanceReference(visual(), text(), 100);
      return { value, scale: value.map((v) => Math.abs(v) + ref.F32_TINY) };
    },
  };
})();

const layoutCases: OpCase[] = [
  (() => {
    // Patch-major/time-minor ↔ time-major (spec §3.3): (T, P, D) → (P, T, D) as a dense copy.
    const shape = [3, 5, 7];
    const x = lazy(() => gaussian(size(shape), 120));
    return {
      name: "contiguous of a permuted (T, P, D) → (P, T, D) view",
      op: "contiguous",
      dtypes: ["f32"],
      shape: [5, 3, 7],
      prepare: (b) => {
        const t = b.permute(b.upload(x(), shape), [1, 0, 2]);
        return () => b.contiguous(t);
      },
      reference: () => {
        const value = permuteData(x(), shape, [1, 0, 2]);
        return { value, scale: value.map((v) => Math.abs(v) + ref.F32_TINY) };
      },
    } satisfies OpCase;
  })(),
  (() => {
    // The BT-Adapter's per-frame sequences: one CLS (1, 1, D) expanded to every frame, then [CLS ; patches].
    const [t, p, d] = [3, 4, 5];
    const cls = lazy(() => gaussian(d, 124));
    const patches = lazy(() => gaussian(t * p * d, 125));
    return {
      name: "concat of an expanded (stride-0) CLS and the patches of each frame",
      op: "concat",
      dtypes: ["f32"],
      shape: [t, 1 + p, d],
      prepare: (b) => {
        const c = b.expand(b.upload(cls(), [1, 1, d]), [t, 1, d]);
        const x = b.upload(patches(), [t, p, d]);
        return () => b.concat([c, x], 1);
      },
      reference: () => {
        const value = new Float64Array(t * (1 + p) * d);
        for (let f = 0; f < t; f++) {
          value.set(cls(), f * (1 + p) * d);
          value.set(patches().subarray(f * p * d, (f + 1) * p * d), f * (1 + p) * d + d);
        }
        return { value, scale: value.map((v) => Math.abs(v) + ref.F32_TINY) };
      },
    } satisfies OpCase;
  })(),
  (() => {
    // An expanded row added through a dense copy (ops copy stride-0 views where they need dense input).
    const row = lazy(() => gaussian(6, 126));
    const x = lazy(() => gaussian(4 * 6, 127));
    return {
      name: "add of a tensor and an expanded row view (copied to dense by the op)",
      op: "add",
      dtypes: ["f32", "f32"],
      shape: [4, 6],
      prepare: (b) => {
        const r = b.expand(b.upload(row(), [6]), [4, 6]);
        const tx = b.upload(x(), [4, 6]);
        return () => b.add(tx, r);
      },
      reference: () => ref.binary(x(), Float64Array.from({ length: 24 }, (_, i) => row()[i % 6]), "add"),
    } satisfies OpCase;
  })(),
  (() => {
    // [CLS ; patches] along the token axis, the CLS coming from a strided view.
    const x = lazy(() => gaussian(2 * 4 * 6, 121));
    const cls = lazy(() => gaussian(2 * 6, 122));
    return {
      name: "concat of a view and a tensor along axis 1",
      op: "concat",
      dtypes: ["f32"],
      shape: [2, 5, 6],
      prepare: (b) => {
        const c = b.reshape(b.upload(cls(), [2, 6]), [2, 1, 6]);
        const t = b.upload(x(), [2, 4, 6]);
        return () => b.concat([c, t], 1);
      },
      reference: () => {
        const value = new Float64Array(2 * 5 * 6);
        for (let i = 0; i < 2; i++) {
          value.set(cls().subarray(i * 6, i * 6 + 6), i * 30);
          value.set(x().subarray(i * 24, i * 24 + 24), i * 30 + 6);
        }
        return { value, scale: value.map((v) => Math.abs(v) + ref.F32_TINY) };
      },
    } satisfies OpCase;
  })(),
  (() => {
    const half = lazy(() => halfWeights(40, 123, "bf16"));
    return {
      name: "cast bf16 → f32 of a transposed view",
      op: "cast",
      dtypes: ["bf16"],
      shape: [8, 5],
      prepare: (b) => {
        const t = b.permute(b.upload(half().bits, [5, 8], "bf16"), [1, 0]);
        return () => b.cast(t, "f32");
      },
      reference: () => {
        const value = permuteData(half().values, [5, 8], [1, 0]);
        return { value, scale: value.map((v) => Math.abs(v) + ref.F32_TINY) };
      },
    } satisfies OpCase;
  })(),
];

function meanCase(shape: number[], axis: number, permuted: boolean): OpCase {
  // permuted: the data is stored with the first two axes swapped and read through a permuted view.
  const stored = permuted ? [shape[1], shape[0], ...shape.slice(2)] : shape;
  const x = lazy(() => gaussian(size(shape), 140 + axis).map((v) => v + 1));
  const logical = () => (permuted ? permuteData(x(), stored, [1, 0, ...shape.slice(2).map((_, i) => i + 2)]) : x());
  const outer = size(shape.slice(0, axis));
  const inner = size(shape.slice(axis + 1));
  return {
    name: `mean of [${shape}] over axis ${axis}${permuted ? " of a permuted view" : ""}`,
    op: "mean",
    dtypes: ["f32"],
    shape: shape.filter((_, i) => i !== axis),
    prepare: (b) => {
      const t = permuted
        ? b.permute(b.upload(x(), stored), [1, 0, ...shape.slice(2).map((_, i) => i + 2)])
        : b.upload(x(), shape);
      return () => b.mean(t, axis);
    },
    reference: () => ref.mean(logical(), outer, shape[axis], inner),
  };
}

export const otherCases: OpCase[] = [
  meanCase([1, 33, 17], 1, false),
  meanCase([5, 7, 1, 9], 1, true),
  meanCase([6, 10], 0, false),
  (() => {
    const x = lazy(() => gaussian(303, 150));
    return {
      name: "scale (3, 101) by 0.5",
      op: "scale",
      dtypes: ["f32"],
      shape: [3, 101],
      prepare: (b) => {
        const t = b.upload(x(), [3, 101]);
        return () => b.scale(t, 0.5);
      },
      reference: () => ref.scale(x(), 0.5),
    } satisfies OpCase;
  })(),
  ropeCase(1, 5, 3, 8, 10000, 0, false),
  ropeCase(2, 4, 2, 64, 1e6, 37, true),
  ropeCase(1, 3, 2, 128, 10000, 4000, false),
  softmaxCase(9, 1000, 1, false),
  softmaxCase(13, 6, 0.125, true),
  (() => {
    const [g, u] = [lazy(() => gaussian(999, 130).map((v) => v * 4)), lazy(() => gaussian(999, 131))];
    return {
      name: "siluMul (27, 37)",
      op: "siluMul",
      dtypes: ["f32", "f32"],
      shape: [27, 37],
      prepare: (b) => {
        const [tg, tu] = [b.upload(g(), [27, 37]), b.upload(u(), [27, 37])];
        return () => b.siluMul(tg, tu);
      },
      reference: () => ref.siluMul(g(), u()),
    } satisfies OpCase;
  })(),
  binaryCase("add", [6, 11], [6, 11]),
  binaryCase("add", [6, 11], [11]),
  binaryCase("add", [3, 5, 7], [5, 7]),
  binaryCase("mul", [4, 9], [9]),
  embeddingCase("f32"),
  embeddingCase("f16"),
  embeddingCase("bf16"),
  patchCase(2, 3, 28, 28, 14, 9, "f32"),
  patchCase(1, 3, 30, 29, 7, 10, "f16"),
  patchCase(1, 2, 14, 14, 14, 5, "bf16"),
  relevanceCase,
  poolCase([4, 6, 6, 5], [2, 3, 3], "mild"),
  poolCase([5, 6, 9, 3], [2, 3, 3], "peaked"),
  poolCase([3, 6, 6, 4], [1, 3, 3], "peaked"),
  poolCase([2, 3, 3, 6], [2, 3, 3], "uniform"),
  ...layoutCases,
];
