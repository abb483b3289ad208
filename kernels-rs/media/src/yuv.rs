//! 8-bit planar YUV (4:2:0, 4:2:2, 4:4:4) to packed RGB24, bit-exact with FFmpeg's swscale.
//!
//! The oracle we match is swscale's *full chroma interpolation* output path (`yuv2rgb_full_*` in swscale's
//! output.c), selected with `-sws_flags neighbor+full_chroma_int+accurate_rnd+bitexact`. Checked against
//! ffmpeg 5.1 (tests/media_pixels.test.ts) for every matrix × range × subsampling: identical on every pixel, with
//! one documented exception below. What that path computes, reproduced here in integers:
//!
//! - Coefficients as `ff_yuv2rgb_c_init_tables` derives them from `ff_yuv2rgb_coeffs` (16.16 fixed point, the
//!   limited-range 255/224 chroma gain already folded in): limited range scales luma by 255/219 and offsets 16;
//!   full range scales the chroma coefficients by 224/255 (C integer division, truncating toward zero). Each is
//!   then rounded to a 13-bit-fraction integer (`(c·8192 + 2^15) >> 16`).
//! - Per pixel, with Y, U, V lifted to 9 fractional bits:
//!   `R = ((Y<<9) − yo)·yc + 2^21 + ((V−128)<<9)·v2r`, likewise G and B, then `clip(R, 0, 2^30−1) >> 22`.
//! - Chroma is upsampled by replication: luma pixel (x, y) takes chroma sample (x >> sx, y >> sy). That is what
//!   `neighbor` gives for even sizes. For odd sizes swscale stretches the ceil(w/2) chroma samples over w luma
//!   pixels (a 19→37 resample, so the chroma drifts by up to half a sample); we keep the exact replication that the
//!   subsampling defines, and the tests build their odd-size oracle by padding to even size and cropping.
//!
//! The exception: swscale adds the terms in 32-bit unsigned arithmetic and reads the sum as a signed int, so for
//! out-of-gamut limited-range input (Y ≳ 235 with U ≳ 250, a colour no encoder emits from RGB) the blue sum passes
//! 2^31, wraps negative and swscale writes B = 0. We saturate to 255 instead; the tests count those pixels.
//!
//! ffmpeg's *default* conversion (`-pix_fmt rgb24` with no flags) takes swscale's table-driven fast path for
//! 4:2:0/4:2:2, which quantises the chroma terms to table steps and differs from this by up to 3 per channel;
//! 4:4:4 goes through the same full path as here and matches exactly.
//!
//! Default when a stream declares nothing: BT.601, limited range (as ffmpeg).

use crate::MediaError;

/// The YUV→RGB colour matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matrix {
    Bt601,
    Bt709,
}

/// Limited ("TV", Y in 16..235, chroma 16..240) or full ("PC", 0..255) range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    Limited,
    Full,
}

/// Chroma subsampling of the planar input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subsampling {
    /// Chroma is ceil(w/2) × ceil(h/2).
    S420,
    /// Chroma is ceil(w/2) × h.
    S422,
    /// Chroma is w × h.
    S444,
}

impl Subsampling {
    /// (horizontal shift, vertical shift) from luma to chroma coordinates.
    fn shifts(self) -> (u32, u32) {
        match self {
            Subsampling::S420 => (1, 1),
            Subsampling::S422 => (1, 0),
            Subsampling::S444 => (0, 0),
        }
    }

    /// Chroma plane size (width, height) for a luma plane of `width` × `height`.
    pub fn chroma_size(self, width: usize, height: usize) -> (usize, usize) {
        let (sx, sy) = self.shifts();
        // ceil(n / 2^s) without the overflow of n + 2^s − 1.
        let up = |n: usize, s: u32| (n >> s) + (n & ((1 << s) - 1) != 0) as usize;
        (up(width, sx), up(height, sy))
    }
}

/// Borrowed planes of one 8-bit frame. Rows start every `*_stride` bytes; the last row may be just `width` long.
pub struct YuvPlanes<'a> {
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub y_stride: usize,
    pub uv_stride: usize,
    pub subsampling: Subsampling,
}

/// swscale's `yuv2rgb_*` coefficients: 13 fractional bits, luma offset with 9 fractional bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coefficients {
    pub y_coeff: i64,
    pub y_offset: i64,
    pub v2r: i64,
    pub v2g: i64,
    pub u2g: i64,
    pub u2b: i64,
}

