//! Matrix product with explicit strides: C = A·B (+ bias per column) (+ C when accumulating), f32 activations and
//! f32/f16/bf16 weights.
//!
//! Blocked the BLIS way: B is packed in KC×NC blocks of NR-wide column panels (widened to f32 while packing, so
//! half-precision weights cost nothing extra in the inner loop), A in MC×KC blocks of MR-tall row panels, and the
//! `Lanes::gemm_tile` register tile (MR×NR) runs over the packed panels. Strides make every transpose free:
//! `x·Wᵀ` reads W (N×K, row-major) as B with row stride 1 and column stride K.
//!
//! `x·Wᵀ` with f32 W (the linear layers) skips packing: up to GEMV_ROWS rows of x dot eight weight rows at a time
//! (`Lanes::dot8_rows_f32`, decoding), more rows run 4×2 dot tiles over blocks of weight rows (`dot_tiles`,
//! prefill, K ≥ DOT_MIN_K). Both keep four interleaved partial sums per output and reduce them the same way, so a
//! prefill row has the bits of the decode step that computes it.
//!
//! Sums are in f32 (in k order within a KC block, or in four interleaved partial sums on the x·Wᵀ paths); the error
//! bound is the usual K·ε·Σ|a·b| (tests compare against a float64 reference relative to Σ|a·b|).

use crate::convert::Element;
use crate::lanes::{pack_quad, Lanes, MR, NR};
use crate::OpError;

const KC: usize = 256;
const MC: usize = 64;
const NC: usize = 512;
/// Up to this many rows of A, x·Wᵀ reads each weight row once and dots it with every row of A (decoding is m = 1):
/// packing would cost as much memory traffic as the product itself.
const GEMV_ROWS: usize = 4;
/// f32 x·Wᵀ with at least this K runs as dot tiles over W rows (`dot_tiles`) instead of packing: at 7B shapes the
/// packing copy and the splat-per-k register tile cost more than the dot tiles' final horizontal sums.
const DOT_MIN_K: usize = 64;
/// Weight rows per block of `dot_tiles` (32 rows of K = 4096 f32 are 512 KB: they stay in L2 while every x row
/// passes).
const DOT_ROWS: usize = 32;

/// A strided matrix view: element (i, j) is data[i·rs + j·cs].
#[derive(Clone, Copy)]
pub struct Matrix<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Matrix<'a, T> {
    /// Whether every element the shape names lies inside `data` (an empty matrix always fits).
    pub fn fits(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1).checked_mul(self.rs).and_then(|r| (self.cols - 1).checked_mul(self.cs).and_then(|c| r.checked_add(c)));
        matches!(last, Some(last) if last < self.data.len())
    }
}

/// Reusable packing buffers (one per call is fine; the allocations are small next to the work).
struct Packs {
    a: Vec<f32>,
    b: Vec<f32>,
}

/// c (m×n, row stride c_rs, column stride 1) = a (m×k) · b (k×n) + bias (n), or += when `accumulate`.
pub fn gemm<L: Lanes, B: Element>(
    a: Matrix<f32>,
    b: Matrix<B>,
    bias: Option<&[f32]>,
    c: &mut [f32],
    c_rs: usize,
    accumulate: bool,
) -> Result<(), OpError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k || !a.fits() || !b.fits() || bias.map_or(false, |bias| bias.len() < n) {
        return Err(OpError::BadShape);
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let c_needed = (m - 1).checked_mul(c_rs).and_then(|x| x.checked_add(n));
    if c_rs < n || !matches!(c_needed, Some(len) if len <= c.len()) {
        return Err(OpError::BadShape);
    }
    // Initialise C: bias (or zero) unless accumulating; the k blocks then add into it.
    if !accumulate {
        for i in 0..m {
            let row = &mut c[i * c_rs..i * c_rs + n];
            match bias {
                Some(bias) => row.copy_from_slice(&bias[..n]),
                None => row.iter_mut().for_each(|x| *x = 0.0),
            }
        }
    } else if let Some(bias) = bias {
        for i in 0..m {
            L::add(&c[i * c_rs..i * c_rs + n].to_vec(), &bias[..n], &mut c[i * c_rs..i * c_rs + n]);
        }
    }
    if k == 0 {
        return Ok(());
    }
    if m <= GEMV_ROWS && b.rs == 1 && a.cs == 1 {
        gemv::<L, B>(&a, &b, c, c_rs);
        return Ok(());
    }
    if b.rs == 1 && a.cs == 1 && k >= DOT_MIN_K {
        if let Some(w) = B::as_f32(b.data) {
            dot_tiles::<L>(&a, w, b.cs, n, c, c_rs);
            return Ok(());
        }
    }
    // Sized to this product, not to the block limits: attention runs thousands of small ones.
    let kc_max = KC.min(k);
    let mut packs = Packs { a: vec![0.0; round_up(MC.min(m), MR) * kc_max], b: vec![0.0; kc_max * round_up(NC.min(n), NR)] };
    let mut jc = 0;
    while jc < n {
        let nc = NC.min(n - jc);
        let mut pc = 0;
        while pc < k {
            let kc = KC.min(k - pc);
            pack_b::<L, B>(&b, pc, kc, jc, nc, &mut packs.b);
            let mut ic = 0;
            while ic < m {
                let mc = MC.min(m - ic);
                pack_a(&a, ic, mc, pc, kc, &mut packs.a);
                block::<L>(mc, nc, kc, &packs.a, &packs.b, &mut c[ic * c_rs + jc..], c_rs);
                ic += mc;
            }
            pc += kc;
        }
        jc += nc;
    }
    Ok(())
}

