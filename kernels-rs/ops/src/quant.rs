//! Group-wise symmetric int8 ("q8") and int4 ("q4") weights and the matrix products over them
//! (format: docs/quantization.md).
//!
//! A weight W (N, K) is cut along K into groups of [`GROUP`] values (the last one zero-padded when K is not a
//! multiple); each group stores one f32 scale d and 32 integer codes q, and stands for the values d·q. The buffer is
//! two planes: first the codes of every group, then the scales (f32), both in the same group order: rows in blocks of
//! [`ROW_BLOCK`] with the block's groups interleaved (group 0 of its four rows, then group 1, …), the last
//! n mod [`ROW_BLOCK`] rows one after another ([`row_groups`]; files keep plain row order, [`relayout`]). q8 codes
//! are i8 in [−127, 127] with d = absmax/127; q4 codes are 4-bit in [−8, 7] with d = m/−8 where m is the value of
//! largest magnitude (ggml's q4_0 trick, which gives the extreme value the code −8 exactly), stored offset by 8 as
//! nibbles: byte j of a group holds element j in its low nibble and element j + 16 in its high nibble, so one 16-byte
//! load yields the whole group with an AND and a shift.
//!
//! Products: `matmul` computes y (M, N) = x (M, K) · Ŵᵀ (+ bias), with Ŵ the dequantised weights, by one of two
//! methods (`Method`): `Int8` quantises each 32-value group of x to int8 as well (d_x = absmax/127, the activation
//! half of ggml's q8_0 · q8_0) and sums integer products exactly in i32 before scaling by d_x·d_w; `F32` widens the
//! codes to f32 in registers and multiplies them with x as is. Int8 is the faster one and adds the activation
//! rounding error |x − d_x·q_x| ≤ d_x/2 per element; F32 is exact up to f32 summation.
//!
//! Non-finite inputs are refused with `BadArgument` (a NaN or ±∞ weight has no scale; a NaN activation would make
//! every group scale NaN): quantisation checks the weights, the Int8 method checks x while quantising it.

use crate::convert::Element;
use crate::OpError;

/// Values per group (one scale each).
pub const GROUP: usize = 32;
/// From this many rows of x on, the int8 product widens each block of weight rows to i16 once and reuses it.
const WIDEN_ROWS: usize = 4;
/// Weight rows stored together, their groups interleaved: the products take four rows at a time, and reading them as
/// one run of memory instead of four runs 2 KB apart streams 1.3–1.6× faster (docs/quantization.md, "Layout").
pub const ROW_BLOCK: usize = 4;

/// The two code widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Q8,
    Q4,
}

/// How `matmul` treats the activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Quantise x per group to int8, integer dot products (i32x4.dot_i16x8 on SIMD).
    Int8,
    /// Dequantise weights in registers, f32 products with x as given.
    F32,
}

impl Format {
    /// Bytes of codes per group.
    pub fn group_code_bytes(self) -> usize {
        match self {
            Format::Q8 => GROUP,
            Format::Q4 => GROUP / 2,
        }
    }
}

/// Groups per row of length k (the last one padded).
pub fn groups(k: usize) -> usize {
    (k + GROUP - 1) / GROUP
}

/// Bytes of one row's codes.
pub fn row_code_bytes(format: Format, k: usize) -> usize {
    groups(k) * format.group_code_bytes()
}

/// Where row r of a weight of n rows and g groups per row keeps its groups, counted in groups from the start of
/// either plane: (its first group, the step between two of its groups). A row of a whole block of [`ROW_BLOCK`] rows
/// steps over the block's other rows; the last n mod [`ROW_BLOCK`] rows are stored plainly, one after another.
pub fn row_groups(n: usize, g: usize, r: usize) -> (usize, usize) {
    let blocked = n - n % ROW_BLOCK;
    if r < blocked {
        (r / ROW_BLOCK * ROW_BLOCK * g + r % ROW_BLOCK, ROW_BLOCK)
    } else {
        (r * g, 1)
    }
}

/// Total bytes of a quantised (n, k) weight: codes plane then scales plane; None on overflow.
pub fn quant_bytes(format: Format, n: usize, k: usize) -> Option<usize> {
    let g = groups(k);
    n.checked_mul(g)?.checked_mul(format.group_code_bytes() + 4)
}

/// A quantised weight (n rows of k logical values) over its buffer.
#[derive(Clone, Copy)]
pub struct QuantMatrix<'a> {
    pub format: Format,
    pub rows: usize,
    pub cols: usize,
    pub codes: &'a [u8],
    pub scales: &'a [f32],
}