/// swscale's `roundToInt16`: 16.16 → integer, rounding half up, saturating to i16.
fn round_to_i16(f: i64) -> i64 {
    ((f + (1 << 15)) >> 16).max(-0x7fff).min(0x7fff)
}

/// The integer coefficients swscale derives for `matrix` and `range` (brightness 0, contrast and saturation 1).
pub fn coefficients(matrix: Matrix, range: Range) -> Coefficients {
    // ff_yuv2rgb_coeffs: (crv, cbu, cgu, cgv) in 16.16, limited-range chroma gain 255/224 included.
    let table: [i64; 4] = match matrix {
        Matrix::Bt601 => [104597, 132201, 25675, 53279],
        Matrix::Bt709 => [117489, 138438, 13975, 34925],
    };
    let (mut crv, mut cbu, mut cgu, mut cgv) = (table[0], table[1], -table[2], -table[3]);
    let (mut cy, mut oy) = (1i64 << 16, 0i64);
    match range {
        Range::Limited => {
            cy = cy * 255 / 219;
            oy = 16 << 16;
        }
        Range::Full => {
            // Rust's `/` truncates toward zero like C's, which matters for the negative green terms.
            crv = crv * 224 / 255;
            cbu = cbu * 224 / 255;
            cgu = cgu * 224 / 255;
            cgv = cgv * 224 / 255;
        }
    }
    Coefficients {
        y_coeff: round_to_i16(cy << 13),
        y_offset: round_to_i16(oy << 9),
        v2r: round_to_i16(crv << 13),
        v2g: round_to_i16(cgv << 13),
        u2g: round_to_i16(cgu << 13),
        u2b: round_to_i16(cbu << 13),
    }
}

/// The terms of swscale's sums divided by 2^9, per 8-bit code value.
struct Tables {
    luma: [i32; 256],
    r_v: [i32; 256],
    g_u: [i32; 256],
    g_v: [i32; 256],
    b_u: [i32; 256],
}

impl Tables {
    fn new(c: &Coefficients) -> Tables {
        let mut t = Tables { luma: [0; 256], r_v: [0; 256], g_u: [0; 256], g_v: [0; 256], b_u: [0; 256] };
        for i in 0..256 {
            let s = i as i64;
            // ((s<<9) − y_offset)·y_coeff + 2^21, over 2^9 (y_offset is 16<<9 or 0).
            t.luma[i] = ((s - (c.y_offset >> 9)) * c.y_coeff + (1 << 12)) as i32;
            let d = s - 128;
            t.r_v[i] = (d * c.v2r) as i32;
            t.g_u[i] = (d * c.u2g) as i32;
            t.g_v[i] = (d * c.v2g) as i32;
            t.b_u[i] = (d * c.u2b) as i32;
        }
        t
    }
}

/// `clip(sum·2^9, 0, 2^30 − 1) >> 22` of swscale, on the divided sum.
#[inline(always)]
fn pack(sum: i32) -> u8 {
    (sum >> 13).max(0).min(255) as u8
}

/// Pixels `from..` of one row with the per-code tables.
fn row_scalar(y_row: &[u8], u_row: &[u8], v_row: &[u8], sx: u32, t: &Tables, from: usize, out_row: &mut [u8]) {
    for x in from..y_row.len() {
        let (u, v) = (u_row[x >> sx] as usize, v_row[x >> sx] as usize);
        let base = t.luma[y_row[x] as usize];
        let px = &mut out_row[x * 3..x * 3 + 3];
        px[0] = pack(base + t.r_v[v]);
        px[1] = pack(base + t.g_u[u] + t.g_v[v]);
        px[2] = pack(base + t.b_u[u]);
    }
}

