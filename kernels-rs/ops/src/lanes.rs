//! The vector primitives the kernels are built from, behind one small trait with a scalar twin.

/// Rows × columns of the matmul register tile (see `gemm.rs`): MR rows of the packed A panel times NR columns of
/// the packed B panel are accumulated in registers (4×8 f32 = eight 128-bit accumulators).
pub const MR: usize = 4;
pub const NR: usize = 8;

/// Primitives over f32 slices. Implementations must agree with `Scalar` up to summation order.
pub trait Lanes {
    /// Σ a[i]·b[i] over the shorter of the two slices. Products and sum are in f64: the product of two f32 is exact
    /// in f64, so the only error left is the f64 summation (~1e-16 relative), whatever the length.
    fn dot_f64(a: &[f32], b: &[f32]) -> f64;
    /// Σ a[i] in f64.
    fn sum_f64(a: &[f32]) -> f64;
    /// x[i] = exp(x[i] − shift) for x[i] − shift ≤ 0 (softmax), Cephes' expf: n = ⌊(x)·log₂e + ½⌋, a degree-5
    /// polynomial on the remainder, 2ⁿ by exponent bits; ≤ 2 ulp, and 0 below −87.3 (where f32 goes subnormal).
    fn exp_shifted(x: &mut [f32], shift: f32);
    /// Σ a[i]·b[i] over the shorter slice, in f32 (eight interleaved partial sums; the matrix–vector product).
    fn dot_f32(a: &[f32], b: &[f32]) -> f32;
    /// Σ a[i]·w[r·rs + i] for the eight rows r < 8 of w (row stride `rs`), i < a.len(): the matrix–vector product
    /// eight weight rows at a time (eight memory streams in flight reach more of the memory bandwidth than four,
    /// and a is loaded once per step for all of them). Per row: four interleaved partial sums (part[l] over
    /// i ≡ l mod 4), reduced as (part[0] + part[2]) + (part[1] + part[3]), then the tail in order.
    fn dot8_rows_f32(a: &[f32], w: &[f32], rs: usize) -> [f32; 8] {
        let mut out = [0.0f32; 8];
        for (r, o) in out.iter_mut().enumerate() {
            *o = row_dot(a, &w[r * rs..r * rs + a.len()]);
        }
        out
    }
    /// The 4×2 dot tile of x·Wᵀ for f32 W, x rows packed by `pack_quad`: out[2·i + r] = Σ x_i[t]·w[r·w_rs + t]
    /// over t < k, for x rows i < 4 and W rows r < 2, each sum with exactly `dot8_rows_f32`'s partial sums and
    /// reduction (so a prefill row equals the decode step's bits). Eight accumulators, and per step one packed x
    /// address (four vectors at constant offsets) and two W vectors.
    fn dot_tile_4x2_packed(xp: &[f32], w: &[f32], w_rs: usize, k: usize) -> [f32; 8] {
        let k4 = k - k % 4;
        let tail = k - k4;
        let mut out = [0.0f32; 8];
        for i in 0..4 {
            for r in 0..2 {
                let row = &w[r * w_rs..r * w_rs + k];
                let mut part = [0.0f32; 4];
                for t in 0..k4 {
                    part[t % 4] += xp[(t / 4) * 16 + i * 4 + t % 4] * row[t];
                }
                let mut sum = (part[0] + part[2]) + (part[1] + part[3]);
                for j in 0..tail {
                    sum += xp[4 * k4 + i * tail + j] * row[k4 + j];
                }
                out[2 * i + r] = sum;
            }
        }
        out
    }
    /// The first two rows of `dot8_rows_f32` (the leftover rows of the decode and prefill paths).
    fn dot8_rows_pair(a: &[f32], w: &[f32], rs: usize) -> [f32; 2] {
        [row_dot(a, &w[..a.len()]), row_dot(a, &w[rs..rs + a.len()])]
    }
    /// `dot_f32` against bfloat16 bits, widened in registers (same sums and rounding as widening first).
    fn dot_bf16(a: &[f32], b: &[u16]) -> f32;
    /// y[i] += alpha · x[i] over the shorter of the two slices.
    fn axpy(alpha: f32, x: &[f32], y: &mut [f32]);
    /// out[i] = (x[i] − shift) · scale · gain[i] + bias[i] (the affine tail of LayerNorm; RMSNorm passes shift 0
    /// and a zero bias). All slices have the length of `out`.
    fn normalize(x: &[f32], shift: f32, scale: f32, gain: &[f32], bias: &[f32], out: &mut [f32]);
    /// out[i] = a[i] + b[i].
    fn add(a: &[f32], b: &[f32], out: &mut [f32]);
    /// out[i] = a[i] · b[i].
    fn mul(a: &[f32], b: &[f32], out: &mut [f32]);
    /// The register tile of the matmul: acc[r·NR + c] = Σ_k a[k·MR + r] · b[k·NR + c] for k < kc, over packed
    /// panels (a: kc×MR, b: kc×NR). Sums in f32, in k order.
    fn gemm_tile(kc: usize, a: &[f32], b: &[f32], acc: &mut [f32; MR * NR]);
    /// Packs NR rows of w (row r at w[r·rs..], kc values each) k-major: out[kk·NR + r] = w[r·rs + kk] (the B panel
    /// of x·Wᵀ). A copy, so every implementation gives the same bits.
    fn pack_rows(w: &[f32], rs: usize, kc: usize, out: &mut [f32]) {
        for r in 0..NR {
            for (kk, &v) in w[r * rs..][..kc].iter().enumerate() {
                out[kk * NR + r] = v;
            }
        }
    }

