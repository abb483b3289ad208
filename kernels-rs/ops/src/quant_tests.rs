//! Quantisation against a float64 reference: the round trip stays inside the format's bound, and both product
//! methods stay inside the bound of the error they add, on random shapes (k not a multiple of 32 or of 4, m = 1,
//! n = 1), all-zero groups and non-finite inputs.

use super::*;

/// xorshift32 with values in [−1, 1).
struct Rng(u32);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 as f64 / 4294967296.0 * 2.0 - 1.0) as f32
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.next() as f64 + 1.0) / 2.0 * n as f64) as usize % n
    }
}

fn quantized(format: Format, w: &[f32], n: usize, k: usize) -> Vec<u32> {
    // u32 storage keeps the buffer 4-byte aligned.
    let mut buf = vec![0u32; (quant_bytes(format, n, k).unwrap() + 3) / 4];
    // SAFETY: u32 → u8 view of the same allocation.
    let bytes = unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut u8, buf.len() * 4) };
    quantize(format, w, n, k, bytes).unwrap();
    buf
}

fn bytes(buf: &[u32]) -> &[u8] {
    // SAFETY: u32 → u8 view of the same allocation.
    unsafe { core::slice::from_raw_parts(buf.as_ptr() as *const u8, buf.len() * 4) }
}

fn dequantized(format: Format, buf: &[u32], n: usize, k: usize) -> Vec<f32> {
    let q = QuantMatrix::from_bytes(format, n, k, bytes(buf)).unwrap();
    let mut out = vec![0.0; n * k];
    dequantize_rows(&q, None, &mut out).unwrap();
    out
}

/// Per-element bound of the round trip for a group with largest magnitude `absmax`: q8 rounds to the nearest of
/// steps absmax/127 (error ≤ half a step); q4's steps are absmax/8 and the value +absmax, which clamps from code 8
/// to 7, is off by one full step, so its bound is absmax/8. A little f32 slack covers the division.
fn round_trip_bound(format: Format, absmax: f32) -> f64 {
    let step = match format {
        Format::Q8 => absmax as f64 / 127.0 / 2.0,
        Format::Q4 => absmax as f64 / 8.0,
    };
    step * (1.0 + 1e-6) + absmax as f64 * 1e-7
}

#[test]
fn round_trip_stays_inside_the_format_bound() {
    let mut rng = Rng(7);
    for format in [Format::Q8, Format::Q4] {
        for &(n, k) in &[(1usize, 1usize), (3, 32), (5, 33), (2, 95), (4, 64), (1, 1000)] {
            let mut w: Vec<f32> = (0..n * k).map(|_| rng.next() * 3.0).collect();
            // An all-zero group and a group with a single outlier.
            if k >= 64 {
                for v in &mut w[..32] {
                    *v = 0.0;
                }
                w[40] = 1e4;
            }
            let back = dequantized(format, &quantized(format, &w, n, k), n, k);
            for r in 0..n {
                for g in 0..groups(k) {
                    let part = r * k + g * GROUP..r * k + (g * GROUP + GROUP).min(k);
                    let absmax = w[part.clone()].iter().fold(0.0f32, |a, &v| a.max(v.abs()));
                    for i in part {
                        let err = (w[i] as f64 - back[i] as f64).abs();
                        assert!(err <= round_trip_bound(format, absmax), "{format:?} ({n},{k}) [{i}]: {} → {}", w[i], back[i]);
                    }
                }
            }
            if k >= 64 {
                assert!(back[..32].iter().all(|&v| v == 0.0), "an all-zero group comes back as zeros");
            }
        }
    }
}

#[test]
fn q4_gives_the_extreme_value_exactly_and_packs_nibbles() {
    let mut w = [0.0f32; 32];
    w[0] = -2.0;
    w[16] = 1.0;
    w[17] = 2.0;
    let buf = quantized(Format::Q4, &w, 1, 32);
    let b = bytes(&buf);
    // d = −2/−8 = 0.25: element 0 → code −8 (stored 0), 16 → 4 (stored 12), 17 → 8 clamped to 7 (stored 15).
    assert_eq!(b[0], 0 | (12 << 4));
    assert_eq!(b[1], 8 | (15 << 4));
    assert_eq!(f32::from_le_bytes([b[16], b[17], b[18], b[19]]), 0.25);
    let back = dequantized(Format::Q4, &buf, 1, 32);
    assert_eq!((back[0], back[16], back[17]), (-2.0, 1.0, 1.75));
}