/// The whole 16-pixel groups of a row with WebAssembly SIMD (same i32 arithmetic as the tables); returns how many
/// pixels it did, the rest being left to `row_scalar`. Without SIMD in the build it does none.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn rows_simd(_: &[u8], _: &[u8], _: &[u8], _: u32, _: &Coefficients, _: &mut [u8]) -> usize {
    0
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn rows_simd(y_row: &[u8], u_row: &[u8], v_row: &[u8], sx: u32, c: &Coefficients, out_row: &mut [u8]) -> usize {
    use core::arch::wasm32::*;
    let w = y_row.len();
    let splat = |v: i64| i32x4_splat(v as i32);
    let (y_off, y_coeff, round, mid) = (splat(c.y_offset >> 9), splat(c.y_coeff), splat(1 << 12), splat(128));
    let (v2r, u2g, v2g, u2b) = (splat(c.v2r), splat(c.u2g), splat(c.v2g), splat(c.u2b));
    let widen = |v: v128| -> [v128; 4] {
        let (lo, hi) = (u16x8_extend_low_u8x16(v), u16x8_extend_high_u8x16(v));
        [u32x4_extend_low_u16x8(lo), u32x4_extend_high_u16x8(lo), u32x4_extend_low_u16x8(hi), u32x4_extend_high_u16x8(hi)]
    };
    // >> 13, then saturating narrows i32→i16→u8 = `pack`'s clamp to 0..=255.
    let pack16 = |a: [v128; 4]| -> v128 {
        let lo = i16x8_narrow_i32x4(i32x4_shr(a[0], 13), i32x4_shr(a[1], 13));
        let hi = i16x8_narrow_i32x4(i32x4_shr(a[2], 13), i32x4_shr(a[3], 13));
        u8x16_narrow_i16x8(lo, hi)
    };
    let mut x = 0;
    while x + 16 <= w {
        // SAFETY: x + 16 <= w = y_row.len(); chroma: x/2 + 8 <= ceil(w/2) = u_row.len() for 4:2:x, x + 16 <= w =
        // u_row.len() for 4:4:4 (v_row likewise); out: x·3 + 48 <= w·3 = out_row.len(). No alignment needed.
        unsafe {
            let ys = widen(v128_load(y_row.as_ptr().add(x) as *const v128));
            let (u, v) = if sx == 1 {
                let u = v128_load64_zero(u_row.as_ptr().add(x / 2) as *const u64);
                let v = v128_load64_zero(v_row.as_ptr().add(x / 2) as *const u64);
                // Each chroma sample serves two pixels.
                (
                    i8x16_shuffle::<0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7>(u, u),
                    i8x16_shuffle::<0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7>(v, v),
                )
            } else {
                (v128_load(u_row.as_ptr().add(x) as *const v128), v128_load(v_row.as_ptr().add(x) as *const v128))
            };
            let (us, vs) = (widen(u), widen(v));
            let (mut r, mut g, mut b) = ([ys[0]; 4], [ys[0]; 4], [ys[0]; 4]);
            for q in 0..4 {
                let luma = i32x4_add(i32x4_mul(i32x4_sub(ys[q], y_off), y_coeff), round);
                let (du, dv) = (i32x4_sub(us[q], mid), i32x4_sub(vs[q], mid));
                r[q] = i32x4_add(luma, i32x4_mul(dv, v2r));
                g[q] = i32x4_add(i32x4_add(luma, i32x4_mul(du, u2g)), i32x4_mul(dv, v2g));
                b[q] = i32x4_add(luma, i32x4_mul(du, u2b));
            }
            let (r, g, b) = (pack16(r), pack16(g), pack16(b));
            // Interleave 16 R, G, B bytes into 48 bytes of RGB24: each output vector takes R and G first, then B.
            let o0 = i8x16_shuffle::<0, 1, 16, 3, 4, 17, 6, 7, 18, 9, 10, 19, 12, 13, 20, 15>(
                i8x16_shuffle::<0, 16, 0, 1, 17, 0, 2, 18, 0, 3, 19, 0, 4, 20, 0, 5>(r, g),
                b,
            );
            let o1 = i8x16_shuffle::<0, 21, 2, 3, 22, 5, 6, 23, 8, 9, 24, 11, 12, 25, 14, 15>(
                i8x16_shuffle::<21, 0, 6, 22, 0, 7, 23, 0, 8, 24, 0, 9, 25, 0, 10, 26>(r, g),
                b,
            );
            let o2 = i8x16_shuffle::<26, 1, 2, 27, 4, 5, 28, 7, 8, 29, 10, 11, 30, 13, 14, 31>(
                i8x16_shuffle::<0, 11, 27, 0, 12, 28, 0, 13, 29, 0, 14, 30, 0, 15, 31, 0>(r, g),
                b,
            );
            let dst = out_row.as_mut_ptr().add(x * 3);
            v128_store(dst as *mut v128, o0);
            v128_store(dst.add(16) as *mut v128, o1);
            v128_store(dst.add(32) as *mut v128, o2);
        }
        x += 16;
    }
    x
}

fn bad(message: String) -> MediaError {
    MediaError::BadArgument(message)
}

