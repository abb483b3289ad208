/**
 * The group-wise q8/q4 format of docs/quantization.md written from the document, in plain TypeScript: the
 * quantiser in the exact f32 operations the format prescribes (so its bytes must equal the kernel's), the
 * dequantiser, and a float64 x · Ŵᵀ + bias with the error bounds of the two product methods.
 */
export const GROUP = 32;
export type QuantFormat = "q8" | "q4";

const f = Math.fround;
/** Round half away from zero (Rust's f32::round). */
const roundAway = (v: number) => Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

export function groupsOf(k: number): number {
  return Math.ceil(k / GROUP);
}

/** Codes plane then f32 scales plane (little-endian), for w (n, k) row-major. */
export function quantizeReference(format: QuantFormat, w: ArrayLike<number>, n: number, k: number): Uint8Array {
  const g = groupsOf(k);
  const cb = format === "q8" ? GROUP : GROUP / 2;
  const out = new Uint8Array(n * g * (cb + 4));
  const scales = new DataView(out.buffer, n * g * cb);
  for (let r = 0; r < n; r++) {
    for (let gi = 0; gi < g; gi++) {
      const values = new Float64Array(GROUP);
      for (let j = 0; j < GROUP && gi * GROUP + j < k; j++) values[j] = f(w[r * k + gi * GROUP + j]);
      // m: the value of largest magnitude (the first one on ties).
      let m = 0;
      for (const v of values) if (Math.abs(v) > Math.abs(m)) m = v;
      const base = (r * g + gi) * cb;
      if (format === "q8") {
        const d = f(Math.abs(m) / 127);
        const inv = d > 0 ? f(1 / d) : 0;
        for (let j = 0; j < GROUP; j++) out[base + j] = clamp(roundAway(f(values[j] * inv)), -127, 127) & 0xff;
        scales.setFloat32((r * g + gi) * 4, d, true);
      } else {
        const d = f(m / -8);
        const inv = d !== 0 ? f(1 / d) : 0;
        const code = (j: number) => clamp(roundAway(f(values[j] * inv)), -8, 7) + 8;
        for (let j = 0; j < GROUP / 2; j++) out[base + j] = code(j) | (code(j + GROUP / 2) << 4);
        scales.setFloat32((r * g + gi) * 4, d, true);
      }
    }
  }
  return out;
}

/** Ŵ (n, k) as float64 from the stored bytes. */
export function dequantizeReference(format: QuantFormat, bytes: Uint8Array, n: number, k: number): Float64Array {
  const g = groupsOf(k);
  const cb = format === "q8" ? GROUP : GROUP / 2;
  const scales = new DataView(bytes.buffer, bytes.byteOffset + n * g * cb);
  const out = new Float64Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let t = 0; t < k; t++) {
      const gi = Math.floor(t / GROUP), j = t % GROUP;
      const base = (r * g + gi) * cb;
      let q: number;
      if (format === "q8") q = (bytes[base + j] << 24) >> 24;
      else q = (j < GROUP / 2 ? bytes[base + j] & 15 : bytes[base + j - GROUP / 2] >> 4) - 8;
      out[r * k + t] = q * scales.getFloat32((r * g + gi) * 4, true);
    }
  }
  return out;
}

/**
 * y = x · Ŵᵀ + bias in float64, with the bound each method must meet:
 * - "f32": f32 summation only, (K + 2)·ε·Σ|x·ŵ|;
 * - "int8": plus the activation rounding, Σ_t (absmax of t's group / 254)·|ŵ_t|, since each x is replaced by the
 *   nearest multiple of absmax/127.
 */
export function linearReference(
  x: ArrayLike<number>,
  m: number,
  k: number,
  wd: Float64Array,
  n: number,
  bias: ArrayLike<number> | undefined,
  method: "int8" | "f32",
): { y: Float64Array; bound: Float64Array } {
  const y = new Float64Array(m * n);
  const bound = new Float64Array(m * n);
  const eps = 2 ** -23;
  for (let i = 0; i < m; i++) {
    const absmax = new Float64Array(groupsOf(k));
    for (let t = 0; t < k; t++) {
      absmax[Math.floor(t / GROUP)] = Math.max(absmax[Math.floor(t / GROUP)], Math.abs(x[i * k + t]));
    }
    for (let j = 0; j < n; j++) {
      let sum = bias ? bias[j] : 0, magnitude = Math.abs(sum), act = 0;
      for (let t = 0; t < k; t++) {
        const p = x[i * k + t] * wd[j * k + t];
        sum += p;
        magnitude += Math.abs(p);
        act += absmax[Math.floor(t / GROUP)] / 254 * (1 + 1e-6) * Math.abs(wd[j * k + t]);
      }
      y[i * n + j] = sum;
      const rounding = (k + 2) * eps * (magnitude + act);
      bound[i * n + j] = method === "int8" ? act + rounding : rounding;
    }
  }
  return { y, bound };
}
