//! Export of the weighted window pooling of PGP (`ops::pooling`).

use crate::abi::{slice, slice_mut, status, STATUS_BAD_ARGUMENT, STATUS_BAD_SHAPE};
use crate::dispatch::with_lanes;
use ops::pooling::{output_size, weighted_pool, Window};

/// x: (t, h, w, channels) f32; p: (t, h, w) relevance probabilities, or 0 for uniform weights; out:
/// (O_t, O_h, O_w, channels) with O = floor((I − k)/s) + 1 per axis. Window weights = softmax(p/tau) per window.
///
/// # Safety
/// The pointers must come from `ppl_alloc` with at least the sizes above.
#[no_mangle]
pub unsafe extern "C" fn ppl_pooling_weighted(
    x: *const f32,
    p: *const f32,
    t: usize,
    h: usize,
    w: usize,
    channels: usize,
    kt: usize,
    kh: usize,
    kw: usize,
    st: usize,
    sh: usize,
    sw: usize,
    tau: f64,
    out: *mut f32,
    simd: i32,
) -> i32 {
    let window = Window { kernel: [kt, kh, kw], stride: [st, sh, sw] };
    let o = match output_size([t, h, w], window) {
        Ok(o) => o,
        Err(_) => return STATUS_BAD_SHAPE,
    };
    let cells = match t.checked_mul(h).and_then(|a| a.checked_mul(w)) {
        Some(cells) => cells,
        None => return STATUS_BAD_SHAPE,
    };
    let (x_len, out_len) = match (cells.checked_mul(channels), (o[0] * o[1] * o[2]).checked_mul(channels)) {
        (Some(a), Some(b)) => (a, b),
        _ => return STATUS_BAD_SHAPE,
    };
    let p = if p.is_null() {
        None
    } else {
        match slice(p, cells) {
            Some(p) => Some(p),
            None => return STATUS_BAD_ARGUMENT,
        }
    };
    match (slice(x, x_len), slice_mut(out, out_len)) {
        (Some(x), Some(out)) => with_lanes!(simd, L => status(weighted_pool::<L>(x, p, [t, h, w], channels, window, tau, out))),
        _ => STATUS_BAD_ARGUMENT,
    }
}
