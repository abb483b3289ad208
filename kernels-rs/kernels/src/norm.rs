//! Exports of LayerNorm and RMSNorm (`ops::norm`).

use crate::abi::{slice, slice_mut, status, STATUS_BAD_ARGUMENT, STATUS_BAD_SHAPE};
use crate::dispatch::with_lanes;

/// x, out: (rows, dim) f32; gain, bias: (dim) f32.
///
/// # Safety
/// The pointers must come from `ppl_alloc` with at least the sizes above.
#[no_mangle]
pub unsafe extern "C" fn ppl_norm_layer(x: *const f32, rows: usize, dim: usize, gain: *const f32, bias: *const f32, eps: f32, out: *mut f32, simd: i32) -> i32 {
    let count = match rows.checked_mul(dim) {
        Some(count) => count,
        None => return STATUS_BAD_SHAPE,
    };
    match (slice(x, count), slice(gain, dim), slice(bias, dim), slice_mut(out, count)) {
        (Some(x), Some(gain), Some(bias), Some(out)) => {
            with_lanes!(simd, L => status(ops::norm::layer_norm::<L>(x, dim, gain, bias, eps, out)))
        }
        _ => STATUS_BAD_ARGUMENT,
    }
}

/// x, out: (rows, dim) f32; gain: (dim) f32.
///
/// # Safety
/// As for `ppl_norm_layer`.
#[no_mangle]
pub unsafe extern "C" fn ppl_norm_rms(x: *const f32, rows: usize, dim: usize, gain: *const f32, eps: f32, out: *mut f32, simd: i32) -> i32 {
    let count = match rows.checked_mul(dim) {
        Some(count) => count,
        None => return STATUS_BAD_SHAPE,
    };
    let zeros = vec![0.0f32; dim];
    match (slice(x, count), slice(gain, dim), slice_mut(out, count)) {
        (Some(x), Some(gain), Some(out)) => with_lanes!(simd, L => status(ops::norm::rms_norm::<L>(x, dim, gain, eps, &zeros, out))),
        _ => STATUS_BAD_ARGUMENT,
    }
}
