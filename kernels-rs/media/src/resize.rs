//! RGB24 resize that reproduces Pillow's `Image.resize(size, Image.BICUBIC)` (libImaging `ImagingResample`) byte
//! for byte, with a WebAssembly SIMD path and its scalar twin (identical integer results).
//!
//! What Pillow does, and so what this does (written from a reading of Resample.c, not copied):
//! - Separable: a horizontal pass over the source rows the vertical pass will read, rounded and clipped to u8, then a
//!   vertical pass over that intermediate. An axis whose size does not change is skipped (the filter would be the
//!   identity anyway).
//! - Per axis, output sample `o` is centred at `(o + 0.5)·scale` in input coordinates, `scale = in/out`. The filter
//!   is the cubic convolution kernel with a = −0.5 and support 2, widened by `max(scale, 1)` when downscaling (so it
//!   antialiases). The taps run over the input samples `[trunc(centre − support + 0.5), trunc(centre + support + 0.5))`
//!   clamped to the image, each weighted `filter((i − centre + 0.5) / max(scale, 1))`, all in f64, then divided by
//!   their sum.
//! - 8-bit images use fixed point: each weight becomes `trunc(w·2^22 ± 0.5)` (rounded half away from zero), a pixel
//!   is `2^21 + Σ src·weight` in 32-bit integers, and the output byte is that sum `>> 22` clamped to 0..=255.
//!
//! The f64 weight arithmetic is evaluated in the same order as Pillow's C (no fused multiply-add on either side), so
//! the integer weights, and with them every output byte, are identical. tests/media_pixels.test.ts checks this
//! against Pillow itself.

use crate::MediaError;

/// Fractional bits of Pillow's 8-bit fixed-point weights: 32 bits minus 8 for the value minus 2 for overflow.
pub const PRECISION_BITS: u32 = 22;
/// Half of one output step in fixed point: added before the final shift so the shift rounds to nearest.
pub(crate) const ROUNDING: i32 = 1 << (PRECISION_BITS - 1);
/// Largest side accepted (Pillow's f32 box coordinates are exact far beyond it; this bounds the filter tables,
/// which hold about 4·in + 5·out weights per axis).
pub const MAX_SIDE: usize = 1 << 16;
/// Largest intermediate (horizontal pass output) this will allocate, in bytes.
pub const MAX_INTERMEDIATE_BYTES: usize = 1 << 28;

/// Pillow's bicubic kernel (a = −0.5), evaluated exactly as in Resample.c.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = if x < 0.0 { -x } else { x };
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// The fixed-point filter of one axis: output sample `o` reads `len[o]` inputs from `start[o]`, with weights
/// `weights[o·ksize ..][.. len[o]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AxisFilter {
    pub ksize: usize,
    pub start: Vec<usize>,
    pub len: Vec<usize>,
    pub weights: Vec<i32>,
}

impl AxisFilter {
    /// The weights of output sample `o`.
    pub fn taps(&self, o: usize) -> (usize, &[i32]) {
        (self.start[o], &self.weights[o * self.ksize..o * self.ksize + self.len[o]])
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for resizing `in_size` samples to `out_size`.
pub fn axis_filter(in_size: usize, out_size: usize) -> AxisFilter {
    const SUPPORT: f64 = 2.0;
    // Pillow passes the box edges as f32; for sizes up to 2^24 the conversion is exact.
    let scale = (in_size as f32) as f64 / out_size as f64;
    let filterscale = if scale < 1.0 { 1.0 } else { scale };
    let support = SUPPORT * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let inv = 1.0 / filterscale;
    let mut start = Vec::with_capacity(out_size);
    let mut len = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut w = vec![0f64; ksize];
    for o in 0..out_size {
        let center = 0.0 + (o as f64 + 0.5) * scale;
        // `as i64` truncates toward zero like C's (int) cast.
        let lo = ((center - support + 0.5) as i64).max(0);
        let hi = ((center + support + 0.5) as i64).min(in_size as i64);
        let n = (hi - lo).max(0) as usize;
        let n = n.min(ksize);
        let mut sum = 0.0f64;
        for (i, wi) in w.iter_mut().enumerate().take(n) {
            let v = bicubic(((i as i64 + lo) as f64 - center + 0.5) * inv);
            *wi = v;
            sum += v;
        }
        let row = &mut weights[o * ksize..o * ksize + n];
        for (dst, &v) in row.iter_mut().zip(w.iter()) {
            let v = if sum != 0.0 { v / sum } else { v };
            let fixed = v * (1u32 << PRECISION_BITS) as f64;
            *dst = if v < 0.0 { (-0.5 + fixed) as i32 } else { (0.5 + fixed) as i32 };
        }
        start.push(lo as usize);
        len.push(n);
    }
    AxisFilter { ksize, start, len, weights }
}

/// Pillow's `clip8`: the rounded fixed-point sum back to a byte.
#[inline(always)]
pub(crate) fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).max(0).min(255) as u8
}

