//! Exports of the group-wise quantised weights (`ops::quant`, format in docs/quantization.md).
//!
//! Format codes continue the element codes of dispatch.rs: 3 = q8, 4 = q4. A quantised (n, k) weight is one block of
//! `ppl_quant_bytes(format, n, k)` bytes: the codes plane, then the f32 scales plane, rows in blocks of four with
//! their groups interleaved (`ppl_quant_relayout` converts from and to the plain row order of files).

use crate::abi::{slice, slice_mut, status, STATUS_BAD_ARGUMENT, STATUS_BAD_SHAPE, STATUS_OK, STATUS_UNSUPPORTED};
use crate::dispatch::{with_element, with_lanes};
use ops::quant::{self, Format, Method, QuantMatrix};

pub const FORMAT_Q8: i32 = 3;
pub const FORMAT_Q4: i32 = 4;

fn format(code: i32) -> Option<Format> {
    match code {
        FORMAT_Q8 => Some(Format::Q8),
        FORMAT_Q4 => Some(Format::Q4),
        _ => None,
    }
}

/// Bytes of a quantised (n, k) weight, or 0 for an unknown format or a size past the address space.
#[no_mangle]
pub extern "C" fn ppl_quant_bytes(format_code: i32, n: usize, k: usize) -> usize {
    format(format_code).and_then(|f| quant::quant_bytes(f, n, k)).unwrap_or(0)
}

unsafe fn matrix<'a>(w: *const u8, format_code: i32, n: usize, k: usize) -> Result<QuantMatrix<'a>, i32> {
    let f = format(format_code).ok_or(STATUS_UNSUPPORTED)?;
    let len = quant::quant_bytes(f, n, k).ok_or(STATUS_BAD_SHAPE)?;
    let bytes = slice(w, len).ok_or(STATUS_BAD_ARGUMENT)?;
    QuantMatrix::from_bytes(f, n, k, bytes).map_err(|e| status(Err(e)))
}

/// Rearranges the quantised (n, k) weight at w (`ppl_quant_bytes` bytes) in place between the plain row order of files
/// and the order the products read (`to_memory` 1: from files to memory; 0: back). See `ops::quant::relayout`.
///
/// # Safety
/// w must come from `ppl_alloc` and cover `ppl_quant_bytes(format, n, k)` bytes.
#[no_mangle]
pub unsafe extern "C" fn ppl_quant_relayout(w: *mut u8, format_code: i32, n: usize, k: usize, to_memory: i32) -> i32 {
    let f = match format(format_code) {
        Some(f) => f,
        None => return STATUS_UNSUPPORTED,
    };
    let total = match quant::quant_bytes(f, n, k) {
        Some(t) if n > 0 && k > 0 => t,
        _ => return STATUS_BAD_SHAPE,
    };
    match slice_mut(w, total) {
        Some(bytes) => status(quant::relayout(f, n, k, bytes, to_memory != 0)),
        None => STATUS_BAD_ARGUMENT,
    }
}

/// Quantises src (n, k), row-major, element code `src_dtype` (0 f32, 1 f16, 2 bf16), into dst
/// (`ppl_quant_bytes` bytes). A NaN or ±∞ value is STATUS_BAD_ARGUMENT (dst is then partly written).
///
/// # Safety
/// The pointers must come from `ppl_alloc` and cover the sizes above.
#[no_mangle]
pub unsafe extern "C" fn ppl_quant_quantize(src: *const u8, src_dtype: i32, n: usize, k: usize, format_code: i32, dst: *mut u8) -> i32 {
    let f = match format(format_code) {
        Some(f) => f,
        None => return STATUS_UNSUPPORTED,
    };
    let (count, total) = match (n.checked_mul(k), quant::quant_bytes(f, n, k)) {
        (Some(c), Some(t)) if n > 0 && k > 0 => (c, t),
        _ => return STATUS_BAD_SHAPE,
    };
    let out = match slice_mut(dst, total) {
        Some(o) => o,
        None => return STATUS_BAD_ARGUMENT,
    };
    with_element!(src_dtype, E => {
        match slice(src as *const E, count) {
            Some(values) => status(quant::quantize(f, values, n, k, out)),
            None => STATUS_BAD_ARGUMENT,
        }
    })
}

/// out (count, k) f32 = dequantised rows `ids[0..count]` of w (n, k), or every row (count = n) when ids is null.
/// An id outside [0, n) is STATUS_BAD_ARGUMENT.
///
/// # Safety
/// The pointers must come from `ppl_alloc` and cover the sizes above.
#[no_mangle]
pub unsafe extern "C" fn ppl_quant_dequantize(w: *const u8, format_code: i32, n: usize, k: usize, ids: *const i32, count: usize, out: *mut f32) -> i32 {
    let q = match matrix(w, format_code, n, k) {
        Ok(q) => q,
        Err(code) => return code,
    };
    let rows = if ids.is_null() { None } else { slice(ids, count) };
    if !ids.is_null() && rows.is_none() {
        return STATUS_BAD_ARGUMENT;
    }
    let count = if ids.is_null() { n } else { count };
    let out = match count.checked_mul(k).and_then(|len| slice_mut(out, len)) {
        Some(o) => o,
        None => return STATUS_BAD_ARGUMENT,
    };
    status(quant::dequantize_rows(&q, rows, out))
}

