//! Rotary position embedding, LLaMA's rotate-half convention (HF `apply_rotary_pos_emb`):
//!
//!   inv_freq[i] = θ^(−2i/d), i < d/2;   a = pos · inv_freq[i]
//!   y[i]       = x[i]·cos a − x[i + d/2]·sin a
//!   y[i + d/2] = x[i + d/2]·cos a + x[i]·sin a
//!
//! for a tensor (seq, heads, d) whose row s sits at position `offset + s`. Angles and products are in f64, rounded
//! once. (HF computes inv_freq and the angle in f32; the difference grows with the position, ~1e-7·pos radians.)

use crate::OpError;

/// x: (seq, heads, d) with strides (seq_stride, head_stride, 1); out: (seq, heads, d) contiguous.
pub fn rope(
    x: &[f32],
    seq: usize,
    heads: usize,
    d: usize,
    seq_stride: usize,
    head_stride: usize,
    offset: usize,
    theta: f64,
    out: &mut [f32],
) -> Result<(), OpError> {
    if d == 0 || d % 2 != 0 || out.len() != seq * heads * d {
        return Err(OpError::BadShape);
    }
    if seq > 0 && heads > 0 {
        let last = (seq - 1).checked_mul(seq_stride).and_then(|a| (heads - 1).checked_mul(head_stride).and_then(|b| a.checked_add(b)))
            .and_then(|a| a.checked_add(d));
        if !matches!(last, Some(last) if last <= x.len()) {
            return Err(OpError::BadShape);
        }
    }
    if !(theta > 0.0) || !theta.is_finite() {
        return Err(OpError::BadArgument);
    }
    let half = d / 2;
    let inv_freq: Vec<f64> = (0..half).map(|i| theta.powf(-2.0 * i as f64 / d as f64)).collect();
    let mut cos = vec![0.0f64; half];
    let mut sin = vec![0.0f64; half];
    for s in 0..seq {
        let pos = (offset + s) as f64;
        for i in 0..half {
            let (sn, cs) = (pos * inv_freq[i]).sin_cos();
            cos[i] = cs;
            sin[i] = sn;
        }
        for h in 0..heads {
            let src = &x[s * seq_stride + h * head_stride..][..d];
            let dst = &mut out[(s * heads + h) * d..][..d];
            for i in 0..half {
                let (a, b) = (src[i] as f64, src[i + half] as f64);
                dst[i] = (a * cos[i] - b * sin[i]) as f32;
                dst[i + half] = (b * cos[i] + a * sin[i]) as f32;
            }
        }
    }
    Ok(())
}