/// Bytes a plane of `rows` rows of `row_len` bytes every `stride` bytes needs (the last row need not be padded).
fn plane_len(name: &str, row_len: usize, rows: usize, stride: usize) -> Result<usize, MediaError> {
    if stride < row_len {
        return Err(bad(format!("yuv: {} stride {} is less than its row length {}", name, stride, row_len)));
    }
    (rows - 1)
        .checked_mul(stride)
        .and_then(|n| n.checked_add(row_len))
        .ok_or_else(|| bad(format!("yuv: {} plane size overflows", name)))
}

/// Converts `planes` to RGB24 in `out` (exactly width·height·3 bytes). Every length is checked first; a size
/// mismatch is a `MediaError::BadArgument` naming the plane, never a panic. Uses WebAssembly SIMD when the build
/// has it (same bytes as the scalar loop).
pub fn yuv_to_rgb(planes: &YuvPlanes, matrix: Matrix, range: Range, out: &mut [u8]) -> Result<(), MediaError> {
    convert(planes, matrix, range, out, cfg!(all(target_arch = "wasm32", target_feature = "simd128")))
}

/// `yuv_to_rgb` with the scalar loop only: the reference the SIMD path is tested against.
pub fn yuv_to_rgb_scalar(planes: &YuvPlanes, matrix: Matrix, range: Range, out: &mut [u8]) -> Result<(), MediaError> {
    convert(planes, matrix, range, out, false)
}

