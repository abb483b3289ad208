/**
 * Float64 reference of every backend op, written as plain loops from the definitions (spec §3.3–3.8, PyTorch/HF
 * conventions), independent of the kernels. Inputs are dense row-major arrays of the *logical* tensor (views are
 * the test's business); every function returns the value and, per element, the magnitude its error is measured
 * against: Σ|terms| for sums (an f32 sum of n terms is good to ~n·ε of that, whatever cancellation happens), |y|
 * for single roundings.
 */

export interface Ref {
  value: Float64Array;
  /** Per-element scale of the allowed error: |kernel − value| ≤ tolerance · scale. */
  scale: Float64Array;
}

type Arr = ArrayLike<number>;

/** Smallest positive normal f32: below it an f32 result can only be as exact as the subnormal step. */
export const F32_TINY = 1.1754943508222875e-38;

function relative(value: Float64Array): Ref {
  return { value, scale: value.map((v) => Math.abs(v) + F32_TINY) };
}

/** IEEE binary16 bits → value. */
export function f16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** bfloat16 bits → value (the top half of an f32). */
export function bf16Value(bits: number): number {
  return new Float32Array(new Uint32Array([bits << 16]).buffer)[0];
}

/** c (batch, m, n) = a (batch, m, k) · b (batch or 1, k, n) + bias (n). */
export function matmul(
  a: Arr,
  b: Arr,
  batch: number,
  m: number,
  k: number,
  n: number,
  bShared: boolean,
  bias?: Arr,
): Ref {
  const value = new Float64Array(batch * m * n);
  const scale = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    const bb = bShared ? 0 : t * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = bias ? bias[j] : 0;
        let mag = bias ? Math.abs(bias[j]) : 0;
        for (let p = 0; p < k; p++) {
          const term = a[(t * m + i) * k + p] * b[bb + p * n + j];
          sum += term;
          mag += Math.abs(term);
        }
        value[(t * m + i) * n + j] = sum;
        scale[(t * m + i) * n + j] = mag + F32_TINY;
      }
    }
  }
  return { value, scale };
}

/** y (rows, n) = x (rows, k) · Wᵀ + bias, W (n, k). */
export function linear(x: Arr, w: Arr, rows: number, k: number, n: number, bias?: Arr): Ref {
  const wt = new Float64Array(k * n);
  for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) wt[p * n + j] = w[j * k + p];
  return matmul(x, wt, 1, rows, k, n, true, bias);
}

/**
 * out (B, Hq, Sq, D) = softmax(scale·q·kᵀ) v per head, k/v (B, Hkv, Skv, D), head h reads kv head h/(Hq/Hkv);
 * causal: query i sees keys j ≤ i + Skv − Sq. Scale: Σ_j p_j·|v_j| (the sum the output is; the f32 logit errors
 * also land in it, as relative errors of p_j).
 */
export function attention(
  q: Arr,
  k: Arr,
  v: Arr,
  dims: { batch: number; heads: number; kvHeads: number; sq: number; skv: number; d: number },
  causal: boolean,
  scale = 1 / Math.sqrt(dims.d),
): Ref {
  const { batch, heads, kvHeads, sq, skv, d } = dims;
  const value = new Float64Array(batch * heads * sq * d);
  const mag = new Float64Array(value.length);
  const group = heads / kvHeads;
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < sq; i++) {
        const visible = causal ? i + skv - sq + 1 : skv;
        const logits = new Float64Array(visible);
        for (let j = 0; j < visible; j++) {
          let dot = 0;
          for (let e = 0; e < d; e++) {
            dot += q[((b * heads + h) * sq + i) * d + e] * k[((b * kvHeads + g) * skv + j) * d + e];
          }
          logits[j] = scale * dot;
        }
        const max = Math.max(...logits);
        let total = 0;
        const p = logits.map((l) => Math.exp(l - max));
        for (const x of p) total += x;
        for (let e = 0; e < d; e++) {
          let sum = 0;
          let m = 0;
          for (let j = 0; j < visible; j++) {
            const vj = v[((b * kvHeads + g) * skv + j) * d + e];
            sum += (p[j] / total) * vj;
            m += (p[j] / total) * Math.abs(vj);
          }
          value[((b * heads + h) * sq + i) * d + e] = sum;
          mag[((b * heads + h) * sq + i) * d + e] = m + F32_TINY;
        }
      }
    }
  }
  return { value, scale: mag };
}