impl<'a> QuantMatrix<'a> {
    /// Splits a buffer of `quant_bytes(format, rows, cols)` bytes (4-byte aligned) into its two planes.
    pub fn from_bytes(format: Format, rows: usize, cols: usize, bytes: &'a [u8]) -> Result<Self, OpError> {
        let total = quant_bytes(format, rows, cols).ok_or(OpError::BadShape)?;
        if bytes.len() < total || (bytes.as_ptr() as usize) % 4 != 0 {
            return Err(OpError::BadShape);
        }
        let code_bytes = rows * row_code_bytes(format, cols);
        let (codes, rest) = bytes.split_at(code_bytes);
        let count = rows * groups(cols);
        // SAFETY: rest starts 4-byte aligned (code bytes are a multiple of 16 and the buffer is aligned) and holds
        // at least `count` f32 (total − code_bytes = 4·count).
        let scales = unsafe { core::slice::from_raw_parts(rest.as_ptr() as *const f32, count) };
        Ok(QuantMatrix { format, rows, cols, codes, scales })
    }

    /// Row r's groups (see [`row_groups`]).
    pub fn row(&self, r: usize) -> QuantRow<'a> {
        let (g, cb) = (groups(self.cols), self.format.group_code_bytes());
        let (first, step) = row_groups(self.rows, g, r);
        // From its first group to its last, inclusive.
        let span = if g == 0 { 0 } else { (g - 1) * step + 1 };
        QuantRow {
            codes: &self.codes[first * cb..(first + span) * cb],
            scales: &self.scales[first..first + span],
            step,
            groups: g,
        }
    }

    /// The codes and scales of the whole block of rows j0..j0 + 4 (j0 a multiple of 4 inside the blocked rows), as the
    /// block stores them: group gi of row j0 + r at codes[(gi·4 + r)·cb..][..cb] and scales[gi·4 + r].
    fn block(&self, j0: usize) -> (&'a [u8], &'a [f32]) {
        let (g, cb) = (groups(self.cols), self.format.group_code_bytes());
        (&self.codes[j0 * g * cb..(j0 + ROW_BLOCK) * g * cb], &self.scales[j0 * g..(j0 + ROW_BLOCK) * g])
    }
}

/// One weight row inside a quantised buffer: its group gi has the codes `codes[gi·step·cb..][..cb]` (cb bytes per
/// group) and the scale `scales[gi·step]`.
#[derive(Clone, Copy)]
pub struct QuantRow<'a> {
    pub codes: &'a [u8],
    pub scales: &'a [f32],
    /// 1 for a row stored plainly, [`ROW_BLOCK`] inside a block.
    pub step: usize,
    pub groups: usize,
}

impl QuantRow<'_> {
    #[inline(always)]
    pub fn scale(&self, gi: usize) -> f32 {
        self.scales[gi * self.step]
    }
}

/// Rearranges a quantised (n, k) buffer in place between plain row order (rows one after another in both planes: the
/// order of files, `ppllava convert`) and the order in memory ([`row_groups`]): `to_memory` true from the first to the
/// second. Only whole blocks move, each within its own bytes, so no buffer of the weight's size is needed.
pub fn relayout(format: Format, n: usize, k: usize, bytes: &mut [u8], to_memory: bool) -> Result<(), OpError> {
    let total = quant_bytes(format, n, k).ok_or(OpError::BadShape)?;
    if k == 0 || bytes.len() < total {
        return Err(OpError::BadShape);
    }
    let (g, cb) = (groups(k), format.group_code_bytes());
    let (codes, scales) = bytes[..total].split_at_mut(n * g * cb);
    let mut scratch = Vec::with_capacity(ROW_BLOCK * g * cb);
    for b in 0..n / ROW_BLOCK {
        for (plane, unit) in [(&mut *codes, cb), (&mut *scales, 4)] {
            let block = &mut plane[b * ROW_BLOCK * g * unit..(b + 1) * ROW_BLOCK * g * unit];
            scratch.clear();
            scratch.extend_from_slice(block);
            for r in 0..ROW_BLOCK {
                for gi in 0..g {
                    let (plain, blocked) = ((r * g + gi) * unit, (gi * ROW_BLOCK + r) * unit);
                    let (to, from) = if to_memory { (blocked, plain) } else { (plain, blocked) };
                    block[to..to + unit].copy_from_slice(&scratch[from..from + unit]);
                }
            }
        }
    }
    Ok(())
}