fn convert(planes: &YuvPlanes, matrix: Matrix, range: Range, out: &mut [u8], simd: bool) -> Result<(), MediaError> {
    let (w, h) = (planes.width, planes.height);
    if w == 0 || h == 0 {
        return Err(bad(format!("yuv: frame size {}x{} must be at least 1x1", w, h)));
    }
    let (cw, ch) = planes.subsampling.chroma_size(w, h);
    let need_y = plane_len("Y", w, h, planes.y_stride)?;
    let need_uv = plane_len("chroma", cw, ch, planes.uv_stride)?;
    for (name, len, need) in [("Y", planes.y.len(), need_y), ("U", planes.u.len(), need_uv), ("V", planes.v.len(), need_uv)] {
        if len < need {
            return Err(bad(format!("yuv: {} plane has {} bytes, a {}x{} {:?} frame needs {}", name, len, w, h, planes.subsampling, need)));
        }
    }
    let need_out = w.checked_mul(h).and_then(|n| n.checked_mul(3)).ok_or_else(|| bad("yuv: output size overflows".into()))?;
    if out.len() != need_out {
        return Err(bad(format!("yuv: output has {} bytes, expected width*height*3 = {}", out.len(), need_out)));
    }

    let c = coefficients(matrix, range);
    let (sx, sy) = planes.subsampling.shifts();
    // swscale's sums carry 9 more fractional bits than they need: every term is a multiple of 2^9 (the luma offset
    // 16<<9 included), so dividing them all by 2^9 leaves `clip(sum, 0, 2^30−1) >> 22` = `clamp(sum' >> 13, 0, 255)`
    // exactly, with sums that fit i32 (|sum'| < 2^23). Per-code-value tables of the four terms.
    let tables = Tables::new(&c);

    for row in 0..h {
        let y_row = &planes.y[row * planes.y_stride..row * planes.y_stride + w];
        let c_off = (row >> sy) * planes.uv_stride;
        let u_row = &planes.u[c_off..c_off + cw];
        let v_row = &planes.v[c_off..c_off + cw];
        let out_row = &mut out[row * w * 3..(row + 1) * w * 3];
        let done = if simd { rows_simd(y_row, u_row, v_row, sx, &c, out_row) } else { 0 };
        row_scalar(y_row, u_row, v_row, sx, &tables, done, out_row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planes<'a>(y: &'a [u8], u: &'a [u8], v: &'a [u8], w: usize, h: usize, s: Subsampling) -> YuvPlanes<'a> {
        let (cw, _) = s.chroma_size(w, h);
        YuvPlanes { y, u, v, width: w, height: h, y_stride: w, uv_stride: cw, subsampling: s }
    }

    #[test]
    fn coefficients_match_swscale() {
        let c = coefficients(Matrix::Bt601, Range::Limited);
        assert_eq!((c.y_coeff, c.y_offset, c.v2r, c.v2g, c.u2g, c.u2b), (9539, 8192, 13075, -6660, -3209, 16525));
    }

    #[test]
    fn grey_and_primaries() {
        let mut out = [0u8; 3];
        let p = planes(&[235], &[128], &[128], 1, 1, Subsampling::S444);
        yuv_to_rgb(&p, Matrix::Bt601, Range::Limited, &mut out).unwrap();
        assert_eq!(out, [255, 255, 255]);
        let p = planes(&[16], &[128], &[128], 1, 1, Subsampling::S420);
        yuv_to_rgb(&p, Matrix::Bt709, Range::Limited, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0]);
        let p = planes(&[128], &[128], &[128], 1, 1, Subsampling::S422);
        yuv_to_rgb(&p, Matrix::Bt709, Range::Full, &mut out).unwrap();
        assert_eq!(out, [128, 128, 128]);
    }

    #[test]
    fn chroma_replication_odd_size() {
        // 3x3 4:2:0: chroma 2x2; pixel (2, 2) takes chroma (1, 1).
        let y = [128u8; 9];
        let u = [128u8, 128, 128, 255];
        let v = [128u8; 4];
        let mut out = [0u8; 27];
        yuv_to_rgb(&planes(&y, &u, &v, 3, 3, Subsampling::S420), Matrix::Bt601, Range::Full, &mut out).unwrap();
        assert_eq!(&out[0..3], &[128, 128, 128]);
        assert!(out[26] > 200, "blue from the (1,1) chroma sample");
        assert_eq!(&out[21..24], &[128, 128, 128], "pixel (1, 2) uses chroma (0, 1)");
    }

    #[test]
    fn lengths_are_checked() {
        let mut out = [0u8; 12];
        let y = [0u8; 4];
        let c = [0u8; 1];
        assert!(yuv_to_rgb(&planes(&y, &c, &c, 2, 2, Subsampling::S420), Matrix::Bt601, Range::Limited, &mut out).is_ok());
        assert!(yuv_to_rgb(&planes(&y[..3], &c, &c, 2, 2, Subsampling::S420), Matrix::Bt601, Range::Limited, &mut out).is_err());
        assert!(yuv_to_rgb(&planes(&y, &c, &c, 2, 2, Subsampling::S422), Matrix::Bt601, Range::Limited, &mut out).is_err());
        assert!(yuv_to_rgb(&planes(&y, &c, &c, 2, 2, Subsampling::S420), Matrix::Bt601, Range::Limited, &mut out[..11]).is_err());
        assert!(yuv_to_rgb(&planes(&y, &c, &c, 0, 2, Subsampling::S420), Matrix::Bt601, Range::Limited, &mut []).is_err());
        let mut p = planes(&y, &c, &c, 2, 2, Subsampling::S420);
        p.y_stride = 1;
        assert!(yuv_to_rgb(&p, Matrix::Bt601, Range::Limited, &mut out).is_err());
        p.y_stride = usize::MAX;
        assert!(yuv_to_rgb(&p, Matrix::Bt601, Range::Limited, &mut out).is_err());
        let mut huge = planes(&y, &c, &c, 2, 2, Subsampling::S420);
        huge.width = usize::MAX;
        huge.height = usize::MAX;
        huge.y_stride = usize::MAX;
        huge.uv_stride = usize::MAX;
        assert!(yuv_to_rgb(&huge, Matrix::Bt601, Range::Limited, &mut out).is_err());
        assert_eq!(Subsampling::S420.chroma_size(usize::MAX, 5), (usize::MAX / 2 + 1, 3));
    }

    #[test]
    fn random_arguments_give_errors_or_output_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % m as u64) as usize
        };
        let data = vec![100u8; 4096];
        for _ in 0..3000 {
            let subsampling = [Subsampling::S420, Subsampling::S422, Subsampling::S444][next(3)];
            let (w, h) = (next(40), next(40));
            let p = YuvPlanes {
                y: &data[..next(2048)],
                u: &data[..next(1024)],
                v: &data[..next(1024)],
                width: w,
                height: h,
                y_stride: [w, w + next(5), next(64), usize::MAX][next(4)],
                uv_stride: [w / 2 + next(3), w, next(64), usize::MAX][next(4)],
                subsampling,
            };
            let mut out = vec![0u8; if next(4) == 0 { next(5000) } else { w * h * 3 }];
            let _ = yuv_to_rgb(&p, Matrix::Bt709, Range::Full, &mut out);
        }
    }
}
