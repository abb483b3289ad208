//! Data movement and the small element-wise family: strided copies (what makes views, concat and KV-cache writes
//! possible), embedding lookup, add/mul with a broadcast row block, and the CLIP patch embedding.

use crate::convert::Element;
use crate::gemm::{gemm, Matrix};
use crate::lanes::Lanes;
use crate::OpError;

/// Most axes a strided copy handles; views of the model never need more than 6.
pub const MAX_DIMS: usize = 8;

/// The last element index a (shape, strides) view reaches, + 1; None on overflow. 0 for an empty shape.
pub fn extent(shape: &[usize], strides: &[usize]) -> Option<usize> {
    if shape.iter().any(|&n| n == 0) {
        return Some(0);
    }
    let mut last = 0usize;
    for (&n, &s) in shape.iter().zip(strides.iter()) {
        last = last.checked_add((n - 1).checked_mul(s)?)?;
    }
    last.checked_add(1)
}

/// dst[index·dst_strides] = src[index·src_strides] for every index of `shape`, widening src to f32 (or copying
/// u16 bits as they are, through the `Copy` variant below).
pub fn copy_strided<S: Copy, D: Copy>(
    shape: &[usize],
    src: &[S],
    src_strides: &[usize],
    dst: &mut [D],
    dst_strides: &[usize],
    convert: impl Fn(S) -> D,
) -> Result<(), OpError> {
    let dims = shape.len();
    if dims == 0 || dims > MAX_DIMS || src_strides.len() != dims || dst_strides.len() != dims {
        return Err(OpError::BadShape);
    }
    let (src_end, dst_end) = match (extent(shape, src_strides), extent(shape, dst_strides)) {
        (Some(a), Some(b)) => (a, b),
        _ => return Err(OpError::BadShape),
    };
    if src_end > src.len() || dst_end > dst.len() {
        return Err(OpError::BadShape);
    }
    if src_end == 0 {
        return Ok(());
    }
    let inner = shape[dims - 1];
    let (si, di) = (src_strides[dims - 1], dst_strides[dims - 1]);
    let mut index = [0usize; MAX_DIMS];
    loop {
        let (mut so, mut d_o) = (0, 0);
        for a in 0..dims - 1 {
            so += index[a] * src_strides[a];
            d_o += index[a] * dst_strides[a];
        }
        if si == 1 && di == 1 {
            for (d, &s) in dst[d_o..d_o + inner].iter_mut().zip(src[so..so + inner].iter()) {
                *d = convert(s);
            }
        } else {
            for e in 0..inner {
                dst[d_o + e * di] = convert(src[so + e * si]);
            }
        }
        // Odometer over the outer axes.
        let mut a = dims - 1;
        loop {
            if a == 0 {
                return Ok(());
            }
            a -= 1;
            index[a] += 1;
            if index[a] < shape[a] {
                break;
            }
            index[a] = 0;
        }
    }
}

/// out (ids, dim) = table[id] rows, widened to f32. An id outside the table is BadArgument.
pub fn embedding<E: Element>(table: &[E], dim: usize, ids: &[i32], out: &mut [f32]) -> Result<(), OpError> {
    if dim == 0 || table.len() % dim != 0 || out.len() != ids.len() * dim {
        return Err(OpError::BadShape);
    }
    let rows = table.len() / dim;
    for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(dim)) {
        if id < 0 || id as usize >= rows {
            return Err(OpError::BadArgument);
        }
        for (d, s) in dst.iter_mut().zip(table[id as usize * dim..(id as usize + 1) * dim].iter()) {
            *d = s.to_f32();
        }
    }
    Ok(())
}

/// out[r, :] = a[r, :] ∘ b[r mod b_rows, :], a and out (rows, dim), b (b_rows, dim) with rows a multiple of
/// b_rows: covers same-shape operands, one broadcast row (a bias), and a repeated block (position embeddings over
/// frames, time embeddings in patch-major/time-minor order).
pub fn broadcast_binary<L: Lanes>(a: &[f32], b: &[f32], dim: usize, multiply: bool, out: &mut [f32]) -> Result<(), OpError> {
    if dim == 0 || a.len() % dim != 0 || b.len() % dim != 0 || out.len() != a.len() || b.is_empty() {
        return Err(OpError::BadShape);
    }
    let b_rows = b.len() / dim;
    if (a.len() / dim) % b_rows != 0 {
        return Err(OpError::BadShape);
    }
    for (r, (src, dst)) in a.chunks_exact(dim).zip(out.chunks_exact_mut(dim)).enumerate() {
        let row = &b[(r % b_rows) * dim..(r % b_rows + 1) * dim];
        if multiply {
            L::mul(src, row, dst)
        } else {
            L::add(src, row, dst)
        }
    }
    Ok(())
}