/// Code and scale of one group of ≤ 32 values (missing ones count as 0). Err on a non-finite value.
fn quantize_group(format: Format, values: &[f32], codes: &mut [u8]) -> Result<f32, OpError> {
    let mut m = 0.0f32;
    for &v in values {
        if !v.is_finite() {
            return Err(OpError::BadArgument);
        }
        if v.abs() > m.abs() {
            m = v;
        }
    }
    match format {
        Format::Q8 => {
            let d = m.abs() / 127.0;
            let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
            for (j, c) in codes[..GROUP].iter_mut().enumerate() {
                let v = values.get(j).copied().unwrap_or(0.0);
                *c = ((v * inv).round().max(-127.0).min(127.0) as i8) as u8;
            }
            Ok(d)
        }
        Format::Q4 => {
            let d = m / -8.0;
            let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
            let code = |j: usize| -> u8 {
                let v = values.get(j).copied().unwrap_or(0.0);
                ((v * inv).round().max(-8.0).min(7.0) as i32 + 8) as u8
            };
            for j in 0..GROUP / 2 {
                codes[j] = code(j) | (code(j + GROUP / 2) << 4);
            }
            Ok(d)
        }
    }
}

/// Quantises w (n, k), row-major in any weight element type, into `out` (quant_bytes long, 4-byte aligned).
pub fn quantize<E: Element>(format: Format, w: &[E], n: usize, k: usize, out: &mut [u8]) -> Result<(), OpError> {
    let total = quant_bytes(format, n, k).ok_or(OpError::BadShape)?;
    if k == 0 || n.checked_mul(k).map_or(true, |len| len > w.len()) || out.len() < total || (out.as_ptr() as usize) % 4 != 0 {
        return Err(OpError::BadShape);
    }
    let (g, cb) = (groups(k), format.group_code_bytes());
    let (codes, scales) = out[..total].split_at_mut(n * g * cb);
    let mut values = [0.0f32; GROUP];
    for r in 0..n {
        let (first, step) = row_groups(n, g, r);
        for gi in 0..g {
            let start = gi * GROUP;
            let len = GROUP.min(k - start);
            for j in 0..len {
                values[j] = w[r * k + start + j].to_f32();
            }
            let at = first + gi * step;
            let d = quantize_group(format, &values[..len], &mut codes[at * cb..][..cb])?;
            scales[at * 4..][..4].copy_from_slice(&d.to_le_bytes());
        }
    }
    Ok(())
}

/// The 32 values of group `gi` of `row`, as integers (before scaling).
#[inline(always)]
fn group_ints(format: Format, row: &QuantRow, gi: usize, out: &mut [i32; GROUP]) {
    let cb = format.group_code_bytes();
    let b = &row.codes[gi * row.step * cb..][..cb];
    match format {
        Format::Q8 => {
            for (o, &c) in out.iter_mut().zip(b.iter()) {
                *o = c as i8 as i32;
            }
        }
        Format::Q4 => {
            for j in 0..GROUP / 2 {
                out[j] = (b[j] & 15) as i32 - 8;
                out[j + GROUP / 2] = (b[j] >> 4) as i32 - 8;
            }
        }
    }
}

/// out (rows.len(), k) = dequantised rows `rows` of w (every row when `rows` is None). Err(BadArgument) on an id
/// outside [0, n).
pub fn dequantize_rows(w: &QuantMatrix, rows: Option<&[i32]>, out: &mut [f32]) -> Result<(), OpError> {
    let k = w.cols;
    let count = rows.map_or(w.rows, |r| r.len());
    if out.len() < count.checked_mul(k).ok_or(OpError::BadShape)? {
        return Err(OpError::BadShape);
    }
    let mut ints = [0i32; GROUP];
    for i in 0..count {
        let r = match rows {
            Some(ids) => {
                let id = ids[i];
                if id < 0 || id as usize >= w.rows {
                    return Err(OpError::BadArgument);
                }
                id as usize
            }
            None => i,
        };
        let row = w.row(r);
        for gi in 0..row.groups {
            let d = row.scale(gi);
            group_ints(w.format, &row, gi, &mut ints);
            let start = gi * GROUP;
            for j in 0..GROUP.min(k - start) {
                out[i * k + start + j] = ints[j] as f32 * d;
            }
        }
    }
    Ok(())
}