/// The two passes over rows of RGB24; `Scalar` is the reference, `Simd128` must give the same bytes.
pub trait ResampleRows {
    /// Horizontal pass of `rows` source rows from `first` (`src` is the whole `width`-pixel image) into `dst`
    /// (`rows` rows of `filter.start.len()` pixels).
    fn horizontal(src: &[u8], width: usize, first: usize, rows: usize, filter: &AxisFilter, dst: &mut [u8]);
    /// Output row = Σ_k weights[k] · rows[start + k], over rows of `row_bytes` bytes in `rows`.
    fn vertical(rows: &[u8], row_bytes: usize, start: usize, weights: &[i32], dst: &mut [u8]);
}

/// Plain loops.
pub struct Scalar;

impl ResampleRows for Scalar {
    fn horizontal(src: &[u8], width: usize, first: usize, rows: usize, filter: &AxisFilter, dst: &mut [u8]) {
        let row_out = filter.start.len() * 3;
        for r in 0..rows {
            let src_row = &src[(first + r) * width * 3..(first + r + 1) * width * 3];
            for (o, px) in dst[r * row_out..(r + 1) * row_out].chunks_exact_mut(3).enumerate() {
                let (start, weights) = filter.taps(o);
                let (mut red, mut green, mut blue) = (ROUNDING, ROUNDING, ROUNDING);
                for (p, &k) in src_row[start * 3..(start + weights.len()) * 3].chunks_exact(3).zip(weights) {
                    red = red.wrapping_add((p[0] as i32).wrapping_mul(k));
                    green = green.wrapping_add((p[1] as i32).wrapping_mul(k));
                    blue = blue.wrapping_add((p[2] as i32).wrapping_mul(k));
                }
                px[0] = clip8(red);
                px[1] = clip8(green);
                px[2] = clip8(blue);
            }
        }
    }