/** y (rows, dim) = (x − μ)/√(σ² + eps)·g + b, σ² biased. Scale: (|x| + |μ|)/σ·|g| + |b|. */
export function layerNorm(x: Arr, rows: number, dim: number, g: Arr, bias: Arr, eps: number): Ref {
  const value = new Float64Array(rows * dim);
  const scale = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[r * dim + i];
    mean /= dim;
    let variance = 0;
    for (let i = 0; i < dim; i++) variance += (x[r * dim + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(variance / dim + eps);
    for (let i = 0; i < dim; i++) {
      const xi = x[r * dim + i];
      value[r * dim + i] = (xi - mean) * inv * g[i] + bias[i];
      scale[r * dim + i] = (Math.abs(xi) + Math.abs(mean)) * inv * Math.abs(g[i]) + Math.abs(bias[i]) + F32_TINY;
    }
  }
  return { value, scale };
}

/** y (rows, dim) = x/√(mean(x²) + eps)·g. */
export function rmsNorm(x: Arr, rows: number, dim: number, g: Arr, eps: number): Ref {
  const value = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += x[r * dim + i] ** 2;
    const inv = 1 / Math.sqrt(sum / dim + eps);
    for (let i = 0; i < dim; i++) value[r * dim + i] = x[r * dim + i] * inv * g[i];
  }
  return relative(value);
}

/** y (S, H, D): rotate-half RoPE, row s at position offset + s. Scale: |x_i cos| + |x_{i±D/2} sin|. */
export function rope(x: Arr, seq: number, heads: number, d: number, theta: number, offset: number): Ref {
  const value = new Float64Array(seq * heads * d);
  const scale = new Float64Array(value.length);
  const half = d / 2;
  for (let s = 0; s < seq; s++) {
    for (let h = 0; h < heads; h++) {
      const base = (s * heads + h) * d;
      for (let i = 0; i < half; i++) {
        const angle = (offset + s) * theta ** (-2 * i / d);
        const [c, sn] = [Math.cos(angle), Math.sin(angle)];
        const [a, b] = [x[base + i], x[base + i + half]];
        value[base + i] = a * c - b * sn;
        value[base + i + half] = b * c + a * sn;
        scale[base + i] = scale[base + i + half] = Math.abs(a * c) + Math.abs(b * sn) + Math.abs(b * c) +
          Math.abs(a * sn) + F32_TINY;
      }
    }
  }
  return { value, scale };
}

/** y (rows, n) = softmax over the last axis of scale·x. Relative per element. */
export function softmax(x: Arr, rows: number, n: number, scale = 1): Ref {
  const value = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, scale * x[r * n + i]);
    let total = 0;
    for (let i = 0; i < n; i++) total += value[r * n + i] = Math.exp(scale * x[r * n + i] - max);
    for (let i = 0; i < n; i++) value[r * n + i] /= total;
  }
  return relative(value);
}

/** erf by its Maclaurin series (|z| ≤ 3) or the asymptotic continued fraction, in float64. */
export function erf(z: number): number {
  if (Math.abs(z) > 3) return Math.sign(z) * (1 - erfcTail(Math.abs(z)));
  let term = z;
  let sum = z;
  for (let n = 1; n < 200 && Math.abs(term) > 1e-18 * Math.abs(sum); n++) {
    term *= -z * z / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

function erfcTail(z: number): number {
  // Lentz's algorithm for erfc(z) = e^{−z²}/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + …)))).
  let f = z;
  let c = z;
  let dd = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    dd = 1 / (z + a * dd);
    c = z + a / c;
    const delta = c * dd;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-z * z) / (Math.sqrt(Math.PI) * f);
}

/** Φ(x), with the tail through erfc so that it stays relatively exact for x ≪ 0. */
function normalCdf(x: number): number {
  const z = x / Math.SQRT2;
  return z < -3 ? 0.5 * erfcTail(-z) : 0.5 * (1 + erf(z));
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Element-wise activations (any shape). */
export const activations = {
  gelu: (x: number) => x * normalCdf(x),
  quickGelu: (x: number) => x * sigmoid(1.702 * x),
  silu: (x: number) => x * sigmoid(x),
  geluTanh: (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
} as const;

export function activate(kind: keyof typeof activations, x: Arr): Ref {
  return relative(Float64Array.from(x, activations[kind]));
}

/** silu(gate)·up (any shape). */
export function siluMul(gate: Arr, up: Arr): Ref {
  return relative(Float64Array.from(gate, (g, i) => activations.silu(g) * up[i]));
}

/** a ∘ b with b (a trailing part of a's shape, `bLength` values) repeated. Scale: |a| + |b| or |a·b|. */
export function binary(a: Arr, b: Arr, op: "add" | "mul"): Ref {
  const value = new Float64Array(a.length);
  const scale = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const bi = b[i % b.length];
    value[i] = op === "add" ? a[i] + bi : a[i] * bi;
    scale[i] = (op === "add" ? Math.abs(a[i]) + Math.abs(bi) : Math.abs(a[i] * bi)) + F32_TINY;
  }
  return { value, scale };
}

/** y = factor·x (any shape). */
export function scale(x: Arr, factor: number): Ref {
  return relative(Float64Array.from(x, (v) => v * factor));
}

/** y (outer, inner) = mean over n of x (outer, n, inner). Scale: Σ|x|/n. */
export function mean(x: Arr, outer: number, n: number, inner: number): Ref {
  const value = new Float64Array(outer * inner);
  const scale = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let sum = 0;
      let mag = 0;
      for (let t = 0; t < n; t++) {
        sum += x[(o * n + t) * inner + i];
        mag += Math.abs(x[(o * n + t) * inner + i]);
      }
      value[o * inner + i] = sum / n;
      scale[o * inner + i] = mag / n + F32_TINY;
    }
  }
  return { value, scale };
}

