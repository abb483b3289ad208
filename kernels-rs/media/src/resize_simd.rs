//! The WebAssembly SIMD twin of `resize::Scalar` (compiled only with `+simd128`): the same wrapping i32
//! arithmetic, so the same bytes, which tests/media_pixels.test.ts checks against Pillow for both.

use super::{clip8, AxisFilter, ResampleRows, PRECISION_BITS, ROUNDING};
use core::arch::wasm32::*;

/// WebAssembly SIMD, same integers as `Scalar` (wrapping i32 lanes), so the same bytes.
/// - Horizontal: each source row is first split (shuffles) into R, G, B planes, so a pixel's taps are contiguous
///   per channel; 8 taps at a time are one widening load and two `i32x4.dot_i16x8` against the high and low
///   halves of the weights (the 22-bit weights do not fit i16 whole). The three channel sums are reduced together
///   and four pixels are packed to bytes at once.
/// - Vertical: 16 bytes of a row at a time, 4 × i32x4 accumulators.
pub struct Simd128;

impl ResampleRows for Simd128 {
    fn horizontal(src: &[u8], width: usize, first: usize, rows: usize, filter: &AxisFilter, dst: &mut [u8]) {
        let out_width = filter.start.len();
        // Weights per window, zero-padded to `stride` (a multiple of 8) and split as k = hi·2^11 + lo with
        // lo in 0..2048, so both halves fit i16 and i32x4.dot_i16x8 (8 multiply-adds) can take them. The split is
        // exact: Σ p·k = 2^11·Σ p·hi + Σ p·lo in wrapping i32, as in `Scalar`.
        let stride = (filter.ksize + 7) & !7;
        let mut high = vec![0i16; out_width * stride];
        let mut low = vec![0i16; out_width * stride];
        for o in 0..out_width {
            let (_, w) = filter.taps(o);
            for (i, &k) in w.iter().enumerate() {
                high[o * stride + i] = (k >> 11) as i16;
                low[o * stride + i] = (k & 0x7ff) as i16;
            }
        }
        let plane_len = width + stride;
        let mut planes = vec![0u8; plane_len * 3];
        for r in 0..rows {
            let src_row = &src[(first + r) * width * 3..(first + r + 1) * width * 3];
            {
                let (red, rest) = planes.split_at_mut(plane_len);
                let (green, blue) = rest.split_at_mut(plane_len);
                let vectored = width / 8 * 8;
                for x in (0..vectored).step_by(8) {
                    // 8 pixels = 24 bytes as two overlapping 16-byte loads (bytes 0..16 and 8..24 of the group).
                    // SAFETY: x·3 + 24 <= width·3 = src_row.len(); x + 8 <= width <= each plane's length.
                    unsafe {
                        let a = v128_load(src_row.as_ptr().add(x * 3) as *const v128);
                        let b = v128_load(src_row.as_ptr().add(x * 3 + 8) as *const v128);
                        let r = i8x16_shuffle::<0, 3, 6, 9, 12, 15, 26, 29, 0, 0, 0, 0, 0, 0, 0, 0>(a, b);
                        let g = i8x16_shuffle::<1, 4, 7, 10, 13, 24, 27, 30, 0, 0, 0, 0, 0, 0, 0, 0>(a, b);
                        let bl = i8x16_shuffle::<2, 5, 8, 11, 14, 25, 28, 31, 0, 0, 0, 0, 0, 0, 0, 0>(a, b);
                        v128_store64_lane::<0>(r, red.as_mut_ptr().add(x) as *mut u64);
                        v128_store64_lane::<0>(g, green.as_mut_ptr().add(x) as *mut u64);
                        v128_store64_lane::<0>(bl, blue.as_mut_ptr().add(x) as *mut u64);
                    }
                }
                for x in vectored..width {
                    red[x] = src_row[x * 3];
                    green[x] = src_row[x * 3 + 1];
                    blue[x] = src_row[x * 3 + 2];
                }
            }
            let out_row = &mut dst[r * out_width * 3..(r + 1) * out_width * 3];
            let base = planes.as_ptr();
            // The fixed-point sums [R, G, B, 0] (rounding included) of output pixel `o`.
            let sum_at = |o: usize| -> v128 {
                let start = filter.start[o];
                let taps = (filter.len[o] + 7) & !7;
                let zero = i32x4_splat(0);
                let (mut rh, mut rl, mut gh, mut gl, mut bh, mut bl) = (zero, zero, zero, zero, zero, zero);
                let (wh, wl) = (high[o * stride..].as_ptr(), low[o * stride..].as_ptr());
                let mut i = 0;
                while i < taps {
                    // SAFETY: start + i + 8 <= start + stride <= width + stride = plane_len (start < width,
                    // taps <= stride), and o·stride + i + 8 <= (o + 1)·stride <= high.len() = low.len().
                    unsafe {
                        let (kh, kl) = (v128_load(wh.add(i) as *const v128), v128_load(wl.add(i) as *const v128));
                        let at = start + i;
                        let r = u16x8_load_extend_u8x8(base.add(at));
                        let g = u16x8_load_extend_u8x8(base.add(plane_len + at));
                        let b = u16x8_load_extend_u8x8(base.add(2 * plane_len + at));
                        rh = i32x4_add(rh, i32x4_dot_i16x8(r, kh));
                        rl = i32x4_add(rl, i32x4_dot_i16x8(r, kl));
                        gh = i32x4_add(gh, i32x4_dot_i16x8(g, kh));
                        gl = i32x4_add(gl, i32x4_dot_i16x8(g, kl));
                        bh = i32x4_add(bh, i32x4_dot_i16x8(b, kh));
                        bl = i32x4_add(bl, i32x4_dot_i16x8(b, kl));
                    }
                    i += 8;
                }
                let red = i32x4_add(i32x4_shl(rh, 11), rl);
                let green = i32x4_add(i32x4_shl(gh, 11), gl);
                let blue = i32x4_add(i32x4_shl(bh, 11), bl);
                // Lane sums: pairwise folds of (R, G) and (B, 0), then of the two results.
                let rg = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(red, green), i32x4_shuffle::<2, 6, 3, 7>(red, green));
                let b0 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(blue, zero), i32x4_shuffle::<2, 6, 3, 7>(blue, zero));
                let sum = i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(rg, b0), i32x4_shuffle::<2, 3, 6, 7>(rg, b0));
                i32x4_add(sum, i32x4_splat(ROUNDING))
            };
            // Four pixels per pack: 16 bytes [R G B 0]×4 → 12 bytes of RGB24.
            let mut o = 0;
            while o + 4 <= out_width {
                let bytes = pack_bytes(sum_at(o), sum_at(o + 1), sum_at(o + 2), sum_at(o + 3));
                let rgb = i8x16_shuffle::<0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 0, 0, 0, 0>(bytes, bytes);
                let dst = out_row[o * 3..o * 3 + 12].as_mut_ptr();
                // SAFETY: the 12 bytes were bounds-checked by the slice above.
                unsafe {
                    v128_store64_lane::<0>(rgb, dst as *mut u64);
                    v128_store32_lane::<2>(rgb, dst.add(8) as *mut u32);
                }
                o += 4;
            }
            while o < out_width {
                let sum = sum_at(o);
                let word = u32x4_extract_lane::<0>(pack_bytes(sum, sum, sum, sum)).to_le_bytes();
                out_row[o * 3..o * 3 + 3].copy_from_slice(&word[..3]);
                o += 1;
            }
        }
    }

    fn vertical(rows: &[u8], row_bytes: usize, start: usize, weights: &[i32], dst: &mut [u8]) {
        let base = &rows[start * row_bytes..(start + weights.len()) * row_bytes];
        let full = row_bytes - row_bytes % 16;
        let mut j = 0;
        while j < full {
            let (mut a0, mut a1, mut a2, mut a3) =
                (i32x4_splat(ROUNDING), i32x4_splat(ROUNDING), i32x4_splat(ROUNDING), i32x4_splat(ROUNDING));
            for (k, &w) in weights.iter().enumerate() {
                // SAFETY: k·row_bytes + j + 16 <= k·row_bytes + row_bytes <= base.len().
                let v = unsafe { v128_load(base.as_ptr().add(k * row_bytes + j) as *const v128) };
                let (lo, hi) = (u16x8_extend_low_u8x16(v), u16x8_extend_high_u8x16(v));
                let kw = i32x4_splat(w);
                a0 = i32x4_add(a0, i32x4_mul(u32x4_extend_low_u16x8(lo), kw));
                a1 = i32x4_add(a1, i32x4_mul(u32x4_extend_high_u16x8(lo), kw));
                a2 = i32x4_add(a2, i32x4_mul(u32x4_extend_low_u16x8(hi), kw));
                a3 = i32x4_add(a3, i32x4_mul(u32x4_extend_high_u16x8(hi), kw));
            }
            let bytes = pack_bytes(a0, a1, a2, a3);
            // SAFETY: j + 16 <= full <= row_bytes <= dst.len() (checked by the caller's slicing).
            unsafe { v128_store(dst[j..j + 16].as_mut_ptr() as *mut v128, bytes) };
            j += 16;
        }
        for jj in full..row_bytes {
            let mut sum = ROUNDING;
            for (k, &w) in weights.iter().enumerate() {
                sum = sum.wrapping_add((base[k * row_bytes + jj] as i32).wrapping_mul(w));
            }
            dst[jj] = clip8(sum);
        }
    }
}

/// Four i32x4 fixed-point sums → 16 bytes: `>> 22`, then saturating narrows i32→i16→u8, which is exactly
/// `clip8` (anything below 0 becomes 0, above 255 becomes 255).
#[inline(always)]
fn pack_bytes(a0: v128, a1: v128, a2: v128, a3: v128) -> v128 {
    let s = PRECISION_BITS;
    let lo = i16x8_narrow_i32x4(i32x4_shr(a0, s), i32x4_shr(a1, s));
    let hi = i16x8_narrow_i32x4(i32x4_shr(a2, s), i32x4_shr(a3, s));
    u8x16_narrow_i16x8(lo, hi)
}