#[test]
fn non_finite_values_are_refused_not_panics() {
    for format in [Format::Q8, Format::Q4] {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut w = vec![0.5f32; 64];
            w[37] = bad;
            let mut out = vec![0u32; quant_bytes(format, 1, 64).unwrap() / 4];
            let bytes = unsafe { core::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u8, out.len() * 4) };
            assert_eq!(quantize(format, &w, 1, 64, bytes), Err(OpError::BadArgument));
            let buf = quantized(format, &[0.5f32; 64], 2, 32);
            let q = QuantMatrix::from_bytes(format, 2, 32, super::tests::bytes(&buf)).unwrap();
            let mut x = vec![1.0f32; 32];
            x[3] = bad;
            let mut y = [0.0f32; 2];
            assert_eq!(matmul::<ScalarQuant>(Method::Int8, &x, 1, 32, &q, None, &mut y, 2), Err(OpError::BadArgument));
        }
    }
}

#[test]
fn shapes_and_ids_are_checked() {
    let buf = quantized(Format::Q8, &[1.0f32; 64], 2, 32);
    assert!(QuantMatrix::from_bytes(Format::Q8, 3, 32, bytes(&buf)).is_err());
    let q = QuantMatrix::from_bytes(Format::Q8, 2, 32, bytes(&buf)).unwrap();
    let mut out = [0.0f32; 32];
    assert_eq!(dequantize_rows(&q, Some(&[2]), &mut out), Err(OpError::BadArgument));
    assert_eq!(dequantize_rows(&q, Some(&[-1]), &mut out), Err(OpError::BadArgument));
    let mut y = [0.0f32; 2];
    assert_eq!(matmul::<ScalarQuant>(Method::F32, &[1.0; 31], 1, 32, &q, None, &mut y, 2), Err(OpError::BadShape));
    let mut small = [0u8; 10];
    assert_eq!(quantize(Format::Q8, &[1.0f32; 64], 2, 32, &mut small), Err(OpError::BadShape));
}

#[test]
fn products_match_a_float64_reference_within_their_bounds() {
    let mut rng = Rng(12345);
    for case in 0..40 {
        let (m, n, k) = match case {
            0 => (1, 1, 1),
            1 => (1, 7, 4096 / 16),
            2 => (3, 1, 33),
            _ => (1 + rng.below(6), 1 + rng.below(9), 1 + rng.below(200)),
        };
        let format = if case % 2 == 0 { Format::Q8 } else { Format::Q4 };
        let x_rs = k + case % 3;
        let x: Vec<f32> = (0..m * x_rs).map(|_| rng.next() * 4.0).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.next()).collect();
        let bias: Vec<f32> = (0..n).map(|_| rng.next()).collect();
        let buf = quantized(format, &w, n, k);
        let wd = dequantized(format, &buf, n, k);
        let q = QuantMatrix::from_bytes(format, n, k, bytes(&buf)).unwrap();
        for method in [Method::Int8, Method::F32] {
            let mut y = vec![f32::NAN; m * n];
            matmul::<ScalarQuant>(method, &x, m, x_rs, &q, Some(&bias), &mut y, n).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let (mut exact, mut magnitude, mut act_err) = (bias[j] as f64, bias[j].abs() as f64, 0.0f64);
                    for g in 0..groups(k) {
                        let range = g * GROUP..(g * GROUP + GROUP).min(k);
                        let absmax = range.clone().fold(0.0f32, |a, t| a.max(x[i * x_rs + t].abs())) as f64;
                        for t in range {
                            let (xv, wv) = (x[i * x_rs + t] as f64, wd[j * k + t] as f64);
                            exact += xv * wv;
                            magnitude += (xv * wv).abs();
                            // Int8 rounds each activation to a step of absmax/127: error ≤ half a step times |ŵ|.
                            act_err += absmax / 127.0 / 2.0 * (1.0 + 1e-6) * wv.abs();
                        }
                    }
                    let f32_err = (k as f64 + 2.0) * f32::EPSILON as f64 * (magnitude + act_err);
                    let bound = if method == Method::Int8 { act_err + f32_err } else { f32_err };
                    let got = y[i * n + j] as f64;
                    assert!((got - exact).abs() <= bound, "{method:?} {format:?} ({m},{n},{k}) [{i},{j}]: {got} vs {exact} (bound {bound})");
                }
            }
        }
    }
}