/** y (n, dim) = table rows. Exact. */
export function embedding(table: Arr, dim: number, ids: ArrayLike<number>): Ref {
  const value = new Float64Array(ids.length * dim);
  for (let r = 0; r < ids.length; r++) for (let i = 0; i < dim; i++) value[r * dim + i] = table[ids[r] * dim + i];
  return relative(value);
}

/** Conv2d kernel = stride = p, no bias: pixels (N, C, H, W), weight (Dout, C, p, p) → (N, (H/p)(W/p), Dout). */
export function patchEmbed(
  pixels: Arr,
  n: number,
  c: number,
  height: number,
  width: number,
  weight: Arr,
  dout: number,
  p: number,
): Ref {
  const [gh, gw] = [Math.floor(height / p), Math.floor(width / p)];
  const value = new Float64Array(n * gh * gw * dout);
  const scale = new Float64Array(value.length);
  for (let img = 0; img < n; img++) {
    for (let py = 0; py < gh; py++) {
      for (let px = 0; px < gw; px++) {
        for (let o = 0; o < dout; o++) {
          let sum = 0;
          let mag = 0;
          for (let ch = 0; ch < c; ch++) {
            for (let y = 0; y < p; y++) {
              for (let x = 0; x < p; x++) {
                const term = pixels[((img * c + ch) * height + py * p + y) * width + px * p + x] *
                  weight[((o * c + ch) * p + y) * p + x];
                sum += term;
                mag += Math.abs(term);
              }
            }
          }
          const at = ((img * gh + py) * gw + px) * dout + o;
          value[at] = sum;
          scale[at] = mag + F32_TINY;
        }
      }
    }
  }
  return { value, scale };
}

/**
 * PGP step E: x (T, H, W, C), p (T, H, W) or null → (Ot, Oh, Ow, C), O = floor((I − k)/s) + 1, weights
 * α = softmax over the window of p/τ. Scale: Σ α·|x|.
 */
export function windowPool(
  x: Arr,
  p: Arr | null,
  dims: [number, number, number, number],
  kernel: readonly number[],
  stride: readonly number[],
  tau: number,
): Ref {
  const [t, h, w, c] = dims;
  const o = [t, h, w].map((d, a) => Math.floor((d - kernel[a]) / stride[a]) + 1);
  const value = new Float64Array(o[0] * o[1] * o[2] * c);
  const scale = new Float64Array(value.length);
  for (let i = 0; i < o[0]; i++) {
    for (let j = 0; j < o[1]; j++) {
      for (let l = 0; l < o[2]; l++) {
        const cells: number[] = [];
        for (let dt = 0; dt < kernel[0]; dt++) {
          for (let dh = 0; dh < kernel[1]; dh++) {
            for (let dw = 0; dw < kernel[2]; dw++) {
              cells.push(((stride[0] * i + dt) * h + stride[1] * j + dh) * w + stride[2] * l + dw);
            }
          }
        }
        const logits = cells.map((n) => (p ? p[n] / tau : 0));
        const max = Math.max(...logits);
        const e = logits.map((v) => Math.exp(v - max));
        const total = e.reduce((a, b) => a + b, 0);
        const base = ((i * o[1] + j) * o[2] + l) * c;
        for (let ch = 0; ch < c; ch++) {
          let sum = 0;
          let mag = 0;
          cells.forEach((n, q) => {
            sum += (e[q] / total) * x[n * c + ch];
            mag += (e[q] / total) * Math.abs(x[n * c + ch]);
          });
          value[base + ch] = sum;
          scale[base + ch] = mag + F32_TINY;
        }
      }
    }
  }
  return { value, scale };
}
