//! Exports of the element-wise activations and the row softmax (`ops::activation`, `ops::softmax`).

use crate::abi::{slice, slice_mut, status, STATUS_BAD_ARGUMENT, STATUS_BAD_SHAPE};
use ops::activation::Activation;

/// out = act(x), n values; act: 0 gelu (erf), 1 quick_gelu, 2 silu, 3 gelu_tanh. out may not alias x; simd picks the lanes.
///
/// # Safety
/// The pointers must come from `ppl_alloc` with at least n f32 each.
#[no_mangle]
pub unsafe extern "C" fn ppl_activation_apply(act: i32, x: *const f32, n: usize, out: *mut f32, simd: i32) -> i32 {
    let act = match Activation::from_code(act) {
        Some(act) => act,
        None => return STATUS_BAD_ARGUMENT,
    };
    match (slice(x, n), slice_mut(out, n)) {
        (Some(x), Some(out)) => crate::dispatch::with_lanes!(simd, L => status(ops::activation::activate::<L>(act, x, out))),
        _ => STATUS_BAD_ARGUMENT,
    }
}

/// out = silu(gate) · up, n values each.
///
/// # Safety
/// As for `ppl_activation_apply`.
#[no_mangle]
pub unsafe extern "C" fn ppl_activation_silu_mul(gate: *const f32, up: *const f32, n: usize, out: *mut f32, simd: i32) -> i32 {
    match (slice(gate, n), slice(up, n), slice_mut(out, n)) {
        (Some(gate), Some(up), Some(out)) => crate::dispatch::with_lanes!(simd, L => status(ops::activation::silu_mul::<L>(gate, up, out))),
        _ => STATUS_BAD_ARGUMENT,
    }
}

/// out (rows, n) = softmax over the last axis of scale · x (rows, n); simd picks the lanes.
///
/// # Safety
/// As for `ppl_activation_apply`, with rows·n values.
#[no_mangle]
pub unsafe extern "C" fn ppl_activation_softmax(x: *const f32, rows: usize, n: usize, scale: f32, out: *mut f32, simd: i32) -> i32 {
    let count = match rows.checked_mul(n) {
        Some(count) => count,
        None => return STATUS_BAD_SHAPE,
    };
    match (slice(x, count), slice_mut(out, count)) {
        (Some(x), Some(out)) => crate::dispatch::with_lanes!(simd, L => status(ops::softmax::softmax::<L>(x, n, scale, out))),
        _ => STATUS_BAD_ARGUMENT,
    }
}
