//! Exports of the data-movement family (`ops::layout`): strided copy, embedding, broadcast add/mul, patch embed.

use crate::abi::{slice, slice_mut, status, STATUS_BAD_ARGUMENT, STATUS_BAD_SHAPE, STATUS_UNSUPPORTED};
use crate::dispatch::{with_element, with_lanes, DTYPE_F32};
use ops::convert::Element;
use ops::layout::{copy_strided, extent, MAX_DIMS};

/// Copies the view (shape, src_strides) of `src` into the view (shape, dst_strides) of `dst`. shape and strides
/// are `dims` u32 (usize) each. dst_dtype f32 widens any src_dtype; dst_dtype = src_dtype (f16/bf16) copies bits.
///
/// # Safety
/// The pointers must come from `ppl_alloc` and cover the views.
#[no_mangle]
pub unsafe extern "C" fn ppl_layout_copy(
    dims: usize,
    shape: *const usize,
    src: *const u8,
    src_dtype: i32,
    src_strides: *const usize,
    dst: *mut u8,
    dst_dtype: i32,
    dst_strides: *const usize,
) -> i32 {
    if dims == 0 || dims > MAX_DIMS {
        return STATUS_BAD_SHAPE;
    }
    let (shape, ss, ds) = match (slice(shape, dims), slice(src_strides, dims), slice(dst_strides, dims)) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return STATUS_BAD_ARGUMENT,
    };
    let (src_len, dst_len) = match (extent(shape, ss), extent(shape, ds)) {
        (Some(a), Some(b)) => (a.max(1), b.max(1)),
        _ => return STATUS_BAD_SHAPE,
    };
    if dst_dtype == DTYPE_F32 {
        let dst = match slice_mut(dst as *mut f32, dst_len) {
            Some(dst) => dst,
            None => return STATUS_BAD_ARGUMENT,
        };
        with_element!(src_dtype, E => match slice(src as *const E, src_len) {
            Some(src) => status(copy_strided(shape, src, ss, dst, ds, |x: E| x.to_f32())),
            None => STATUS_BAD_ARGUMENT,
        })
    } else if dst_dtype == src_dtype && (dst_dtype == crate::dispatch::DTYPE_F16 || dst_dtype == crate::dispatch::DTYPE_BF16) {
        match (slice(src as *const u16, src_len), slice_mut(dst as *mut u16, dst_len)) {
            (Some(src), Some(dst)) => status(copy_strided(shape, src, ss, dst, ds, |x| x)),
            _ => STATUS_BAD_ARGUMENT,
        }
    } else {
        STATUS_UNSUPPORTED
    }
}

/// out (count, dim) f32 = rows `ids` (count i32) of table (rows, dim) of `dtype`.
///
/// # Safety
/// The pointers must come from `ppl_alloc` with at least the sizes above.
#[no_mangle]
pub unsafe extern "C" fn ppl_layout_embedding(table: *const u8, dtype: i32, rows: usize, dim: usize, ids: *const i32, count: usize, out: *mut f32) -> i32 {
    let (table_len, out_len) = match (rows.checked_mul(dim), count.checked_mul(dim)) {
        (Some(a), Some(b)) => (a, b),
        _ => return STATUS_BAD_SHAPE,
    };
    let (ids, out) = match (slice(ids, count), slice_mut(out, out_len)) {
        (Some(ids), Some(out)) => (ids, out),
        _ => return STATUS_BAD_ARGUMENT,
    };
    with_element!(dtype, E => match slice(table as *const E, table_len) {
        Some(table) => status(ops::layout::embedding(table, dim, ids, out)),
        None => STATUS_BAD_ARGUMENT,
    })
}

