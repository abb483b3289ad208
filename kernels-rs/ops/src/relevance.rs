//! Prompt relevance of every visual token (spec §3.4, step C):
//!
//!   s[n] = ⟨t / ‖t‖, v[n] / ‖v[n]‖⟩          cosine in CLIP space, n ∈ [0, N)
//!   p    = softmax_n(scale · s)               one softmax over all N = T·576 tokens of the video, scale = 100
//!
//! Everything is accumulated in f64 and rounded to f32 once at the end: `scale` turns an absolute error δ of a
//! cosine into a relative error scale·δ of p, so an f32 dot product (δ ≈ 1e-7) would already cost 1e-5.
//! A zero vector is normalised with ‖x‖ clamped to 1e-12, as `torch.nn.functional.normalize` does, so it scores 0
//! instead of NaN.

use crate::lanes::Lanes;
use crate::OpError;

const NORM_EPS: f64 = 1e-12;

/// visual: (n, dim) row-major; text: (dim); out: (n). Writes p.
pub fn relevance<L: Lanes>(visual: &[f32], text: &[f32], dim: usize, scale: f64, out: &mut [f32]) -> Result<(), OpError> {
    let n = out.len();
    if dim == 0 || n == 0 || text.len() != dim || visual.len() != n * dim {
        return Err(OpError::BadShape);
    }
    if !scale.is_finite() {
        return Err(OpError::BadArgument);
    }
    let text_norm = L::dot_f64(text, text).sqrt().max(NORM_EPS);
    // Widened once, so each row is read once for both its dot product and its norm.
    let text_wide: Vec<f64> = text.iter().map(|&x| x as f64).collect();
    let mut logits = Vec::with_capacity(n);
    let mut max_logit = f64::NEG_INFINITY;
    for row in visual.chunks_exact(dim) {
        let (dot, square) = L::dot_and_square_f64(row, &text_wide);
        let logit = scale * (dot / (square.sqrt().max(NORM_EPS) * text_norm));
        max_logit = max_logit.max(logit);
        logits.push(logit);
    }
    if !max_logit.is_finite() {
        // NaN or Inf in the inputs: the softmax is undefined, say so rather than write NaNs.
        return Err(OpError::BadArgument);
    }
    let mut total = 0.0f64;
    for logit in logits.iter_mut() {
        *logit = (*logit - max_logit).exp();
        total += *logit;
    }
    for (p, e) in out.iter_mut().zip(logits.iter()) {
        *p = (*e / total) as f32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::Scalar;

    #[test]
    fn probabilities_sum_to_one_and_follow_the_cosine() {
        // Three tokens: aligned with the text, orthogonal, opposite.
        let visual = [1.0f32, 0.0, 0.0, 2.0, -3.0, 0.0];
        let text = [2.0f32, 0.0];
        let mut p = [0.0f32; 3];
        relevance::<Scalar>(&visual, &text, 2, 100.0, &mut p).unwrap();
        let z = 1.0 + (-100.0f64).exp() + (-200.0f64).exp();
        assert!((p[0] as f64 - 1.0 / z).abs() < 1e-7);
        // exp(-100) ≈ 3.7e-44 is an f32 subnormal: exact to within one subnormal step (1.4e-45).
        assert!((p[1] as f64 - (-100.0f64).exp() / z).abs() <= 1.5e-45);
        assert!((p[0] + p[1] + p[2] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn shapes_are_checked() {
        let mut p = [0.0f32; 2];
        assert_eq!(relevance::<Scalar>(&[1.0; 5], &[1.0; 2], 2, 100.0, &mut p), Err(OpError::BadShape));
        assert_eq!(relevance::<Scalar>(&[f32::NAN; 4], &[1.0; 2], 2, 100.0, &mut p), Err(OpError::BadArgument));
    }
}