/// C[i, j] += ⟨A[i, :], B[:, j]⟩ for B with unit row stride (a weight matrix W read as Wᵀ: column j = row j of W).
fn gemv<L: Lanes, B: Element>(a: &Matrix<f32>, b: &Matrix<B>, c: &mut [f32], c_rs: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut scratch = if B::as_f32(&b.data[..0]).is_some() { Vec::new() } else { vec![0.0f32; k] };
    let mut j0 = 0;
    if let Some(w) = B::as_f32(b.data) {
        // f32 weights: eight rows at a time (measured 1.2–1.5× the four-row loop at 7B shapes: more streams in
        // flight), x read once per step for all eight.
        while j0 + 8 <= n {
            let rows = &w[j0 * b.cs..];
            for i in 0..m {
                let out = L::dot8_rows_f32(&a.data[i * a.rs..][..k], rows, b.cs);
                for (r, &v) in out.iter().enumerate() {
                    c[i * c_rs + j0 + r] += v;
                }
            }
            j0 += 8;
        }
        // The last n mod 8 rows in pairs, with the same sums (so every row has the bits of the dot tiles).
        while j0 < n {
            let two = j0 + 2 <= n;
            for i in 0..m {
                let out = L::dot8_rows_pair(&a.data[i * a.rs..][..k], &w[j0 * b.cs..], if two { b.cs } else { 0 });
                c[i * c_rs + j0] += out[0];
                if two {
                    c[i * c_rs + j0 + 1] += out[1];
                }
            }
            j0 += if two { 2 } else { 1 };
        }
    }
    for j in j0..n {
        let row = &b.data[j * b.cs..][..k];
        for i in 0..m {
            c[i * c_rs + j] += B::dot::<L>(&a.data[i * a.rs..][..k], row, &mut scratch);
        }
    }
}

/// C[i, j] += ⟨A[i, :], W[j, :]⟩ for f32 W (n rows of k, row stride w_rs) without packing: blocks of DOT_ROWS
/// weight rows (kept in L2) against every quad of x rows (packed once, `pack_quad`), 4×2 dot tiles inside. Each element has the bits of the
/// matrix–vector path (`dot8_rows_f32`), so a prefill row equals the decode step that computes the same row.
fn dot_tiles<L: Lanes>(a: &Matrix<f32>, w: &[f32], w_rs: usize, n: usize, c: &mut [f32], c_rs: usize) {
    let (m, k) = (a.rows, a.cols);
    // Each quad of x rows packed once (all of them: m·k values, small next to the m·n·k product).
    let quads = m / 4;
    let mut packed = vec![0.0f32; quads * 4 * k];
    for q in 0..quads {
        pack_quad(&a.data[4 * q * a.rs..], a.rs, k, &mut packed[4 * q * k..4 * (q + 1) * k]);
    }
    let mut jb = 0;
    while jb < n {
        let nb = DOT_ROWS.min(n - jb);
        let mut i = 0;
        while i < m {
            if i + 4 <= m {
                let xp = &packed[i * k..(i + 4) * k];
                let mut j = jb;
                while j + 2 <= jb + nb {
                    let out = L::dot_tile_4x2_packed(xp, &w[j * w_rs..], w_rs, k);
                    for (e, &v) in out.iter().enumerate() {
                        c[(i + e / 2) * c_rs + j + e % 2] += v;
                    }
                    j += 2;
                }
                if j < jb + nb {
                    for r in 0..4 {
                        c[(i + r) * c_rs + j] += L::dot8_rows_pair(&a.data[(i + r) * a.rs..][..k], &w[j * w_rs..], 0)[0];
                    }
                }
                i += 4;
            } else {
                // The last m mod 4 rows: pairs of weight rows, the same sums.
                let x = &a.data[i * a.rs..][..k];
                let mut j = jb;
                while j < jb + nb {
                    let two = j + 2 <= jb + nb;
                    let out = L::dot8_rows_pair(x, &w[j * w_rs..], if two { w_rs } else { 0 });
                    c[i * c_rs + j] += out[0];
                    if two {
                        c[i * c_rs + j + 1] += out[1];
                    }
                    j += 2;
                }
                i += 1;
            }
        }
        jb += nb;
    }
}

