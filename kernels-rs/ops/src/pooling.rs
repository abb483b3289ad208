//! The weighted 3-D pooling of prompt-guided pooling (spec §3.4 step E, `weighted_adaptive_avg_pool3d_unfold`):
//!
//!   O_a = floor((I_a − k_a)/s_a) + 1 for a ∈ (t, h, w)
//!   for every output cell (i, j, l) with window W = [s_t·i, s_t·i + k_t) × [s_h·j, …) × [s_w·l, …):
//!     α = softmax_{n ∈ W}( p[n] / τ )                 the second softmax, of the relevance *probabilities*
//!     y[i, j, l, :] = Σ_{n ∈ W} α[n] · x[n, :]
//!
//! x is channels-last (T, H, W, C) as the projector leaves it; y is (O_t, O_h, O_w, C), time slowest (step F).
//! The window weights are computed in f64 (|W| values per cell), the weighted sum in f32 (axpy).

use crate::lanes::Lanes;
use crate::OpError;

#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub kernel: [usize; 3],
    pub stride: [usize; 3],
}

/// Output extent per axis, or BadShape when an axis is shorter than its kernel (PyTorch's unfold errors too).
pub fn output_size(input: [usize; 3], window: Window) -> Result<[usize; 3], OpError> {
    let mut out = [0; 3];
    for a in 0..3 {
        let (i, k, s) = (input[a], window.kernel[a], window.stride[a]);
        if k == 0 || s == 0 || i < k {
            return Err(OpError::BadShape);
        }
        out[a] = (i - k) / s + 1;
    }
    Ok(out)
}

/// x: (T, H, W, C); p: (T, H, W) or None for uniform weights; out: (O_t, O_h, O_w, C).
pub fn weighted_pool<L: Lanes>(
    x: &[f32],
    p: Option<&[f32]>,
    input: [usize; 3],
    channels: usize,
    window: Window,
    tau: f64,
    out: &mut [f32],
) -> Result<(), OpError> {
    let [t, h, w] = input;
    let cells = t.checked_mul(h).and_then(|a| a.checked_mul(w)).ok_or(OpError::BadShape)?;
    let o = output_size(input, window)?;
    if channels == 0 || x.len() != cells * channels || p.map_or(false, |p| p.len() != cells) || out.len() != o[0] * o[1] * o[2] * channels {
        return Err(OpError::BadShape);
    }
    if !(tau > 0.0) || !tau.is_finite() {
        return Err(OpError::BadArgument);
    }
    let [kt, kh, kw] = window.kernel;
    let [st, sh, sw] = window.stride;
    let size = kt * kh * kw;
    let mut index = vec![0usize; size];
    let mut alpha = vec![0.0f64; size];
    for i in 0..o[0] {
        for j in 0..o[1] {
            for l in 0..o[2] {
                let mut n = 0;
                for dt in 0..kt {
                    for dh in 0..kh {
                        for dw in 0..kw {
                            index[n] = ((st * i + dt) * h + sh * j + dh) * w + sw * l + dw;
                            n += 1;
                        }
                    }
                }
                match p {
                    Some(p) => {
                        let mut max = f64::NEG_INFINITY;
                        for n in 0..size {
                            alpha[n] = p[index[n]] as f64 / tau;
                            max = max.max(alpha[n]);
                        }
                        if !max.is_finite() {
                            return Err(OpError::BadArgument);
                        }
                        let mut total = 0.0;
                        for a in alpha.iter_mut() {
                            *a = (*a - max).exp();
                            total += *a;
                        }
                        alpha.iter_mut().for_each(|a| *a /= total);
                    }
                    None => alpha.iter_mut().for_each(|a| *a = 1.0 / size as f64),
                }
                let cell = ((i * o[1] + j) * o[2] + l) * channels;
                let y = &mut out[cell..cell + channels];
                y.iter_mut().for_each(|v| *v = 0.0);
                for n in 0..size {
                    L::axpy(alpha[n] as f32, &x[index[n] * channels..(index[n] + 1) * channels], y);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::Scalar;

    #[test]
    fn sizes_follow_the_spec() {
        let video = Window { kernel: [2, 3, 3], stride: [2, 3, 3] };
        assert_eq!(output_size([32, 24, 24], video), Ok([16, 8, 8]));
        assert_eq!(output_size([33, 24, 24], video), Ok([16, 8, 8]));
        assert_eq!(output_size([1, 24, 24], video), Err(OpError::BadShape));
    }

    #[test]
    fn uniform_weights_average() {
        let x: Vec<f32> = (0..2 * 3 * 3).map(|i| i as f32).collect();
        let mut y = [0.0f32];
        weighted_pool::<Scalar>(&x, None, [2, 3, 3], 1, Window { kernel: [2, 3, 3], stride: [2, 3, 3] }, 0.01, &mut y).unwrap();
        assert!((y[0] - 8.5).abs() < 1e-5);
    }
}