/// The activations of `Method::Int8`: each row of x (m, k) cut into groups, quantised to int8 (kept as i16 so the
/// SIMD dot needs no widening), padded with zeros, with one f32 scale per group.
pub struct QuantRows {
    pub codes: Vec<i16>,
    /// Σ of each group's codes: q4 decoding multiplies the stored codes (q + 8) and subtracts 8·Σ once per group.
    pub sums: Vec<i32>,
    pub scales: Vec<f32>,
    pub padded: usize,
}

/// Quantises x (m rows, row stride `rs`, k values) for the Int8 method. Err(BadArgument) on a non-finite value.
pub fn quantize_activations(x: &[f32], m: usize, k: usize, rs: usize) -> Result<QuantRows, OpError> {
    let g = groups(k);
    let padded = g * GROUP;
    let mut rows = QuantRows { codes: vec![0; m * padded], sums: vec![0; m * g], scales: vec![0.0; m * g], padded };
    for i in 0..m {
        let row = &x[i * rs..i * rs + k];
        for gi in 0..g {
            let part = &row[gi * GROUP..(gi * GROUP + GROUP).min(k)];
            let mut absmax = 0.0f32;
            for &v in part {
                if !v.is_finite() {
                    return Err(OpError::BadArgument);
                }
                absmax = absmax.max(v.abs());
            }
            let d = absmax / 127.0;
            let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
            rows.scales[i * g + gi] = d;
            let out = &mut rows.codes[i * padded + gi * GROUP..][..part.len()];
            let mut sum = 0i32;
            for (o, &v) in out.iter_mut().zip(part.iter()) {
                *o = (v * inv).round().max(-127.0).min(127.0) as i16;
                sum += *o as i32;
            }
            rows.sums[i * g + gi] = sum;
        }
    }
    Ok(rows)
}

/// The inner products over quantised weight rows, with a scalar twin (`ScalarQuant`) and SIMD (`Simd128Quant`).
pub trait QuantDot {
    /// Σ_g dx[g]·dw[g]·Σ_j qx[g·32 + j]·qw[g, j] over every group of one weight row.
    fn dot_int8(format: Format, qx: &[i16], dx: &[f32], row: QuantRow) -> f32;
    /// Σ_g dw[g]·Σ_j x[g·32 + j]·qw[g, j]; x has groups·32 values (zero-padded).
    fn dot_f32(format: Format, x: &[f32], row: QuantRow) -> f32;
    /// `dot_int8` of one x row against four weight rows already widened to i16 (`widen_codes`), row r at
    /// w16[r·padded..], with their scales transposed (dw4[g·4 + r] = scale of group g of row r): the prefill path,
    /// which widens a block of rows once and reuses it for every x row.
    fn dot4_int8_wide(qx: &[i16], dx: &[f32], w16: &[i16], padded: usize, dw4: &[f32]) -> [f32; 4];
    /// `widen_codes` (the SIMD twin widens a group in registers; same values).
    fn widen(format: Format, row: QuantRow, out: &mut [i16]) {
        widen_codes(format, row, out)
    }
    /// The decode product of one x row against one block of four weight rows (`QuantMatrix::block`: codes and
    /// scales dw4 interleaved): `qxp` = the row's codes in `perm_group` order, `sx[g]` = Σ of group g of the codes
    /// (q4), dx its scales. Row r's sum is the prefill product's and `dot_int8`'s: Σ_g (group's integer dot)·(dx·dw).
    fn dot4_decode(format: Format, qxp: &[i16], sx: &[i32], dx: &[f32], block: &[u8], dw4: &[f32]) -> [f32; 4] {
        let mut ints = [0i32; GROUP];
        let mut out = [0.0f32; 4];
        let g = dw4.len() / ROW_BLOCK;
        for (r, o) in out.iter_mut().enumerate() {
            let row = QuantRow { codes: &block[r * format.group_code_bytes()..], scales: &dw4[r..], step: ROW_BLOCK, groups: g };
            for (gi, &e) in dx.iter().enumerate().take(g) {
                group_ints(format, &row, gi, &mut ints);
                let isum: i32 = (0..GROUP).map(|p| qxp[gi * GROUP + p] as i32 * ints[perm_group(p)]).sum();
                *o += isum as f32 * (e * row.scale(gi));
            }
        }
        let _ = sx;
        out
    }
    /// `dot4_int8_wide` for two x rows (the weight loads are shared).
    fn dot8_int8_wide(qx: [&[i16]; 2], dx: [&[f32]; 2], w16: &[i16], padded: usize, dw4: &[f32]) -> [[f32; 4]; 2] {
        [Self::dot4_int8_wide(qx[0], dx[0], w16, padded, dw4), Self::dot4_int8_wide(qx[1], dx[1], w16, padded, dw4)]
    }
}