/// The bytes of quantising each row alone (a one-row weight is stored plainly): the plain row order of files.
fn plain_rows(format: Format, w: &[f32], n: usize, k: usize) -> Vec<u8> {
    let (g, cb) = (groups(k), format.group_code_bytes());
    let (mut codes, mut scales) = (Vec::new(), Vec::new());
    for r in 0..n {
        let buf = quantized(format, &w[r * k..(r + 1) * k], 1, k);
        let b = bytes(&buf);
        codes.extend_from_slice(&b[..g * cb]);
        scales.extend_from_slice(&b[g * cb..g * (cb + 4)]);
    }
    codes.extend_from_slice(&scales);
    codes
}

#[test]
fn blocks_of_four_rows_interleave_their_groups_and_relayout_is_exact() {
    let mut rng = Rng(99);
    for format in [Format::Q8, Format::Q4] {
        for &(n, k) in &[(4usize, 32usize), (7, 65), (8, 100), (9, 1), (3, 64)] {
            let w: Vec<f32> = (0..n * k).map(|_| rng.next()).collect();
            let buf = quantized(format, &w, n, k);
            let total = quant_bytes(format, n, k).unwrap();
            let memory = bytes(&buf)[..total].to_vec();
            let plain = plain_rows(format, &w, n, k);
            // Where row_groups says each group of each row is, the plain bytes are.
            let (g, cb) = (groups(k), format.group_code_bytes());
            for r in 0..n {
                let (first, step) = row_groups(n, g, r);
                assert_eq!(step, if r < n - n % ROW_BLOCK { ROW_BLOCK } else { 1 });
                for gi in 0..g {
                    let (at, from) = (first + gi * step, r * g + gi);
                    assert_eq!(memory[at * cb..][..cb], plain[from * cb..][..cb], "{format:?} ({n},{k}) row {r} group {gi}");
                    assert_eq!(memory[n * g * cb + at * 4..][..4], plain[n * g * cb + from * 4..][..4]);
                }
            }
            let mut there = memory.clone();
            relayout(format, n, k, &mut there, false).unwrap();
            assert_eq!(there, plain, "{format:?} ({n},{k}) to files");
            relayout(format, n, k, &mut there, true).unwrap();
            assert_eq!(there, memory, "{format:?} ({n},{k}) back");
        }
    }
    assert_eq!(relayout(Format::Q4, 4, 32, &mut [0u8; 79], true), Err(OpError::BadShape));
}

#[test]
fn a_blocked_row_gives_the_bits_of_the_same_row_stored_alone() {
    // Every path of the int8 product (prefill blocks, decode blocks, the plain tail) and the f32 one, against each row
    // quantised as a one-row weight: the layout moves bytes, never changes a sum.
    let mut rng = Rng(4242);
    for format in [Format::Q8, Format::Q4] {
        for &(m, n, k) in &[(1usize, 9usize, 100usize), (2, 8, 64), (5, 6, 33), (4, 4, 32)] {
            let w: Vec<f32> = (0..n * k).map(|_| rng.next()).collect();
            let x: Vec<f32> = (0..m * k).map(|_| rng.next() * 2.0).collect();
            let buf = quantized(format, &w, n, k);
            let q = QuantMatrix::from_bytes(format, n, k, bytes(&buf)).unwrap();
            for method in [Method::Int8, Method::F32] {
                let mut y = vec![f32::NAN; m * n];
                matmul::<ScalarQuant>(method, &x, m, k, &q, None, &mut y, n).unwrap();
                for j in 0..n {
                    let one = quantized(format, &w[j * k..(j + 1) * k], 1, k);
                    let qj = QuantMatrix::from_bytes(format, 1, k, bytes(&one)).unwrap();
                    let mut yj = vec![f32::NAN; m];
                    matmul::<ScalarQuant>(method, &x, m, k, &qj, None, &mut yj, 1).unwrap();
                    for i in 0..m {
                        assert_eq!(y[i * n + j].to_bits(), yj[i].to_bits(), "{method:?} {format:?} ({m},{n},{k}) [{i},{j}]");
                    }
                }
            }
        }
    }
}
