//! Export of the strided, batched matmul (`ops::gemm`).

use crate::abi::{slice, slice_mut, status, STATUS_BAD_ARGUMENT, STATUS_BAD_SHAPE, STATUS_OK};
use crate::dispatch::{with_element, with_lanes};
use ops::gemm::{gemm, Matrix};
use ops::layout::extent;

/// For each of `batch` items: C (m×n, row stride c_rs) = A (m×k, strides a_rs, a_cs) · B (k×n, strides b_rs,
/// b_cs) + bias (n, optional: 0), or += when `accumulate` ≠ 0. Batch strides a_bs, b_bs (0 broadcasts one weight
/// matrix), c_bs. A and C are f32; B is `b_dtype` (0 f32, 1 f16, 2 bf16). Strides are in elements.
///
/// x·Wᵀ for W (n×k, row-major) is b_rs = 1, b_cs = k.
///
/// # Safety
/// The pointers must come from `ppl_alloc` and cover the elements the shapes and strides reach.
#[no_mangle]
pub unsafe extern "C" fn ppl_gemm_matmul(
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    a_bs: usize,
    a_rs: usize,
    a_cs: usize,
    b: *const u8,
    b_dtype: i32,
    b_bs: usize,
    b_rs: usize,
    b_cs: usize,
    bias: *const f32,
    c: *mut f32,
    c_bs: usize,
    c_rs: usize,
    accumulate: i32,
    simd: i32,
) -> i32 {
    if batch == 0 || m == 0 || n == 0 {
        return STATUS_OK;
    }
    let (a_len, b_len, c_len) = match (
        extent(&[batch, m, k], &[a_bs, a_rs, a_cs]),
        extent(&[batch, k, n], &[b_bs, b_rs, b_cs]),
        extent(&[batch, m, n], &[c_bs, c_rs, 1]),
    ) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return STATUS_BAD_SHAPE,
    };
    let a = match slice(a, a_len.max(1)) {
        Some(a) => a,
        None => return STATUS_BAD_ARGUMENT,
    };
    let c = match slice_mut(c, c_len) {
        Some(c) => c,
        None => return STATUS_BAD_ARGUMENT,
    };
    let bias = if bias.is_null() {
        None
    } else {
        match slice(bias, n) {
            Some(bias) => Some(bias),
            None => return STATUS_BAD_ARGUMENT,
        }
    };
    with_element!(b_dtype, E => {
        let b = match slice(b as *const E, b_len.max(1)) {
            Some(b) => b,
            None => return STATUS_BAD_ARGUMENT,
        };
        with_lanes!(simd, L => {
            for i in 0..batch {
                let am = Matrix { data: &a[i * a_bs..], rows: m, cols: k, rs: a_rs, cs: a_cs };
                let bm = Matrix { data: &b[i * b_bs..], rows: k, cols: n, rs: b_rs, cs: b_cs };
                let code = status(gemm::<L, E>(am, bm, bias, &mut c[i * c_bs..], c_rs, accumulate != 0));
                if code != STATUS_OK {
                    return code;
                }
            }
            STATUS_OK
        })
    })
}
