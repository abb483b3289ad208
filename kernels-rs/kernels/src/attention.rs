//! Exports of attention and RoPE (`ops::attention`, `ops::rope`).

use crate::abi::{slice, slice_mut, status, STATUS_BAD_ARGUMENT, STATUS_BAD_SHAPE};
use crate::dispatch::with_lanes;
use ops::attention::{attention, Heads, OutLayout};
use ops::layout::extent;

/// Scaled dot-product attention over strided (batch, heads, seq, d) views whose last axis is contiguous:
/// q (batch, hq, sq, d), k and v (batch, hkv, skv, d), out written at out[b·o_sb + h·o_sh + s·o_ss + e].
/// hq must be a multiple of hkv (GQA); causal ≠ 0 lets query i see keys j ≤ i + skv − sq.
///
/// # Safety
/// The pointers must come from `ppl_alloc` and cover the views.
#[no_mangle]
pub unsafe extern "C" fn ppl_attention_sdpa(
    batch: usize,
    hq: usize,
    hkv: usize,
    sq: usize,
    skv: usize,
    d: usize,
    q: *const f32,
    q_sb: usize,
    q_sh: usize,
    q_ss: usize,
    k: *const f32,
    k_sb: usize,
    k_sh: usize,
    k_ss: usize,
    v: *const f32,
    v_sb: usize,
    v_sh: usize,
    v_ss: usize,
    out: *mut f32,
    o_sb: usize,
    o_sh: usize,
    o_ss: usize,
    scale: f32,
    causal: i32,
    simd: i32,
) -> i32 {
    let lens = (
        extent(&[batch, hq, sq, d], &[q_sb, q_sh, q_ss, 1]),
        extent(&[batch, hkv, skv, d], &[k_sb, k_sh, k_ss, 1]),
        extent(&[batch, hkv, skv, d], &[v_sb, v_sh, v_ss, 1]),
        extent(&[batch, hq, sq, d], &[o_sb, o_sh, o_ss, 1]),
    );
    let (ql, kl, vl, ol) = match lens {
        (Some(a), Some(b), Some(c), Some(d)) => (a.max(1), b.max(1), c.max(1), d.max(1)),
        _ => return STATUS_BAD_SHAPE,
    };
    let (q, k, v, out) = match (slice(q, ql), slice(k, kl), slice(v, vl), slice_mut(out, ol)) {
        (Some(q), Some(k), Some(v), Some(out)) => (q, k, v, out),
        _ => return STATUS_BAD_ARGUMENT,
    };
    let q = Heads { data: q, batch, heads: hq, seq: sq, d, sb: q_sb, sh: q_sh, ss: q_ss };
    let k = Heads { data: k, batch, heads: hkv, seq: skv, d, sb: k_sb, sh: k_sh, ss: k_ss };
    let v = Heads { data: v, batch, heads: hkv, seq: skv, d, sb: v_sb, sh: v_sh, ss: v_ss };
    let layout = OutLayout { ob: o_sb, oh: o_sh, os: o_ss };
    with_lanes!(simd, L => status(attention::<L>(q, k, v, out, layout, scale, causal != 0)))
}

/// RoPE (rotate-half) of x (seq, heads, d) with strides (seq_stride, head_stride, 1) into out (seq, heads, d)
/// contiguous; row s is at position offset + s.
///
/// # Safety
/// x must cover the view; out must hold seq·heads·d f32.
#[no_mangle]
pub unsafe extern "C" fn ppl_attention_rope(
    x: *const f32,
    seq: usize,
    heads: usize,
    d: usize,
    seq_stride: usize,
    head_stride: usize,
    offset: usize,
    theta: f64,
    out: *mut f32,
) -> i32 {
    let len = match ops::layout::extent(&[seq, heads, d], &[seq_stride, head_stride, 1]) {
        Some(len) => len,
        None => return STATUS_BAD_SHAPE,
    };
    match (slice(x, len.max(1)), slice_mut(out, seq * heads * d)) {
        (Some(x), Some(out)) => status(ops::rope::rope(x, seq, heads, d, seq_stride, head_stride, offset, theta, out)),
        _ => STATUS_BAD_ARGUMENT,
    }
}
