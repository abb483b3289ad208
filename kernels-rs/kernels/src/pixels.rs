//! Exports of the pixel paths (`media::yuv`, `media::resize`, `media::preprocess`): YUV→RGB, the Pillow-exact
//! BICUBIC resize and the PPLLaVA / Qwen frame preprocessing.

use crate::abi::{slice, slice_mut, STATUS_BAD_ARGUMENT, STATUS_INVALID_DATA, STATUS_LIMIT, STATUS_OK, STATUS_UNSUPPORTED};
use media::yuv::{Matrix, Range, Subsampling, YuvPlanes};
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
    media_status(media::yuv::yuv_to_rgb(&planes, matrix, range, out))
}