    /// (Σ a[i]·b[i], Σ a[i]²) in one pass over `a`, with `b` already widened to f64 (exactly as `dot_f64` would).
    fn dot_and_square_f64(a: &[f32], b: &[f64]) -> (f64, f64);
}

/// Packs four rows of x (row i at x[i·rs..], k values) for `dot_tile_4x2_packed`: four values of each row per
/// group of four k, rows in order (xp[16·g + 4·i + l] = x_i[4·g + l]), then the k mod 4 tail values row by row.
pub fn pack_quad(x: &[f32], rs: usize, k: usize, xp: &mut [f32]) {
    let k4 = k - k % 4;
    let tail = k - k4;
    for i in 0..4 {
        let row = &x[i * rs..i * rs + k];
        for g in 0..k4 / 4 {
            xp[16 * g + 4 * i..16 * g + 4 * i + 4].copy_from_slice(&row[4 * g..4 * g + 4]);
        }
        xp[4 * k4 + i * tail..4 * k4 + (i + 1) * tail].copy_from_slice(&row[k4..]);
    }
}

pub(crate) const EXP_LOG2E: f32 = 1.442_695_04;
pub(crate) const EXP_C1: f32 = 0.693_359_375;
pub(crate) const EXP_C2: f32 = -2.121_944_4e-4;
pub(crate) const EXP_MIN: f32 = -87.3;
pub(crate) const EXP_P: [f32; 6] = [1.987_569_15e-4, 1.398_199_95e-3, 8.333_451_9e-3, 4.166_579_6e-2, 1.666_666_55e-1, 5.000_000_1e-1];

/// Cephes' expf for t ≤ 0, in exactly the operations of the SIMD version (no FMA), so both give the same bits.
pub fn exp_cephes(t: f32) -> f32 {
    if !(t >= EXP_MIN) {
        return if t.is_nan() { t } else { 0.0 };
    }
    let k = (t * EXP_LOG2E + 0.5).floor();
    let r = (t - k * EXP_C1) - k * EXP_C2;
    let mut q = EXP_P[0];
    for c in EXP_P.iter().skip(1) {
        q = q * r + *c;
    }
    let e = (q * (r * r) + r) + 1.0;
    e * f32::from_bits(((k as i32 + 127) as u32) << 23)
}

/// Plain loops; the reference the SIMD path is tested against.
pub struct Scalar;

