//! Multi-head scaled dot-product attention, full or causal, with grouped-query heads (GQA):
//!
//!   out[b, i, h] = Σ_j softmax_j( scale · ⟨q[b, h, i], k[b, g(h), j]⟩ ) · v[b, g(h), j]     g(h) = h / (Hq/Hkv)
//!
//! Causal masking lets query i see keys j ≤ i + (Skv − Sq): with a KV cache holding Skv − Sq earlier positions,
//! the Sq new queries sit at the end. Each (b, h) is done with the packed matmul in blocks of QB queries:
//! logits = Q·Kᵀ, a row softmax, then out = P·V. Every tensor is a strided view whose last axis is contiguous, so
//! the q/k/v projections (seq, heads·d) and a KV cache (heads, capacity, d) are read where they lie.

use crate::gemm::{gemm, Matrix};
use crate::lanes::Lanes;
use crate::softmax::softmax_row;
use crate::OpError;

/// Queries per block: bounds the logits scratch to QB × Skv floats.
const QB: usize = 64;

/// A 4-D view (batch, heads, seq, d) with element (b, h, s, e) at data[b·sb + h·sh + s·ss + e].
#[derive(Clone, Copy)]
pub struct Heads<'a> {
    pub data: &'a [f32],
    pub batch: usize,
    pub heads: usize,
    pub seq: usize,
    pub d: usize,
    pub sb: usize,
    pub sh: usize,
    pub ss: usize,
}

impl<'a> Heads<'a> {
    fn fits(&self) -> bool {
        if self.batch == 0 || self.heads == 0 || self.seq == 0 || self.d == 0 {
            return true;
        }
        let last = (self.batch - 1)
            .checked_mul(self.sb)
            .and_then(|a| (self.heads - 1).checked_mul(self.sh).and_then(|b| a.checked_add(b)))
            .and_then(|a| (self.seq - 1).checked_mul(self.ss).and_then(|b| a.checked_add(b)))
            .and_then(|a| a.checked_add(self.d));
        matches!(last, Some(last) if last <= self.data.len())
    }

    fn matrix(&self, b: usize, h: usize, s0: usize, rows: usize) -> Matrix<'a, f32> {
        let base = b * self.sb + h * self.sh + s0 * self.ss;
        Matrix { data: &self.data[base..], rows, cols: self.d, rs: self.ss, cs: 1 }
    }
}

/// Output layout: (batch, heads, seq, d) at out[b·ob + h·oh + s·os + e] (strides in elements).
#[derive(Clone, Copy)]
pub struct OutLayout {
    pub ob: usize,
    pub oh: usize,
    pub os: usize,
}

pub fn attention<L: Lanes>(
    q: Heads,
    k: Heads,
    v: Heads,
    out: &mut [f32],
    layout: OutLayout,
    scale: f32,
    causal: bool,
) -> Result<(), OpError> {
    let (batch, hq, sq, d) = (q.batch, q.heads, q.seq, q.d);
    let (hkv, skv) = (k.heads, k.seq);
    if k.batch != batch || v.batch != batch || v.heads != hkv || v.seq != skv || k.d != d || v.d != d {
        return Err(OpError::BadShape);
    }
    if hkv == 0 || hq % hkv != 0 || (causal && sq > skv) || !q.fits() || !k.fits() || !v.fits() {
        return Err(OpError::BadShape);
    }
    if !scale.is_finite() {
        return Err(OpError::BadArgument);
    }
    if batch == 0 || hq == 0 || sq == 0 || d == 0 {
        return Ok(());
    }
    let out_last = (batch - 1) * layout.ob + (hq - 1) * layout.oh + (sq - 1) * layout.os + d;
    if out_last > out.len() || layout.os < d {
        return Err(OpError::BadShape);
    }
    let group = hq / hkv;
    let past = skv - sq.min(skv);
    let mut logits = vec![0.0f32; QB.min(sq) * skv];
    for b in 0..batch {
        for h in 0..hq {
            let g = h / group;
            let mut i0 = 0;
            while i0 < sq {
                let rows = QB.min(sq - i0);
                // Keys any query of this block may see: all of them, or up to the last query's causal limit.
                let visible = if causal { (i0 + rows + past).min(skv) } else { skv };
                let scores = &mut logits[..rows * visible];
                let kt = {
                    let m = k.matrix(b, g, 0, visible);
                    Matrix { data: m.data, rows: d, cols: visible, rs: 1, cs: k.ss }
                };
                gemm::<L, f32>(q.matrix(b, h, i0, rows), kt, None, scores, visible, false)?;
                for r in 0..rows {
                    let row = &mut scores[r * visible..(r + 1) * visible];
                    let len = if causal { (i0 + r + past + 1).min(visible) } else { visible };
                    row[..len].iter_mut().for_each(|x| *x *= scale);
                    softmax_row::<L>(row, len);
                }
                let p = Matrix { data: &*scores, rows, cols: visible, rs: visible, cs: 1 };
                let base = b * layout.ob + h * layout.oh + i0 * layout.os;
                gemm::<L, f32>(p, v.matrix(b, g, 0, visible), None, &mut out[base..], layout.os, false)?;
                i0 += rows;
            }
        }
    }
    Ok(())
}