/// The integer codes of one row (groups·32 of them) as i16.
pub fn widen_codes(format: Format, row: QuantRow, out: &mut [i16]) {
    let mut ints = [0i32; GROUP];
    for gi in 0..(out.len() / GROUP).min(row.groups) {
        group_ints(format, &row, gi, &mut ints);
        for (o, &v) in out[gi * GROUP..(gi + 1) * GROUP].iter_mut().zip(ints.iter()) {
            *o = v as i16;
        }
    }
}

/// The element of a group stored at position p of the decode layout of x: per half of the group (16 values), the
/// even elements then the odd ones, which is the lane order in which the SIMD decode unpacks the codes (q8: even and
/// odd bytes of a 16-bit lane; q4: low and high byte of a 16-bit lane, low and high nibble).
pub fn perm_group(p: usize) -> usize {
    let (half, within) = (p / 16, p % 16);
    half * 16 + (within % 8) * 2 + within / 8
}

/// Plain loops: integer sums per group, then one f32 multiply-add per group.
pub struct ScalarQuant;

impl QuantDot for ScalarQuant {
    fn dot_int8(format: Format, qx: &[i16], dx: &[f32], row: QuantRow) -> f32 {
        let mut ints = [0i32; GROUP];
        let mut sum = 0.0f32;
        for gi in 0..row.groups {
            let d = row.scale(gi);
            group_ints(format, &row, gi, &mut ints);
            let xs = &qx[gi * GROUP..][..GROUP];
            let mut isum = 0i32;
            for j in 0..GROUP {
                isum += xs[j] as i32 * ints[j];
            }
            sum += isum as f32 * (dx[gi] * d);
        }
        sum
    }

    fn dot4_int8_wide(qx: &[i16], dx: &[f32], w16: &[i16], padded: usize, dw4: &[f32]) -> [f32; 4] {
        let mut out = [0.0f32; 4];
        for (r, o) in out.iter_mut().enumerate() {
            let w = &w16[r * padded..(r + 1) * padded];
            for (gi, &d) in dx.iter().enumerate() {
                let mut isum = 0i32;
                for j in gi * GROUP..(gi + 1) * GROUP {
                    isum += qx[j] as i32 * w[j] as i32;
                }
                *o += isum as f32 * (d * dw4[gi * 4 + r]);
            }
        }
        out
    }

