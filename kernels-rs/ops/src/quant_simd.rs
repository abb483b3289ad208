//! WebAssembly SIMD (128-bit) twin of `quant::ScalarQuant`: the group's codes are widened to i16x8 in registers,
//! then either dotted with int8 activations by `i32x4.dot_i16x8` (Int8) or widened on to f32 and multiplied with x
//! (F32). Compiled only for wasm32 with `+simd128`.

use crate::quant::{Format, QuantDot, GROUP};
use core::arch::wasm32::*;

pub struct Simd128Quant;

/// The 32 codes of group `gi` as four i16x8 (elements 0–7, 8–15, 16–23, 24–31).
///
/// # Safety
/// `codes` must hold the group's bytes (checked by the callers' group count).
#[inline(always)]
unsafe fn group_i16<const Q4: bool>(codes: *const u8, gi: usize) -> [v128; 4] {
    if Q4 {
        let v = v128_load(codes.add(gi * GROUP / 2) as *const v128);
        let eight = i8x16_splat(8);
        let low = i8x16_sub(v128_and(v, i8x16_splat(15)), eight);
        let high = i8x16_sub(u8x16_shr(v, 4), eight);
        [i16x8_extend_low_i8x16(low), i16x8_extend_high_i8x16(low), i16x8_extend_low_i8x16(high), i16x8_extend_high_i8x16(high)]
    } else {
        let a = v128_load(codes.add(gi * GROUP) as *const v128);
        let b = v128_load(codes.add(gi * GROUP + 16) as *const v128);
        [i16x8_extend_low_i8x16(a), i16x8_extend_high_i8x16(a), i16x8_extend_low_i8x16(b), i16x8_extend_high_i8x16(b)]
    }
}

#[inline(always)]
fn horizontal(v: v128) -> f32 {
    (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<2>(v)) + (f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<3>(v))
}

fn dot_int8_impl<const Q4: bool>(qx: &[i16], dx: &[f32], codes: &[u8], dw: &[f32]) -> f32 {
    let cb = if Q4 { GROUP / 2 } else { GROUP };
    let g = dw.len().min(dx.len()).min(qx.len() / GROUP).min(codes.len() / cb);
    let mut acc = f32x4_splat(0.0);
    for gi in 0..g {
        // SAFETY: gi < g, so the group's 32 i16 of qx and its code bytes lie inside the slices.
        unsafe {
            let w = group_i16::<Q4>(codes.as_ptr(), gi);
            let xp = qx.as_ptr().add(gi * GROUP) as *const v128;
            let s01 = i32x4_add(i32x4_dot_i16x8(v128_load(xp), w[0]), i32x4_dot_i16x8(v128_load(xp.add(1)), w[1]));
            let s23 = i32x4_add(i32x4_dot_i16x8(v128_load(xp.add(2)), w[2]), i32x4_dot_i16x8(v128_load(xp.add(3)), w[3]));
            let d = f32x4_splat(*dx.get_unchecked(gi) * *dw.get_unchecked(gi));
            acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(i32x4_add(s01, s23)), d));
        }
    }
    horizontal(acc)
}

fn dot_f32_impl<const Q4: bool>(x: &[f32], codes: &[u8], dw: &[f32]) -> f32 {
    let cb = if Q4 { GROUP / 2 } else { GROUP };
    let g = dw.len().min(x.len() / GROUP).min(codes.len() / cb);
    let mut acc = f32x4_splat(0.0);
    for gi in 0..g {
        // SAFETY: gi < g, so the group's 32 f32 of x and its code bytes lie inside the slices.
        unsafe {
            let w = group_i16::<Q4>(codes.as_ptr(), gi);
            let xp = x.as_ptr().add(gi * GROUP) as *const v128;
            let mut part0 = f32x4_splat(0.0);
            let mut part1 = f32x4_splat(0.0);
            for (h, &wh) in w.iter().enumerate() {
                let low = f32x4_convert_i32x4(i32x4_extend_low_i16x8(wh));
                let high = f32x4_convert_i32x4(i32x4_extend_high_i16x8(wh));
                part0 = f32x4_add(part0, f32x4_mul(v128_load(xp.add(2 * h)), low));
                part1 = f32x4_add(part1, f32x4_mul(v128_load(xp.add(2 * h + 1)), high));
            }
            acc = f32x4_add(acc, f32x4_mul(f32x4_add(part0, part1), f32x4_splat(*dw.get_unchecked(gi))));
        }
    }
    horizontal(acc)
}

impl QuantDot for Simd128Quant {
    fn dot_int8(format: Format, qx: &[i16], dx: &[f32], codes: &[u8], dw: &[f32]) -> f32 {
        match format {
            Format::Q8 => dot_int8_impl::<false>(qx, dx, codes, dw),
            Format::Q4 => dot_int8_impl::<true>(qx, dx, codes, dw),
        }
    }

    fn dot_f32(format: Format, x: &[f32], codes: &[u8], dw: &[f32]) -> f32 {
        match format {
            Format::Q8 => dot_f32_impl::<false>(x, codes, dw),
            Format::Q4 => dot_f32_impl::<true>(x, codes, dw),
        }
    }
}