fn round_up(x: usize, to: usize) -> usize {
    (x + to - 1) / to * to
}

/// Packs rows [i0, i0+mc) × cols [k0, k0+kc) of A into MR-tall panels, each stored k-major (kc × MR), zero-padded.
fn pack_a(a: &Matrix<f32>, i0: usize, mc: usize, k0: usize, kc: usize, out: &mut [f32]) {
    let mut o = 0;
    let mut i = 0;
    while i < mc {
        let rows = MR.min(mc - i);
        for kk in 0..kc {
            let base = (k0 + kk) * a.cs;
            for r in 0..MR {
                out[o + r] = if r < rows { a.data[(i0 + i + r) * a.rs + base] } else { 0.0 };
            }
            o += MR;
        }
        i += MR;
    }
}

/// Packs rows [k0, k0+kc) × cols [j0, j0+nc) of B into NR-wide panels, each stored k-major (kc × NR), widened to
/// f32 and zero-padded.
fn pack_b<L: Lanes, B: Element>(b: &Matrix<B>, k0: usize, kc: usize, j0: usize, nc: usize, out: &mut [f32]) {
    let mut o = 0;
    let mut j = 0;
    let f32_rows = if b.rs == 1 { B::as_f32(b.data) } else { None };
    while j < nc {
        let cols = NR.min(nc - j);
        if let (Some(w), true) = (f32_rows, cols == NR) {
            // f32 weights as x·Wᵀ: NR rows of W transposed in registers (a quarter of the scalar loop's time).
            L::pack_rows(&w[(j0 + j) * b.cs + k0..], b.cs, kc, &mut out[o..o + kc * NR]);
            o += kc * NR;
        } else if b.rs == 1 && cols == NR {
            // Weights as x·Wᵀ: walk each W row (contiguous in k) once per column of the panel.
            for c in 0..NR {
                let row = &b.data[(j0 + j + c) * b.cs + k0..][..kc];
                for (kk, &w) in row.iter().enumerate() {
                    out[o + kk * NR + c] = w.to_f32();
                }
            }
            o += kc * NR;
        } else if b.cs == 1 && cols == NR {
            // Row-major B (activations, V in attention): NR contiguous values per k.
            for kk in 0..kc {
                let src = &b.data[(k0 + kk) * b.rs + j0 + j..][..NR];
                for (d, s) in out[o..o + NR].iter_mut().zip(src.iter()) {
                    *d = s.to_f32();
                }
                o += NR;
            }
        } else {
            for kk in 0..kc {
                let base = (k0 + kk) * b.rs;
                for c in 0..NR {
                    out[o + c] = if c < cols { b.data[base + (j0 + j + c) * b.cs].to_f32() } else { 0.0 };
                }
                o += NR;
            }
        }
        j += NR;
    }
}

