//! Element-wise activations, each computed in f64 from the f32 input and rounded once (≤ 1 ulp):
//!
//!   gelu(x)       = x · Φ(x) = x/2 · (1 + erf(x/√2))        exact (erf) GELU, the projector's "gelu"
//!   quick_gelu(x) = x · σ(1.702·x)                         CLIP's activation
//!   silu(x)       = x · σ(x)                               LLaMA/Qwen2 gate
//!   gelu_tanh(x)  = x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))   SigLIP's "gelu_pytorch_tanh" (f64, one rounding)
//!
//! quick_gelu and silu are the hot ones (every CLIP / LLaMA MLP element): they run in f32 with the SIMD exp of
//! `Lanes::exp_shifted` (σ(t) = 1/(1 + e^{−|t|}) or e^{−|t|}/(1 + e^{−|t|}), ~4 ulp in all) and fall back to f64
//! where e^{−|t|} leaves the normal range. gelu stays in f64 (one rounding).
//!
//! Rust's std has no erf, so `erf`/`erfc` are here: a positive-term series for |z| < 3 and a continued fraction for
//! the tail, both good to ~1e-15 relative. They are too slow per element (~40 terms), so `gelu` goes through
//! `ScaledErfc`: R(z) = e^{z²}·erfc(z), smooth and between 0.04 and 1 on [0, 14], tabulated from the exact erfc
//! with its exact derivative R' = 2zR − 2/√π and read by cubic Hermite interpolation (relative error < 2e-9);
//! then Φ(x) = ½e^{−z²}R(z) (x ≤ 0, z = −x/√2) or 1 − ½e^{−z²}R(z) (x > 0, z = x/√2). This keeps gelu's relative
//! error small even far into the negative tail (x·Φ(x) for x = −8 is ~5e-15 and still a normal f32).

use crate::lanes::{Lanes, EXP_MIN};
use crate::OpError;

const FRAC_2_SQRT_PI: f64 = 1.128_379_167_095_512_6;

/// erf(z) for |z| < 3: 2/√π · e^{−z²} · Σ_{n≥0} 2ⁿ z^{2n+1} / (1·3·…·(2n+1)); every term is positive (no cancellation).
fn erf_series(z: f64) -> f64 {
    let z2 = z * z;
    let mut term = z;
    let mut sum = z;
    let mut n = 0.0;
    while term.abs() > 1e-17 * sum.abs() {
        n += 1.0;
        term *= 2.0 * z2 / (2.0 * n + 1.0);
        sum += term;
    }
    FRAC_2_SQRT_PI * (-z2).exp() * sum
}

/// erfc(z) for z ≥ 3: e^{−z²}/√π / (z + (1/2)/(z + 1/(z + (3/2)/(z + …)))), evaluated bottom-up.
fn erfc_fraction(z: f64) -> f64 {
    let mut tail = z;
    for n in (1..=60).rev() {
        tail = z + (n as f64 / 2.0) / tail;
    }
    (-z * z).exp() / (core::f64::consts::PI.sqrt() * tail)
}

pub fn erf(z: f64) -> f64 {
    if z.is_nan() {
        return z;
    }
    if z.abs() < 3.0 {
        erf_series(z)
    } else {
        z.signum() * (1.0 - erfc_fraction(z.abs()))
    }
}

pub fn erfc(z: f64) -> f64 {
    if z.is_nan() {
        return z;
    }
    if z >= 3.0 {
        erfc_fraction(z)
    } else if z > -3.0 {
        1.0 - erf_series(z)
    } else {
        2.0 - erfc_fraction(-z)
    }
}

/// Standard normal CDF Φ(x) = erfc(−x/√2)/2 (the erfc form keeps relative accuracy for very negative x).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x * core::f64::consts::FRAC_1_SQRT_2)
}

/// Cubic Hermite table of R(z) = e^{z²}·erfc(z) on [0, Z_MAX] with step 1/STEPS.
pub struct ScaledErfc {
    values: Vec<f64>,
    slopes: Vec<f64>,
}

const Z_MAX: f64 = 14.0;
const STEPS: f64 = 64.0;

impl ScaledErfc {
    pub fn new() -> ScaledErfc {
        let count = (Z_MAX * STEPS) as usize + 2;
        let mut values = Vec::with_capacity(count);
        let mut slopes = Vec::with_capacity(count);
        for i in 0..count {
            let z = i as f64 / STEPS;
            let r = (z * z).exp() * erfc(z);
            values.push(r);
            slopes.push(2.0 * z * r - FRAC_2_SQRT_PI);
        }
        ScaledErfc { values, slopes }
    }

