//! LayerNorm and RMSNorm over the last axis of a (rows, dim) row-major matrix.
//!
//!   LayerNorm: y = (x − μ) / √(σ² + eps) · γ + β        μ, σ² over the row (biased variance, as PyTorch)
//!   RMSNorm:   y = x / √(mean(x²) + eps) · γ             (LLaMA/Qwen2; no bias)
//!
//! The statistics are accumulated in f64 (Σx and Σx² of f32 values are exact products summed in f64), so the only
//! f32 error is the few roundings of the affine tail.

use crate::lanes::Lanes;
use crate::OpError;

fn check(x: &[f32], dim: usize, gain: &[f32], out: &[f32], eps: f32) -> Result<(), OpError> {
    if dim == 0 || x.len() % dim != 0 || out.len() != x.len() || gain.len() != dim {
        return Err(OpError::BadShape);
    }
    if !(eps >= 0.0) || !eps.is_finite() {
        return Err(OpError::BadArgument);
    }
    Ok(())
}

/// x, out: (rows, dim); gain, bias: (dim).
pub fn layer_norm<L: Lanes>(x: &[f32], dim: usize, gain: &[f32], bias: &[f32], eps: f32, out: &mut [f32]) -> Result<(), OpError> {
    check(x, dim, gain, out, eps)?;
    if bias.len() != dim {
        return Err(OpError::BadShape);
    }
    for (row, y) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let mean = L::sum_f64(row) / dim as f64;
        let variance = (L::dot_f64(row, row) / dim as f64 - mean * mean).max(0.0);
        let scale = 1.0 / (variance + eps as f64).sqrt();
        // x − μ is a two-term sum done in f32 with μ rounded once: tests bound the error relative to
        // (|x| + |μ|)/σ·|γ| + |β|, the sum of the magnitudes of the terms.
        L::normalize(row, mean as f32, scale as f32, gain, bias, y);
    }
    Ok(())
}

/// x, out: (rows, dim); gain: (dim). `zeros` must be a (dim) slice of zeros (the absent bias).
pub fn rms_norm<L: Lanes>(x: &[f32], dim: usize, gain: &[f32], eps: f32, zeros: &[f32], out: &mut [f32]) -> Result<(), OpError> {
    check(x, dim, gain, out, eps)?;
    if zeros.len() != dim {
        return Err(OpError::BadShape);
    }
    for (row, y) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let scale = 1.0 / (L::dot_f64(row, row) / dim as f64 + eps as f64).sqrt();
        L::normalize(row, 0.0, scale as f32, gain, zeros, y);
    }
    Ok(())
}
