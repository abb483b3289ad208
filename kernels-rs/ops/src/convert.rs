//! Weight element types: f32, and IEEE half (f16) and bfloat16 stored as u16 bits, widened to f32 exactly.
//!
//! Both conversions are exact (every f16 and bf16 value is an f32 value), so a kernel that widens weights while
//! packing them computes the same thing as one that was handed f32 weights.

/// An element a weight matrix may be stored in. `to_f32` is exact.
pub trait Element: Copy {
    fn to_f32(self) -> f32;
    /// ⟨x, w⟩ in f32 with `Lanes::dot_f32`'s rounding; `scratch` (≥ w.len()) holds widened values when needed.
    fn dot<L: crate::lanes::Lanes>(x: &[f32], w: &[Self], scratch: &mut [f32]) -> f32 {
        Self::widen(w, scratch);
        L::dot_f32(x, &scratch[..w.len()])
    }
    /// The slice itself when it already is f32 (so readers can skip the widening copy).
    fn as_f32(_values: &[Self]) -> Option<&[f32]> {
        None
    }
    /// out[i] = values[i].to_f32() over the shorter of the two (exact, so any implementation gives the same bits).
    fn widen(values: &[Self], out: &mut [f32]) {
        for (d, s) in out.iter_mut().zip(values.iter()) {
            *d = s.to_f32();
        }
    }
}

impl Element for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }

    fn as_f32(values: &[f32]) -> Option<&[f32]> {
        Some(values)
    }

    fn dot<L: crate::lanes::Lanes>(x: &[f32], w: &[f32], _scratch: &mut [f32]) -> f32 {
        L::dot_f32(x, w)
    }
}

/// IEEE 754 binary16 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct F16(pub u16);

/// bfloat16 bits (the top half of an f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct Bf16(pub u16);

impl Element for Bf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from_bits((self.0 as u32) << 16)
    }

    fn dot<L: crate::lanes::Lanes>(x: &[f32], w: &[Bf16], _scratch: &mut [f32]) -> f32 {
        // SAFETY: Bf16 is a transparent u16.
        let bits = unsafe { core::slice::from_raw_parts(w.as_ptr() as *const u16, w.len()) };
        L::dot_bf16(x, bits)
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn widen(values: &[Bf16], out: &mut [f32]) {
        use core::arch::wasm32::*;
        let n = values.len().min(out.len());
        let n8 = n - n % 8;
        let mut i = 0;
        while i < n8 {
            // SAFETY: i + 8 <= n8 <= len of both slices; Bf16 is a transparent u16.
            unsafe {
                let v = v128_load(values.as_ptr().add(i) as *const v128);
                let low = i32x4_shl(u32x4_extend_low_u16x8(v), 16);
                let high = i32x4_shl(u32x4_extend_high_u16x8(v), 16);
                v128_store(out.as_mut_ptr().add(i) as *mut v128, low);
                v128_store(out.as_mut_ptr().add(i + 4) as *mut v128, high);
            }
            i += 8;
        }
        while i < n {
            out[i] = values[i].to_f32();
            i += 1;
        }
    }
}

impl Element for F16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16_to_f32(self.0)
    }
}

/// binary16 → binary32: sign, 5-bit exponent (bias 15), 10-bit mantissa; subnormals renormalised, Inf/NaN kept.
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits & 0x8000) as u32) << 16;
    let exponent = ((bits >> 10) & 0x1f) as u32;
    let mantissa = (bits & 0x3ff) as u32;
    let out = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m · 2^-24; shift the leading one into the implicit position.
            let shift = m.leading_zeros() - 21; // m < 2^10, so leading_zeros ≥ 22
            let m = (m << shift) & 0x3ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (m << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_values_widen_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
    }

    #[test]
    fn bf16_is_the_top_half() {
        assert_eq!(Bf16(0x3f80).to_f32(), 1.0);
        assert_eq!(Bf16(0xc0a0).to_f32(), -5.0);
    }
}