/// C[mc×nc] += packed A · packed B, tile by tile.
fn block<L: Lanes>(mc: usize, nc: usize, kc: usize, a: &[f32], b: &[f32], c: &mut [f32], c_rs: usize) {
    let mut acc = [0.0f32; MR * NR];
    let mut j = 0;
    while j < nc {
        let cols = NR.min(nc - j);
        let bp = &b[(j / NR) * kc * NR..];
        let mut i = 0;
        while i < mc {
            let rows = MR.min(mc - i);
            L::gemm_tile(kc, &a[(i / MR) * kc * MR..], bp, &mut acc);
            for r in 0..rows {
                let row = &mut c[(i + r) * c_rs + j..][..cols];
                let tile = &acc[r * NR..r * NR + cols];
                for (x, &t) in row.iter_mut().zip(tile.iter()) {
                    *x += t;
                }
            }
            i += MR;
        }
        j += NR;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::Bf16;
    use crate::lanes::Scalar;

    fn naive(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] as f64 * b[j * k + p] as f64).sum();
            }
        }
        c
    }

    #[test]
    fn linear_with_transposed_weights_matches_naive_on_odd_sizes() {
        for &(m, n, k) in &[(1, 1, 1), (5, 9, 3), (67, 13, 300), (3, 530, 17)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 23) as f32 / 7.0 - 1.5).collect();
            let w: Vec<f32> = (0..n * k).map(|i| ((i * 104729) % 31) as f32 / 11.0 - 1.3).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.25).collect();
            let mut c = vec![0.0f32; m * n];
            let am = Matrix { data: &a, rows: m, cols: k, rs: k, cs: 1 };
            let bm = Matrix { data: &w, rows: k, cols: n, rs: 1, cs: k };
            gemm::<Scalar, f32>(am, bm, Some(&bias), &mut c, n, false).unwrap();
            let expected = naive(&a, &w, m, n, k);
            for i in 0..m * n {
                let e = expected[i] + bias[i % n] as f64;
                assert!((c[i] as f64 - e).abs() <= 1e-5 * (1.0 + e.abs()), "{} vs {}", c[i], e);
            }
        }
    }

    #[test]
    fn bf16_weights_equal_their_f32_widening() {
        let (m, n, k) = (6, 10, 20);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.01).collect();
        let bits: Vec<Bf16> = (0..n * k).map(|i| Bf16(0x3f80 + (i as u16 % 50))).collect();
        let widened: Vec<f32> = bits.iter().map(|b| b.to_f32()).collect();
        let (mut c1, mut c2) = (vec![0.0f32; m * n], vec![0.0f32; m * n]);
        let am = Matrix { data: &a, rows: m, cols: k, rs: k, cs: 1 };
        gemm::<Scalar, Bf16>(am, Matrix { data: &bits, rows: k, cols: n, rs: 1, cs: k }, None, &mut c1, n, false).unwrap();
        gemm::<Scalar, f32>(am, Matrix { data: &widened, rows: k, cols: n, rs: 1, cs: k }, None, &mut c2, n, false).unwrap();
        assert_eq!(c1, c2);
    }

    #[test]
    fn decode_shaped_products_take_the_gemv_path_and_agree() {
        let (k, n) = (37, 11);
        let a: Vec<f32> = (0..3 * k).map(|i| (i % 13) as f32 - 6.0).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let bias: Vec<f32> = (0..n).map(|j| j as f32).collect();
        let mut c = vec![0.0f32; 3 * n];
        let am = Matrix { data: &a, rows: 3, cols: k, rs: k, cs: 1 };
        gemm::<Scalar, f32>(am, Matrix { data: &w, rows: k, cols: n, rs: 1, cs: k }, Some(&bias), &mut c, n, false).unwrap();
        let expected = naive(&a, &w, 3, n, k);
        for i in 0..3 * n {
            // Small integers: every partial sum is exact.
            assert_eq!(c[i] as f64, expected[i] + bias[i % n] as f64);
        }
        // bf16 weights through the fused dot: the same bits as f32 weights holding the same values.
        let bits: Vec<Bf16> = w.iter().map(|&x| Bf16((x.to_bits() >> 16) as u16)).collect();
        let mut c16 = vec![0.0f32; 3 * n];
        gemm::<Scalar, Bf16>(am, Matrix { data: &bits, rows: k, cols: n, rs: 1, cs: k }, Some(&bias), &mut c16, n, false).unwrap();
        assert_eq!(c16, c);
    }

    #[test]
    fn prefill_rows_have_the_bits_of_decode_rows() {
        // Dot tiles (m > 4, f32 W) against the matrix–vector path one row at a time: quads and leftover x rows,
        // pairs and an odd weight row, a k tail.
        let (m, n, k) = (7, 11, 70);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 101) as f32 / 37.0 - 1.3).collect();
        let w: Vec<f32> = (0..n * k).map(|i| ((i * 104729) % 97) as f32 / 41.0 - 1.1).collect();
        let bm = Matrix { data: &w, rows: k, cols: n, rs: 1, cs: k };
        let mut all = vec![0.0f32; m * n];
        gemm::<Scalar, f32>(Matrix { data: &a, rows: m, cols: k, rs: k, cs: 1 }, bm, None, &mut all, n, false).unwrap();
        for i in 0..m {
            let mut row = vec![0.0f32; n];
            let am = Matrix { data: &a[i * k..(i + 1) * k], rows: 1, cols: k, rs: k, cs: 1 };
            gemm::<Scalar, f32>(am, bm, None, &mut row, n, false).unwrap();
            assert_eq!(&all[i * n..(i + 1) * n], &row[..], "row {}", i);
        }
    }

    #[test]
    fn out_of_bounds_views_are_refused() {
        let a = [0.0f32; 4];
        let mut c = [0.0f32; 4];
        let am = Matrix { data: &a, rows: 2, cols: 3, rs: 2, cs: 1 };
        let bm = Matrix { data: &a, rows: 3, cols: 2, rs: 1, cs: 1 };
        assert_eq!(gemm::<Scalar, f32>(am, bm, None, &mut c, 2, false), Err(OpError::BadShape));
    }
}
