//! Softmax over the last axis of a (rows, n) matrix: y = exp(x − max) / Σ exp(x − max).
//!
//! exp in f32 (`Lanes::exp_shifted`, ≤ 2 ulp; x − max is exact when both are close, and rounded once otherwise),
//! the sum in f64 in index order (so the SIMD path and its twin agree bit for bit), one division.
//! A row whose entries are all −∞ (fully masked) gives zeros rather than NaN; NaN input gives NaN.

use crate::lanes::Lanes;
use crate::OpError;

/// Softmax of `row` in place, over its first `len` entries; the rest (masked keys) are set to 0.
pub fn softmax_row<L: Lanes>(row: &mut [f32], len: usize) {
    let mut max = f32::NEG_INFINITY;
    for &x in &row[..len] {
        max = if x > max { x } else { max };
    }
    if max == f32::NEG_INFINITY {
        row.iter_mut().for_each(|x| *x = 0.0);
        return;
    }
    L::exp_shifted(&mut row[..len], max);
    let mut total = 0.0f64;
    for &x in &row[..len] {
        total += x as f64;
    }
    let inverse = (1.0 / total) as f32;
    for x in row[..len].iter_mut() {
        *x *= inverse;
    }
    row[len..].iter_mut().for_each(|x| *x = 0.0);
}

/// x, out: (rows, n). Writes softmax of each row scaled by `scale` first (scale = 1 for a plain softmax).
pub fn softmax<L: Lanes>(x: &[f32], n: usize, scale: f32, out: &mut [f32]) -> Result<(), OpError> {
    if n == 0 || x.len() % n != 0 || out.len() != x.len() {
        return Err(OpError::BadShape);
    }
    if !scale.is_finite() {
        return Err(OpError::BadArgument);
    }
    for (src, dst) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        for (d, &s) in dst.iter_mut().zip(src.iter()) {
            *d = s * scale;
        }
        softmax_row::<L>(dst, n);
    }
    Ok(())
}