    fn dot_f32(format: Format, x: &[f32], row: QuantRow) -> f32 {
        let mut ints = [0i32; GROUP];
        let mut sum = 0.0f32;
        for gi in 0..row.groups {
            let d = row.scale(gi);
            group_ints(format, &row, gi, &mut ints);
            let xs = &x[gi * GROUP..][..GROUP];
            let mut part = 0.0f32;
            for j in 0..GROUP {
                part += xs[j] * ints[j] as f32;
            }
            sum += part * d;
        }
        sum
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use crate::quant_simd::Simd128Quant;

/// y (m, n; row stride y_rs) = x (m, k; row stride x_rs) · Ŵᵀ + bias (n, optional).
pub fn matmul<Q: QuantDot>(
    method: Method,
    x: &[f32],
    m: usize,
    x_rs: usize,
    w: &QuantMatrix,
    bias: Option<&[f32]>,
    y: &mut [f32],
    y_rs: usize,
) -> Result<(), OpError> {
    let (n, k) = (w.rows, w.cols);
    if m == 0 || n == 0 {
        return Ok(());
    }
    let x_needed = (m - 1).checked_mul(x_rs).and_then(|v| v.checked_add(k));
    let y_needed = (m - 1).checked_mul(y_rs).and_then(|v| v.checked_add(n));
    if k == 0
        || x_rs < k
        || y_rs < n
        || !matches!(x_needed, Some(len) if len <= x.len())
        || !matches!(y_needed, Some(len) if len <= y.len())
        || bias.map_or(false, |b| b.len() < n)
    {
        return Err(OpError::BadShape);
    }
    let bias_of = |j: usize| bias.map_or(0.0, |b| b[j]);
    // Weight rows outermost: a row's codes (≤ 11 KB at K = 11008, q8) stay in cache while every x row reads them,
    // and at m = 1 (decoding) the weights stream through once.
    match method {
        Method::Int8 => matmul_int8::<Q>(x, m, x_rs, w, bias, y, y_rs)?,
        Method::F32 => {
            let padded = groups(k) * GROUP;
            let mut xp = vec![0.0f32; m * padded];
            for i in 0..m {
                xp[i * padded..i * padded + k].copy_from_slice(&x[i * x_rs..i * x_rs + k]);
            }
            for j in 0..n {
                let row = w.row(j);
                for i in 0..m {
                    y[i * y_rs + j] = Q::dot_f32(w.format, &xp[i * padded..(i + 1) * padded], row) + bias_of(j);
                }
            }
        }
    }
    Ok(())
}

/// The Int8 method: x quantised per group, then blocks of four weight rows. Prefill (m ≥ WIDEN_ROWS) widens each
/// block to i16 once and passes pairs of x rows over it; decode (m < WIDEN_ROWS, the weights stream through once)
/// unpacks the codes in registers against x reordered to `perm_group` order, which is the order the SIMD unpack
/// yields (q8: even/odd bytes by 16-bit shifts; q4: nibbles by 16-bit AND and shifts), so no widening instruction
/// is spent per weight. The last n mod 4 rows go one at a time.
fn matmul_int8<Q: QuantDot>(x: &[f32], m: usize, x_rs: usize, w: &QuantMatrix, bias: Option<&[f32]>, y: &mut [f32], y_rs: usize) -> Result<(), OpError> {
    let (n, k) = (w.rows, w.cols);
    let bias_of = |j: usize| bias.map_or(0.0, |b| b[j]);
    let q = quantize_activations(x, m, k, x_rs)?;
    let (g, padded) = (groups(k), q.padded);
    let row_x = |i: usize| (&q.codes[i * padded..(i + 1) * padded], &q.scales[i * g..(i + 1) * g]);
    let mut j0 = 0;
    if m >= WIDEN_ROWS {
        let mut w16 = vec![0i16; 4 * padded];
        while j0 + 4 <= n {
            // A block stores its scales as the product wants them: dw4[gi·4 + r].
            let dw4 = w.block(j0).1;
            for r in 0..4 {
                Q::widen(w.format, w.row(j0 + r), &mut w16[r * padded..(r + 1) * padded]);
            }
            // Pairs of x rows share the weight loads (measured 1.2–2× faster than one row at a time).
            let mut i0 = 0;
            while i0 + 2 <= m {
                let (a, b) = (row_x(i0), row_x(i0 + 1));
                let out = Q::dot8_int8_wide([a.0, b.0], [a.1, b.1], &w16, padded, dw4);
                for (h, row) in out.iter().enumerate() {
                    for (r, &v) in row.iter().enumerate() {
                        y[(i0 + h) * y_rs + j0 + r] = v + bias_of(j0 + r);
                    }
                }
                i0 += 2;
            }
            for i in i0..m {
                let (qx, dx) = row_x(i);
                let out = Q::dot4_int8_wide(qx, dx, &w16, padded, dw4);
                for (r, &v) in out.iter().enumerate() {
                    y[i * y_rs + j0 + r] = v + bias_of(j0 + r);
                }
            }
            j0 += 4;
        }
    } else if n >= 4 {
        let mut perm = vec![0i16; m * padded];
        for (p, c) in perm.chunks_exact_mut(GROUP).zip(q.codes.chunks_exact(GROUP)) {
            for (pos, o) in p.iter_mut().enumerate() {
                *o = c[perm_group(pos)];
            }
        }
        while j0 + 4 <= n {
            let (block, dw4) = w.block(j0);
            for i in 0..m {
                let (qxp, dx) = (&perm[i * padded..(i + 1) * padded], row_x(i).1);
                let out = Q::dot4_decode(w.format, qxp, &q.sums[i * g..(i + 1) * g], dx, block, dw4);
                for (r, &v) in out.iter().enumerate() {
                    y[i * y_rs + j0 + r] = v + bias_of(j0 + r);
                }
            }
            j0 += 4;
        }
    }
    for j in j0..n {
        let row = w.row(j);
        for i in 0..m {
            let (qx, dx) = row_x(i);
            y[i * y_rs + j] = Q::dot_int8(w.format, qx, dx, row) + bias_of(j);
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "quant_tests.rs"]
mod tests;