    fn vertical(rows: &[u8], row_bytes: usize, start: usize, weights: &[i32], dst: &mut [u8]) {
        let base = &rows[start * row_bytes..(start + weights.len()) * row_bytes];
        for (j, out) in dst.iter_mut().enumerate().take(row_bytes) {
            let mut sum = ROUNDING;
            for (k, &w) in weights.iter().enumerate() {
                sum = sum.wrapping_add((base[k * row_bytes + j] as i32).wrapping_mul(w));
            }
            *out = clip8(sum);
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[path = "resize_simd.rs"]
mod simd;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use simd::Simd128;

fn bad(message: String) -> MediaError {
    MediaError::BadArgument(message)
}

/// Checks a `width`×`height` RGB24 size and returns its byte count.
pub fn rgb_len(what: &str, width: usize, height: usize) -> Result<usize, MediaError> {
    if width == 0 || height == 0 {
        return Err(bad(format!("resize: {} size {}x{} must be at least 1x1", what, width, height)));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(MediaError::Limit(format!("resize: {} size {}x{} exceeds {} per side", what, width, height, MAX_SIDE)));
    }
    width.checked_mul(height).and_then(|n| n.checked_mul(3)).ok_or_else(|| MediaError::Limit(format!("resize: {} size {}x{} overflows", what, width, height)))
}

/// Resizes RGB24 `src` (`width`×`height`) into `dst` (`out_width`×`out_height`, exactly that many bytes ×3) with
/// Pillow's BICUBIC. Equal sizes copy.
pub fn resize_rgb<R: ResampleRows>(
    src: &[u8],
    width: usize,
    height: usize,
    dst: &mut [u8],
    out_width: usize,
    out_height: usize,
) -> Result<(), MediaError> {
    let in_len = rgb_len("input", width, height)?;
    let out_len = rgb_len("output", out_width, out_height)?;
    if src.len() != in_len {
        return Err(bad(format!("resize: input has {} bytes, {}x{} RGB24 needs {}", src.len(), width, height, in_len)));
    }
    if dst.len() != out_len {
        return Err(bad(format!("resize: output has {} bytes, {}x{} RGB24 needs {}", dst.len(), out_width, out_height, out_len)));
    }
    let need_horizontal = out_width != width;
    let need_vertical = out_height != height;
    if !need_horizontal && !need_vertical {
        dst.copy_from_slice(src);
        return Ok(());
    }
    let vertical = if need_vertical { Some(axis_filter(height, out_height)) } else { None };
    if !need_horizontal {
        let v = vertical.as_ref().expect("need_vertical");
        for o in 0..out_height {
            let (start, weights) = v.taps(o);
            R::vertical(src, width * 3, start, weights, &mut dst[o * width * 3..(o + 1) * width * 3]);
        }
        return Ok(());
    }
    // Only the source rows the vertical pass reads go through the horizontal pass (as in Pillow).
    let (first, last) = match &vertical {
        Some(v) => (v.start[0], v.start[out_height - 1] + v.len[out_height - 1]),
        None => (0, height),
    };
    let rows = last.saturating_sub(first);
    let row_out = out_width * 3;
    let tmp_len = rows.checked_mul(row_out).filter(|&n| n <= MAX_INTERMEDIATE_BYTES).ok_or_else(|| {
        MediaError::Limit(format!(
            "resize: {}x{} → {}x{} needs an intermediate of {} rows of {} bytes, over the {} byte cap",
            width, height, out_width, out_height, rows, row_out, MAX_INTERMEDIATE_BYTES
        ))
    })?;
    let horizontal = axis_filter(width, out_width);
    if need_vertical {
        let mut tmp = vec![0u8; tmp_len];
        R::horizontal(src, width, first, rows, &horizontal, &mut tmp);
        let v = vertical.as_ref().expect("need_vertical");
        for o in 0..out_height {
            let (start, weights) = v.taps(o);
            R::vertical(&tmp, row_out, start - first, weights, &mut dst[o * row_out..(o + 1) * row_out]);
        }
    } else {
        R::horizontal(src, width, first, rows, &horizontal, dst);
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for &(i, o) in &[(1280usize, 336usize), (7, 336), (336, 336), (1000, 1), (1, 50), (720, 336)] {
            let f = axis_filter(i, o);
            for k in 0..o {
                let s: i64 = f.taps(k).1.iter().map(|&w| w as i64).sum();
                assert!((s - (1 << 22)).abs() <= f.len[k] as i64, "{}→{} sample {}: {}", i, o, k, s);
            }
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let src = vec![77u8; 13 * 5 * 3];
        let mut dst = vec![0u8; 336 * 336 * 3];
        resize_rgb::<Scalar>(&src, 13, 5, &mut dst, 336, 336).unwrap();
        assert!(dst.iter().all(|&v| v == 77));
    }

    #[test]
    fn sizes_are_checked() {
        let src = vec![0u8; 12];
        let mut dst = vec![0u8; 27];
        assert!(resize_rgb::<Scalar>(&src, 2, 2, &mut dst, 3, 3).is_ok());
        assert!(resize_rgb::<Scalar>(&src, 2, 3, &mut dst, 3, 3).is_err());
        assert!(resize_rgb::<Scalar>(&src, 2, 2, &mut dst, 3, 2).is_err());
        assert!(resize_rgb::<Scalar>(&src, 0, 2, &mut dst, 3, 3).is_err());
        assert!(matches!(resize_rgb::<Scalar>(&src, usize::MAX, 1, &mut dst, 3, 3), Err(MediaError::Limit(_))));
        // 1×65536 → 65536×1 would need a 65536×65536 intermediate: refused before allocating.
        let tall = vec![0u8; 65536 * 3];
        let mut wide = vec![0u8; 65536 * 3];
        assert!(matches!(resize_rgb::<Scalar>(&tall, 1, 65536, &mut wide, 65536, 1), Err(MediaError::Limit(_))));
    }

    #[test]
    fn random_sizes_match_their_lengths_or_fail_cleanly() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |m: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % m as u64) as usize
        };
        let src = vec![200u8; 3 * 64 * 64];
        for _ in 0..400 {
            let (w, h, ow, oh) = (next(64), next(64), next(90), next(90));
            let src_len = if next(5) == 0 { next(src.len()) } else { w * h * 3 };
            let mut dst = vec![0u8; if next(5) == 0 { next(30000) } else { ow * oh * 3 }];
            let result = resize_rgb::<Scalar>(&src[..src_len.min(src.len())], w, h, &mut dst, ow, oh);
            if result.is_ok() {
                assert!(dst.iter().all(|&v| v == 200), "{}x{} → {}x{}", w, h, ow, oh);
            }
        }
    }
}