impl Lanes for Scalar {
    fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
        let n = a.len().min(b.len());
        let mut sum = 0.0f64;
        for i in 0..n {
            sum += a[i] as f64 * b[i] as f64;
        }
        sum
    }

    fn dot_and_square_f64(a: &[f32], b: &[f64]) -> (f64, f64) {
        let n = a.len().min(b.len());
        let (mut dot, mut square) = (0.0f64, 0.0f64);
        for i in 0..n {
            let x = a[i] as f64;
            dot += x * b[i];
            square += x * x;
        }
        (dot, square)
    }

    fn sum_f64(a: &[f32]) -> f64 {
        a.iter().map(|&x| x as f64).sum()
    }

    fn exp_shifted(x: &mut [f32], shift: f32) {
        for v in x.iter_mut() {
            *v = exp_cephes(*v - shift);
        }
    }

    fn dot_bf16(a: &[f32], b: &[u16]) -> f32 {
        let n = a.len().min(b.len());
        let mut widened = [0.0f32; 256];
        let mut i = 0;
        let mut sum_parts = [0.0f32; 8];
        // Same partial sums as dot_f32 over the widened values: widen in chunks, accumulate into the eight parts.
        while i < n - n % 8 {
            let chunk = (n - n % 8 - i).min(256);
            for j in 0..chunk {
                widened[j] = f32::from_bits((b[i + j] as u32) << 16);
            }
            let mut k = 0;
            while k < chunk {
                for l in 0..8 {
                    sum_parts[l] += a[i + k + l] * widened[k + l];
                }
                k += 8;
            }
            i += chunk;
        }
        let p = sum_parts;
        let mut sum = ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
        while i < n {
            sum += a[i] * f32::from_bits((b[i] as u32) << 16);
            i += 1;
        }
        sum
    }

    fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        // The same eight partial sums as the SIMD version, so both round alike.
        let n = a.len().min(b.len());
        let n8 = n - n % 8;
        let mut part = [0.0f32; 8];
        let mut i = 0;
        while i < n8 {
            for l in 0..8 {
                part[l] += a[i + l] * b[i + l];
            }
            i += 8;
        }
        let mut sum = ((part[0] + part[4]) + (part[2] + part[6])) + ((part[1] + part[5]) + (part[3] + part[7]));
        while i < n {
            sum += a[i] * b[i];
            i += 1;
        }
        sum
    }

    fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x.iter()) {
            *y += alpha * x;
        }
    }

    fn normalize(x: &[f32], shift: f32, scale: f32, gain: &[f32], bias: &[f32], out: &mut [f32]) {
        for i in 0..out.len() {
            out[i] = (x[i] - shift) * scale * gain[i] + bias[i];
        }
    }

    fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
        for i in 0..out.len() {
            out[i] = a[i] + b[i];
        }
    }

    fn mul(a: &[f32], b: &[f32], out: &mut [f32]) {
        for i in 0..out.len() {
            out[i] = a[i] * b[i];
        }
    }

    fn gemm_tile(kc: usize, a: &[f32], b: &[f32], acc: &mut [f32; MR * NR]) {
        *acc = [0.0; MR * NR];
        for k in 0..kc {
            let (ak, bk) = (&a[k * MR..k * MR + MR], &b[k * NR..k * NR + NR]);
            for r in 0..MR {
                for c in 0..NR {
                    acc[r * NR + c] += ak[r] * bk[c];
                }
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use crate::simd128::Simd128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_dot_is_exact_for_small_integers() {
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..37).map(|i| (i % 5) as f32 - 2.0).collect();
        let expected: i64 = (0..37).map(|i| i as i64 * ((i % 5) as i64 - 2)).sum();
        assert_eq!(Scalar::dot_f64(&a, &b), expected as f64);
    }

    #[test]
    fn cephes_exp_is_within_two_ulp() {
        let mut t = -87.0f32;
        while t <= 0.0 {
            let exact = (t as f64).exp();
            let got = exp_cephes(t) as f64;
            assert!((got - exact).abs() <= 2.5e-7 * exact, "exp({t}) = {got}, exact {exact}");
            t += 0.0137;
        }
        assert_eq!(exp_cephes(0.0), 1.0);
        assert_eq!(exp_cephes(-100.0), 0.0);
    }

    #[test]
    fn packed_dot_tile_has_the_bits_of_the_row_dots() {
        // Every k tail (k mod 4 = 0..3), rows with a stride wider than k: the packed quad is a relayout only.
        for &k in &[1usize, 6, 37, 70, 131] {
            let (a_rs, w_rs) = (k + 3, k + 5);
            let a: Vec<f32> = (0..4 * a_rs).map(|i| ((i * 7919) % 101) as f32 / 37.0 - 1.3).collect();
            let w: Vec<f32> = (0..2 * w_rs).map(|i| ((i * 104729) % 97) as f32 / 41.0 - 1.1).collect();
            let mut xp = vec![0.0f32; 4 * k];
            pack_quad(&a, a_rs, k, &mut xp);
            let tile = Scalar::dot_tile_4x2_packed(&xp, &w, w_rs, k);
            for i in 0..4 {
                let rows = Scalar::dot8_rows_pair(&a[i * a_rs..i * a_rs + k], &w, w_rs);
                assert_eq!([tile[2 * i], tile[2 * i + 1]], rows, "k {} row {}", k, i);
            }
        }
    }

    #[test]
    fn scalar_gemm_tile_is_a_small_matmul() {
        let kc = 3;
        let a: Vec<f32> = (0..kc * MR).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..kc * NR).map(|i| (i % 7) as f32 - 3.0).collect();
        let mut acc = [0.0f32; MR * NR];
        Scalar::gemm_tile(kc, &a, &b, &mut acc);
        for r in 0..MR {
            for c in 0..NR {
                let expected: f32 = (0..kc).map(|k| a[k * MR + r] * b[k * NR + c]).sum();
                assert_eq!(acc[r * NR + c], expected);
            }
        }
    }
}

/// One row of `Lanes::dot8_rows_f32` in plain code: four interleaved partial sums (part[l] over i ≡ l mod 4),
/// reduced as (part[0] + part[2]) + (part[1] + part[3]), then the tail in order.
fn row_dot(a: &[f32], row: &[f32]) -> f32 {
    let k = a.len();
    let k4 = k - k % 4;
    let mut part = [0.0f32; 4];
    for i in 0..k4 {
        part[i % 4] += a[i] * row[i];
    }
    let mut sum = (part[0] + part[2]) + (part[1] + part[3]);
    for i in k4..k {
        sum += a[i] * row[i];
    }
    sum
}
