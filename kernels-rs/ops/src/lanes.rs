//! The vector primitives the kernels are built from, behind one small trait with a scalar twin.

/// Primitives over f32 slices. Implementations must agree with `Scalar` up to summation order.
pub trait Lanes {
    /// Σ a[i]·b[i] over the shorter of the two slices. Products and sum are in f64: the product of two f32 is exact
    /// in f64, so the only error left is the f64 summation (~1e-16 relative), whatever the length.
    fn dot_f64(a: &[f32], b: &[f32]) -> f64;

    /// (Σ a[i]·b[i], Σ a[i]²) in one pass over `a`, with `b` already widened to f64 (exactly as `dot_f64` would).
    fn dot_and_square_f64(a: &[f32], b: &[f64]) -> (f64, f64);
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
}

/// WebAssembly SIMD (128-bit): four f32 lanes widened into two f64x2 accumulators.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub struct Simd128;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Lanes for Simd128 {
    fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
        use core::arch::wasm32::*;
        let n = a.len().min(b.len());
        let n4 = n - n % 4;
        let mut low = f64x2_splat(0.0);
        let mut high = f64x2_splat(0.0);
        let mut i = 0;
        while i < n4 {
            // SAFETY: i + 4 <= n4 <= len of both slices; v128_load has no alignment requirement.
            let (va, vb) = unsafe {
                (v128_load(a.as_ptr().add(i) as *const v128), v128_load(b.as_ptr().add(i) as *const v128))
            };
            low = f64x2_add(low, f64x2_mul(f64x2_promote_low_f32x4(va), f64x2_promote_low_f32x4(vb)));
            let (va_hi, vb_hi) = (i64x2_shuffle::<1, 0>(va, va), i64x2_shuffle::<1, 0>(vb, vb));
            high = f64x2_add(high, f64x2_mul(f64x2_promote_low_f32x4(va_hi), f64x2_promote_low_f32x4(vb_hi)));
            i += 4;
        }
        let both = f64x2_add(low, high);
        let mut sum = f64x2_extract_lane::<0>(both) + f64x2_extract_lane::<1>(both);
        while i < n {
            sum += a[i] as f64 * b[i] as f64;
            i += 1;
        }
        sum
    }

    fn dot_and_square_f64(a: &[f32], b: &[f64]) -> (f64, f64) {
        use core::arch::wasm32::*;
        let n = a.len().min(b.len());
        let n4 = n - n % 4;
        let (mut dot_low, mut dot_high) = (f64x2_splat(0.0), f64x2_splat(0.0));
        let (mut sq_low, mut sq_high) = (f64x2_splat(0.0), f64x2_splat(0.0));
        let mut i = 0;
        while i < n4 {
            // SAFETY: i + 4 <= n4 <= len of both slices; v128_load has no alignment requirement.
            let (va, b_low, b_high) = unsafe {
                (
                    v128_load(a.as_ptr().add(i) as *const v128),
                    v128_load(b.as_ptr().add(i) as *const v128),
                    v128_load(b.as_ptr().add(i + 2) as *const v128),
                )
            };
            let a_low = f64x2_promote_low_f32x4(va);
            let a_high = f64x2_promote_low_f32x4(i64x2_shuffle::<1, 0>(va, va));
            dot_low = f64x2_add(dot_low, f64x2_mul(a_low, b_low));
            dot_high = f64x2_add(dot_high, f64x2_mul(a_high, b_high));
            sq_low = f64x2_add(sq_low, f64x2_mul(a_low, a_low));
            sq_high = f64x2_add(sq_high, f64x2_mul(a_high, a_high));
            i += 4;
        }
        let dot_v = f64x2_add(dot_low, dot_high);
        let sq_v = f64x2_add(sq_low, sq_high);
        let mut dot = f64x2_extract_lane::<0>(dot_v) + f64x2_extract_lane::<1>(dot_v);
        let mut square = f64x2_extract_lane::<0>(sq_v) + f64x2_extract_lane::<1>(sq_v);
        while i < n {
            let x = a[i] as f64;
            dot += x * b[i];
            square += x * x;
            i += 1;
        }
        (dot, square)
    }
}

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
}