/// out (outer, inner) = mean over the middle axis of x (outer, n, inner), summed in f64 and rounded once (the
/// BT-Adapter's CLS averaged over frames).
pub fn mean_axis(x: &[f32], outer: usize, n: usize, inner: usize, out: &mut [f32]) -> Result<(), OpError> {
    let len = outer.checked_mul(n).and_then(|a| a.checked_mul(inner)).ok_or(OpError::BadShape)?;
    if n == 0 || x.len() != len || out.len() != outer * inner {
        return Err(OpError::BadShape);
    }
    let mut sums = vec![0.0f64; inner];
    for o in 0..outer {
        sums.iter_mut().for_each(|s| *s = 0.0);
        for row in x[o * n * inner..(o + 1) * n * inner].chunks_exact(inner) {
            for (s, &v) in sums.iter_mut().zip(row.iter()) {
                *s += v as f64;
            }
        }
        for (d, s) in out[o * inner..(o + 1) * inner].iter_mut().zip(sums.iter()) {
            *d = (*s / n as f64) as f32;
        }
    }
    Ok(())
}

/// out = factor · x (one rounding).
pub fn scale(x: &[f32], factor: f32, out: &mut [f32]) -> Result<(), OpError> {
    if x.len() != out.len() {
        return Err(OpError::BadShape);
    }
    if !factor.is_finite() {
        return Err(OpError::BadArgument);
    }
    for (d, &v) in out.iter_mut().zip(x.iter()) {
        *d = v * factor;
    }
    Ok(())
}

/// Conv2d with kernel = stride = `patch`, no padding, no bias (CLIP's patch embedding), as im2col + matmul.
/// pixels: (images, channels, height, width); weight: (out_dim, channels, patch, patch);
/// out: (images, (height/patch)·(width/patch), out_dim), patches row-major over the grid.
pub fn patch_embed<L: Lanes, E: Element>(
    pixels: &[f32],
    images: usize,
    channels: usize,
    height: usize,
    width: usize,
    patch: usize,
    weight: &[E],
    out_dim: usize,
    out: &mut [f32],
) -> Result<(), OpError> {
    if patch == 0 || channels == 0 || height < patch || width < patch {
        return Err(OpError::BadShape);
    }
    let (gh, gw) = (height / patch, width / patch);
    let k = channels * patch * patch;
    if pixels.len() != images * channels * height * width || weight.len() != out_dim * k || out.len() != images * gh * gw * out_dim {
        return Err(OpError::BadShape);
    }
    let mut columns = vec![0.0f32; gh * gw * k];
    for image in 0..images {
        let src = &pixels[image * channels * height * width..];
        for py in 0..gh {
            for px in 0..gw {
                let row = &mut columns[(py * gw + px) * k..][..k];
                for c in 0..channels {
                    for y in 0..patch {
                        let from = (c * height + py * patch + y) * width + px * patch;
                        row[(c * patch + y) * patch..][..patch].copy_from_slice(&src[from..from + patch]);
                    }
                }
            }
        }
        let a = Matrix { data: &columns, rows: gh * gw, cols: k, rs: k, cs: 1 };
        let b = Matrix { data: weight, rows: k, cols: out_dim, rs: 1, cs: k };
        gemm::<L, E>(a, b, None, &mut out[image * gh * gw * out_dim..][..gh * gw * out_dim], out_dim, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_copy_transposes() {
        let src: Vec<f32> = (0..6).map(|i| i as f32).collect();
        let mut dst = vec![0.0f32; 6];
        // src (2,3) read transposed as (3,2).
        copy_strided(&[3, 2], &src, &[1, 3], &mut dst, &[2, 1], |x| x).unwrap();
        assert_eq!(dst, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(copy_strided(&[3, 2], &src, &[1, 4], &mut dst, &[2, 1], |x| x), Err(OpError::BadShape));
    }
}
