//! Exports of the pixel paths (`media::yuv`, `media::resize`, `media::preprocess`): YUV→RGB, the Pillow-exact
//! BICUBIC resize and the PPLLaVA / Qwen frame preprocessing.

use crate::abi::{slice, slice_mut, STATUS_BAD_ARGUMENT, STATUS_INVALID_DATA, STATUS_LIMIT, STATUS_OK, STATUS_UNSUPPORTED};
use media::yuv::{Matrix, Range, Subsampling, YuvPlanes};
use media::preprocess::{canvas, preprocess_frame, Variant};
use media::resize::resize_rgb;
use media::MediaError;

/// Status code of a media result.
fn media_status(result: Result<(), MediaError>) -> i32 {
    match result {
        Ok(()) => STATUS_OK,
        Err(MediaError::BadArgument(_)) => STATUS_BAD_ARGUMENT,
        Err(MediaError::InvalidData(_)) => STATUS_INVALID_DATA,
        Err(MediaError::Limit(_)) => STATUS_LIMIT,
        Err(MediaError::Unsupported(_)) => STATUS_UNSUPPORTED,
    }
}

/// Planar 8-bit YUV → RGB24. subsampling: 0 = 4:2:0, 1 = 4:2:2, 2 = 4:4:4; matrix: 0 = BT.601, 1 = BT.709;
/// range: 0 = limited, 1 = full. Each plane pointer comes with its length in bytes; `out` must be width·height·3.
/// simd: 1 = the SIMD rows (when built with them), 0 = the scalar twin.
///
/// # Safety
/// Each pointer must come from `ppl_alloc` with at least the length passed beside it.
#[no_mangle]
pub unsafe extern "C" fn ppl_pixels_yuv_to_rgb(
    y: *const u8,
    y_len: usize,
    u: *const u8,
    u_len: usize,
    v: *const u8,
    v_len: usize,
    width: usize,
    height: usize,
    y_stride: usize,
    uv_stride: usize,
    subsampling: i32,
    matrix: i32,
    range: i32,
    out: *mut u8,
    out_len: usize,
    simd: i32,
) -> i32 {
    let subsampling = match subsampling {
        0 => Subsampling::S420,
        1 => Subsampling::S422,
        2 => Subsampling::S444,
        _ => return STATUS_BAD_ARGUMENT,
    };
    let matrix = match matrix {
        0 => Matrix::Bt601,
        1 => Matrix::Bt709,
        _ => return STATUS_BAD_ARGUMENT,
    };
    let range = match range {
        0 => Range::Limited,
        1 => Range::Full,
        _ => return STATUS_BAD_ARGUMENT,
    };
    let (y, u, v, out) = match (slice(y, y_len), slice(u, u_len), slice(v, v_len), slice_mut(out, out_len)) {
        (Some(y), Some(u), Some(v), Some(out)) => (y, u, v, out),
        _ => return STATUS_BAD_ARGUMENT,
    };
    let planes = YuvPlanes { y, u, v, width, height, y_stride, uv_stride, subsampling };
    if simd != 0 {
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        return crate::abi::STATUS_NO_SIMD;
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return media_status(media::yuv::yuv_to_rgb(&planes, matrix, range, out));
    }
    media_status(media::yuv::yuv_to_rgb_scalar(&planes, matrix, range, out))
}

/// Picks the SIMD rows (1) or their scalar twin (0) and runs `$call::<R>(...)`, returning its status.
macro_rules! with_rows {
    ($simd:expr, $f:ident ( $($arg:expr),* )) => {{
        if $simd != 0 {
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            return media_status($f::<media::resize::Simd128>($($arg),*));
            #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
            return crate::abi::STATUS_NO_SIMD;
        }
        media_status($f::<media::resize::Scalar>($($arg),*))
    }};
}

/// The variant of `code` and the output side (`size`, or the variant's released side when 0).
fn variant_and_side(code: i32, size: usize) -> Option<(Variant, usize)> {
    let variant = match code {
        0 => Variant::Vicuna,
        1 => Variant::Qwen,
        _ => return None,
    };
    Some((variant, if size == 0 { variant.size() } else { size }))
}

/// Pillow-exact BICUBIC resize of RGB24 `src` (width×height, src_len bytes) into `dst` (out_width×out_height).
///
/// # Safety
/// Each pointer must come from `ppl_alloc` with at least the length passed beside it.
#[no_mangle]
pub unsafe extern "C" fn ppl_pixels_resize_rgb(
    src: *const u8,
    src_len: usize,
    width: usize,
    height: usize,
    dst: *mut u8,
    dst_len: usize,
    out_width: usize,
    out_height: usize,
    simd: i32,
) -> i32 {
    let (src, dst) = match (slice(src, src_len), slice_mut(dst, dst_len)) {
        (Some(src), Some(dst)) => (src, dst),
        _ => return STATUS_BAD_ARGUMENT,
    };
    with_rows!(simd, resize_rgb(src, width, height, dst, out_width, out_height))
}

/// The uint8 S×S×3 canvas of one frame before normalisation (variant 0 = Vicuna stretch, 1 = Qwen letterbox;
/// S = `size`, 0 meaning the variant's released side, 336 or 384); what `ppl_pixels_preprocess` normalises. Exposed so tests can compare it with Pillow.
///
/// # Safety
/// Each pointer must come from `ppl_alloc` with at least the length passed beside it.
#[no_mangle]
pub unsafe extern "C" fn ppl_pixels_canvas(
    src: *const u8,
    src_len: usize,
    width: usize,
    height: usize,
    variant_code: i32,
    size: usize,
    dst: *mut u8,
    dst_len: usize,
    simd: i32,
) -> i32 {
    let (variant, size) = match variant_and_side(variant_code, size) {
        Some(found) => found,
        None => return STATUS_BAD_ARGUMENT,
    };
    let (src, dst) = match (slice(src, src_len), slice_mut(dst, dst_len)) {
        (Some(src), Some(dst)) => (src, dst),
        _ => return STATUS_BAD_ARGUMENT,
    };
    with_rows!(simd, canvas(src, width, height, variant, size, dst))
}

/// One RGB24 frame → 3×S×S f32 (CHW, normalised) in `out` (out_len f32 values); S = `size`, 0 meaning the
/// variant's released side.
///
/// # Safety
/// Each pointer must come from `ppl_alloc` with at least the length passed beside it.
#[no_mangle]
pub unsafe extern "C" fn ppl_pixels_preprocess(
    src: *const u8,
    src_len: usize,
    width: usize,
    height: usize,
    variant_code: i32,
    size: usize,
    out: *mut f32,
    out_len: usize,
    simd: i32,
) -> i32 {
    let (variant, size) = match variant_and_side(variant_code, size) {
        Some(found) => found,
        None => return STATUS_BAD_ARGUMENT,
    };
    let (src, out) = match (slice(src, src_len), slice_mut(out, out_len)) {
        (Some(src), Some(out)) => (src, out),
        _ => return STATUS_BAD_ARGUMENT,
    };
    with_rows!(simd, preprocess_frame(src, width, height, variant, size, out))
}
