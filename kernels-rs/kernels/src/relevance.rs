//! Export of the prompt relevance kernel (`ops::relevance`).

use crate::abi::{slice, slice_mut, status, STATUS_BAD_ARGUMENT, STATUS_BAD_SHAPE};
use ops::lanes::Scalar;

/// p = softmax(scale · cos(visual[n], text)) over n. visual: n×dim f32, text: dim f32, out: n f32.
///
/// # Safety
/// The pointers must come from `ppl_alloc` with at least the sizes above.
#[no_mangle]
pub unsafe extern "C" fn ppl_relevance_f32(
    visual: *const f32,
    text: *const f32,
    n: usize,
    dim: usize,
    scale: f64,
    out: *mut f32,
    simd: i32,
) -> i32 {
    let count = match n.checked_mul(dim) {
        Some(count) => count,
        None => return STATUS_BAD_SHAPE,
    };
    let (visual, text, out) = match (slice(visual, count), slice(text, dim), slice_mut(out, n)) {
        (Some(visual), Some(text), Some(out)) => (visual, text, out),
        _ => return STATUS_BAD_ARGUMENT,
    };
    if simd != 0 {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return status(ops::relevance::relevance::<ops::lanes::Simd128>(visual, text, dim, scale, out));
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        return crate::abi::STATUS_NO_SIMD;
    }
    status(ops::relevance::relevance::<Scalar>(visual, text, dim, scale, out))
}