    /// R(z) for z ≥ 0: the table up to Z_MAX, the asymptotic series beyond (relative error < 1e-10 there).
    pub fn get(&self, z: f64) -> f64 {
        if z >= Z_MAX {
            let w = 1.0 / (z * z);
            return (1.0 - 0.5 * w * (1.0 - 1.5 * w * (1.0 - 2.5 * w * (1.0 - 3.5 * w)))) / (z * core::f64::consts::PI.sqrt());
        }
        let u = z * STEPS;
        let i = u as usize;
        let t = u - i as f64;
        let h = 1.0 / STEPS;
        let (t2, t3) = (t * t, t * t * t);
        (2.0 * t3 - 3.0 * t2 + 1.0) * self.values[i]
            + (t3 - 2.0 * t2 + t) * h * self.slopes[i]
            + (3.0 * t2 - 2.0 * t3) * self.values[i + 1]
            + (t3 - t2) * h * self.slopes[i + 1]
    }

    /// x·Φ(x).
    pub fn gelu(&self, x: f64) -> f64 {
        if x.is_nan() {
            return x;
        }
        let z = x.abs() * core::f64::consts::FRAC_1_SQRT_2;
        let tail = 0.5 * (-z * z).exp() * self.get(z);
        if x <= 0.0 {
            x * tail
        } else {
            x * (1.0 - tail)
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Gelu,
    QuickGelu,
    Silu,
    GeluTanh,
}

impl Activation {
    pub fn from_code(code: i32) -> Option<Activation> {
        match code {
            0 => Some(Activation::Gelu),
            1 => Some(Activation::QuickGelu),
            2 => Some(Activation::Silu),
            3 => Some(Activation::GeluTanh),
            _ => None,
        }
    }
}

/// Elements per chunk of the f32 sigmoid path (a stack buffer for the exponentials).
const CHUNK: usize = 256;

/// out[i] = x[i] · σ(a·x[i]) · (up[i] when given), in f32 through `L::exp_shifted`.
fn sigmoid_weighted<L: Lanes>(x: &[f32], a: f64, up: Option<&[f32]>, out: &mut [f32]) {
    let (mut e, mut residue) = ([0.0f32; CHUNK], [0.0f32; CHUNK]);
    for (c, (xs, ys)) in x.chunks(CHUNK).zip(out.chunks_mut(CHUNK)).enumerate() {
        let e = &mut e[..xs.len()];
        // −|a·x| in f64, split into its f32 rounding and the residue: e^{hi + lo} = e^{hi}·(1 + lo) to ~1e-14, so
        // the error does not grow with |a·x| (exp turns an argument's absolute error into a relative one).
        for ((d, r), &v) in e.iter_mut().zip(residue.iter_mut()).zip(xs.iter()) {
            let t = -(a * v as f64).abs();
            *d = t as f32;
            *r = (t - *d as f64) as f32;
        }
        L::exp_shifted(e, 0.0);
        for (i, (y, &v)) in ys.iter_mut().zip(xs.iter()).enumerate() {
            e[i] *= 1.0 + residue[i];
            let t = (a * v as f64) as f32;
            let gate = if -(t.abs()) >= EXP_MIN {
                let s = if t >= 0.0 { 1.0 / (1.0 + e[i]) } else { e[i] / (1.0 + e[i]) };
                v * s
            } else {
                // e^{−|t|} is subnormal or 0 in f32: the exact value, once rounded.
                (v as f64 * sigmoid(a * v as f64)) as f32
            };
            *y = match up {
                Some(up) => gate * up[c * CHUNK + i],
                None => gate,
            };
        }
    }
}

/// gelu(x) = x·Φ(x) with Φ from `ScaledErfc`: e^{−z²} (z = |x|/√2) by `L::exp_shifted` on the f32 rounding of −z²
/// times (1 + residue), R(z) from the table in f64; ~3e-7 relative. Where e^{−z²} leaves the normal f32 range
/// (|x| > 13.2) the f64 path is used (for x > 0 that is x itself, to f32 precision).
fn gelu<L: Lanes>(x: &[f32], out: &mut [f32]) {
    // Building the table costs ~900 erfc evaluations: nothing next to a tensor, and no global state.
    let table = ScaledErfc::new();
    let (mut e, mut residue) = ([0.0f32; CHUNK], [0.0f32; CHUNK]);
    for (xs, ys) in x.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
        let e = &mut e[..xs.len()];
        for ((d, r), &v) in e.iter_mut().zip(residue.iter_mut()).zip(xs.iter()) {
            let t = -0.5 * (v as f64) * (v as f64);
            *d = t as f32;
            *r = (t - *d as f64) as f32;
        }
        L::exp_shifted(e, 0.0);
        for (i, (y, &v)) in ys.iter_mut().zip(xs.iter()).enumerate() {
            let v = v as f64;
            let z = v.abs() * core::f64::consts::FRAC_1_SQRT_2;
            *y = if -(z * z) >= EXP_MIN as f64 {
                let tail = 0.5 * (e[i] as f64) * (1.0 + residue[i] as f64) * table.get(z);
                (if v <= 0.0 { v * tail } else { v * (1.0 - tail) }) as f32
            } else {
                table.gelu(v) as f32
            };
        }
    }
}

/// out[i] = act(x[i]); lengths must match (out may not alias x).
pub fn activate<L: Lanes>(act: Activation, x: &[f32], out: &mut [f32]) -> Result<(), OpError> {
    if x.len() != out.len() {
        return Err(OpError::BadShape);
    }
    match act {
        Activation::Silu => sigmoid_weighted::<L>(x, 1.0, None, out),
        Activation::QuickGelu => sigmoid_weighted::<L>(x, 1.702, None, out),
        Activation::Gelu => gelu::<L>(x, out),
        Activation::GeluTanh => {
            const K: f64 = 0.797_884_560_802_865_4; // √(2/π)
            for (y, &v) in out.iter_mut().zip(x.iter()) {
                let v = v as f64;
                *y = (0.5 * v * (1.0 + (K * (v + 0.044_715 * v * v * v)).tanh())) as f32;
            }
        }
    }
    Ok(())
}

/// The gated MLP's inner product: out[i] = silu(gate[i]) · up[i] (LLaMA).
pub fn silu_mul<L: Lanes>(gate: &[f32], up: &[f32], out: &mut [f32]) -> Result<(), OpError> {
    if gate.len() != out.len() || up.len() != out.len() {
        return Err(OpError::BadShape);
    }
    sigmoid_weighted::<L>(gate, 1.0, Some(up), out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // Values from Abramowitz & Stegun table 7.1 / Wolfram (to 15 digits).
        let cases = [
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (2.9, 0.999_958_902_121_900_1),
        ];
        for (z, e) in cases {
            assert!((erf(z) - e).abs() < 1e-15, "erf({z}) = {} vs {e}", erf(z));
            assert!((erf(-z) + e).abs() < 1e-15);
        }
        // erfc(3) = 2.209049699858544e-05, erfc(5) = 1.537459794428035e-12
        assert!((erfc(3.0) / 2.209_049_699_858_544e-5 - 1.0).abs() < 1e-13);
        assert!((erfc(5.0) / 1.537_459_794_428_035e-12 - 1.0).abs() < 1e-13);
        assert!((erfc(-5.0) - (2.0 - 1.537_459_794_428_035e-12)).abs() < 1e-15);
    }

    #[test]
    fn f32_activations_stay_within_a_few_ulp_of_f64() {
        use crate::lanes::Scalar;
        let x: Vec<f32> = (0..40_000).map(|i| -120.0 + i as f32 * 0.006_1).collect();
        let mut y = vec![0.0f32; x.len()];
        let exact: [(Activation, fn(f64) -> f64); 3] = [
            (Activation::Gelu, |v| v * normal_cdf(v)),
            (Activation::QuickGelu, |v| v * sigmoid(1.702 * v)),
            (Activation::Silu, |v| v * sigmoid(v)),
        ];
        for (act, f) in exact {
            activate::<Scalar>(act, &x, &mut y).unwrap();
            for (&v, &got) in x.iter().zip(y.iter()) {
                let e = f(v as f64);
                // 5e-7 relative, or the f32 subnormal step where the value underflows.
                assert!((got as f64 - e).abs() <= 5e-7 * e.abs() + 1.5e-45, "{act:?}({v}) = {got}, exact {e}");
            }
        }
    }

    #[test]
    fn tabulated_gelu_matches_the_exact_one() {
        let table = ScaledErfc::new();
        let mut worst = 0.0f64;
        let mut x = -20.0;
        while x <= 20.0 {
            let exact = x * normal_cdf(x);
            if exact != 0.0 {
                worst = worst.max((table.gelu(x) - exact).abs() / exact.abs());
            }
            x += 0.001_37;
        }
        // Measured 1.8e-9 (Hermite with step 1/64); f32 output rounding is 6e-8.
        assert!(worst < 5e-9, "worst relative error {worst}");
    }
}