/// out (rows, dim) = a (rows, dim) + or · b (b_rows, dim), b's row r mod b_rows; op 0 add, 1 multiply.
///
/// # Safety
/// The pointers must come from `ppl_alloc` with at least the sizes above.
#[no_mangle]
pub unsafe extern "C" fn ppl_layout_binary(a: *const f32, rows: usize, dim: usize, b: *const f32, b_rows: usize, op: i32, out: *mut f32, simd: i32) -> i32 {
    if op != 0 && op != 1 {
        return STATUS_UNSUPPORTED;
    }
    let (len, b_len) = match (rows.checked_mul(dim), b_rows.checked_mul(dim)) {
        (Some(a), Some(b)) => (a, b),
        _ => return STATUS_BAD_SHAPE,
    };
    match (slice(a, len), slice(b, b_len), slice_mut(out, len)) {
        (Some(a), Some(b), Some(out)) => with_lanes!(simd, L => status(ops::layout::broadcast_binary::<L>(a, b, dim, op == 1, out))),
        _ => STATUS_BAD_ARGUMENT,
    }
}

/// Conv2d kernel = stride = patch, no bias: pixels (images, channels, height, width) f32, weight (out_dim,
/// channels, patch, patch) of `dtype`, out (images, (height/patch)·(width/patch), out_dim) f32.
///
/// # Safety
/// The pointers must come from `ppl_alloc` with at least the sizes above.
#[no_mangle]
pub unsafe extern "C" fn ppl_layout_patch_embed(
    pixels: *const f32,
    images: usize,
    channels: usize,
    height: usize,
    width: usize,
    patch: usize,
    weight: *const u8,
    dtype: i32,
    out_dim: usize,
    out: *mut f32,
    simd: i32,
) -> i32 {
    if patch == 0 {
        return STATUS_BAD_SHAPE;
    }
    let sizes = (
        images.checked_mul(channels).and_then(|x| x.checked_mul(height)).and_then(|x| x.checked_mul(width)),
        out_dim.checked_mul(channels).and_then(|x| x.checked_mul(patch * patch)),
        images.checked_mul((height / patch) * (width / patch)).and_then(|x| x.checked_mul(out_dim)),
    );
    let (pixel_len, weight_len, out_len) = match sizes {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return STATUS_BAD_SHAPE,
    };
    let (pixels, out) = match (slice(pixels, pixel_len), slice_mut(out, out_len)) {
        (Some(p), Some(o)) => (p, o),
        _ => return STATUS_BAD_ARGUMENT,
    };
    with_element!(dtype, E => match slice(weight as *const E, weight_len) {
        Some(weight) => with_lanes!(simd, L => status(ops::layout::patch_embed::<L, E>(pixels, images, channels, height, width, patch, weight, out_dim, out))),
        None => STATUS_BAD_ARGUMENT,
    })
}

/// out (outer, inner) = mean over n of x (outer, n, inner), f32 in and out, f64 sums.
///
/// # Safety
/// The pointers must come from `ppl_alloc` with at least the sizes above.
#[no_mangle]
pub unsafe extern "C" fn ppl_layout_mean(x: *const f32, outer: usize, n: usize, inner: usize, out: *mut f32) -> i32 {
    let (len, out_len) = match (outer.checked_mul(n).and_then(|a| a.checked_mul(inner)), outer.checked_mul(inner)) {
        (Some(a), Some(b)) => (a, b),
        _ => return STATUS_BAD_SHAPE,
    };
    match (slice(x, len.max(1)), slice_mut(out, out_len.max(1))) {
        (Some(x), Some(out)) => status(ops::layout::mean_axis(&x[..len], outer, n, inner, &mut out[..out_len])),
        _ => STATUS_BAD_ARGUMENT,
    }
}

/// out = factor · x, n f32 values.
///
/// # Safety
/// The pointers must come from `ppl_alloc` with at least n f32 each.
#[no_mangle]
pub unsafe extern "C" fn ppl_layout_scale(x: *const f32, n: usize, factor: f32, out: *mut f32) -> i32 {
    match (slice(x, n), slice_mut(out, n)) {
        (Some(x), Some(out)) => status(ops::layout::scale(x, factor, out)),
        _ => STATUS_BAD_ARGUMENT,
    }
}