/// y (m, n; row stride y_rs) = x (m, k; row stride x_rs) · Ŵᵀ + bias (n; 0 = none) for the quantised w (n, k).
/// `method` 0 quantises x per group to int8 (integer dot products), 1 multiplies dequantised codes with f32 x.
/// A non-finite x is STATUS_BAD_ARGUMENT with method 0.
///
/// # Safety
/// The pointers must come from `ppl_alloc` and cover the sizes above.
#[no_mangle]
pub unsafe extern "C" fn ppl_quant_matmul(
    x: *const f32,
    m: usize,
    k: usize,
    x_rs: usize,
    w: *const u8,
    format_code: i32,
    n: usize,
    bias: *const f32,
    y: *mut f32,
    y_rs: usize,
    method: i32,
    simd: i32,
) -> i32 {
    if m == 0 || n == 0 {
        return STATUS_OK;
    }
    let q = match matrix(w, format_code, n, k) {
        Ok(q) => q,
        Err(code) => return code,
    };
    let method = match method {
        0 => Method::Int8,
        1 => Method::F32,
        _ => return STATUS_UNSUPPORTED,
    };
    let (x_len, y_len) = match ((m - 1).checked_mul(x_rs).and_then(|v| v.checked_add(k)), (m - 1).checked_mul(y_rs).and_then(|v| v.checked_add(n))) {
        (Some(a), Some(b)) => (a, b),
        _ => return STATUS_BAD_SHAPE,
    };
    let (x, y) = match (slice(x, x_len), slice_mut(y, y_len)) {
        (Some(x), Some(y)) => (x, y),
        _ => return STATUS_BAD_ARGUMENT,
    };
    let bias = if bias.is_null() {
        None
    } else {
        match slice(bias, n) {
            Some(b) => Some(b),
            None => return STATUS_BAD_ARGUMENT,
        }
    };
    with_lanes!(simd, L => {
        let _ = core::marker::PhantomData::<L>;
        status(if simd != 0 { simd_matmul(method, x, m, x_rs, &q, bias, y, y_rs) } else {
            quant::matmul::<quant::ScalarQuant>(method, x, m, x_rs, &q, bias, y, y_rs)
        })
    })
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[allow(clippy::too_many_arguments)]
fn simd_matmul(method: Method, x: &[f32], m: usize, x_rs: usize, q: &QuantMatrix, bias: Option<&[f32]>, y: &mut [f32], y_rs: usize) -> Result<(), ops::OpError> {
    quant::matmul::<quant::Simd128Quant>(method, x, m, x_rs, q, bias, y, y_rs)
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[allow(clippy::too_many_arguments)]
fn simd_matmul(method: Method, x: &[f32], m: usize, x_rs: usize, q: &QuantMatrix, bias: Option<&[f32]>, y: &mut [f32], y_rs: usize) -> Result<(), ops::OpError> {
    quant::matmul::<quant::ScalarQuant>(method, x, m, x_rs, q, bias, y, y_rs)
}


/// The int8 activations of the Int8 method for wasm/ppllava_relaxed.wasm's q4 decode product: x (m, k; row stride
/// x_rs) quantised per group of 32 exactly as `ppl_quant_matmul` method 0 does, written in element order as i8
/// (codes: m·G·32, the padding 0), with each group's Σ of codes (sums: m·G i32) and scale (scales: m·G f32),
/// G = ⌈k/32⌉. A non-finite x is STATUS_BAD_ARGUMENT.
///
/// # Safety
/// The pointers must come from `ppl_alloc` and cover the sizes above.
#[no_mangle]
pub unsafe extern "C" fn ppl_quant_activations_i8(x: *const f32, m: usize, k: usize, x_rs: usize, codes: *mut i8, sums: *mut i32, scales: *mut f32) -> i32 {
    if m == 0 || k == 0 || x_rs < k {
        return STATUS_BAD_SHAPE;
    }
    let g = quant::groups(k);
    let lens = (
        (m - 1).checked_mul(x_rs).and_then(|v| v.checked_add(k)),
        m.checked_mul(g).and_then(|v| v.checked_mul(quant::GROUP)),
        m.checked_mul(g),
    );
    let (x_len, codes_len, group_len) = match lens {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return STATUS_BAD_SHAPE,
    };
    let (x, codes, sums, scales) = match (slice(x, x_len), slice_mut(codes, codes_len), slice_mut(sums, group_len), slice_mut(scales, group_len)) {
        (Some(x), Some(c), Some(s), Some(d)) => (x, c, s, d),
        _ => return STATUS_BAD_ARGUMENT,
    };
    match quant::quantize_activations(x, m, k, x_rs) {
        Ok(q) => {
            // The codes are within ±127, so the narrowing is exact.
            for (o, &c) in codes.iter_mut().zip(q.codes.iter()) {
                *o = c as i8;
            }
            sums.copy_from_slice(&q.sums);
            scales.copy_from_slice(&q.scales);
            STATUS_OK
        }
        Err(e) => status(Err(e)),
    }
}
