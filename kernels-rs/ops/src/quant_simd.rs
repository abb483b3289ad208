//! WebAssembly SIMD (128-bit) twin of `quant::ScalarQuant`: the group's codes are widened to i16x8 in registers,
//! then either dotted with int8 activations by `i32x4.dot_i16x8` (Int8) or widened on to f32 and multiplied with x
//! (F32). Compiled only for wasm32 with `+simd128`.

use crate::quant::{Format, QuantDot, QuantRow, GROUP};
use core::arch::wasm32::*;

pub struct Simd128Quant;

/// The 32 codes of the group at `p` as four i16x8 (elements 0–7, 8–15, 16–23, 24–31).
///
/// # Safety
/// `p` must point at the group's bytes (checked by the callers' group count).
#[inline(always)]
unsafe fn group_i16<const Q4: bool>(p: *const u8) -> [v128; 4] {
    if Q4 {
        let v = v128_load(p as *const v128);
        let eight = i8x16_splat(8);
        let low = i8x16_sub(v128_and(v, i8x16_splat(15)), eight);
        let high = i8x16_sub(u8x16_shr(v, 4), eight);
        [i16x8_extend_low_i8x16(low), i16x8_extend_high_i8x16(low), i16x8_extend_low_i8x16(high), i16x8_extend_high_i8x16(high)]
    } else {
        let a = v128_load(p as *const v128);
        let b = v128_load(p.add(16) as *const v128);
        [i16x8_extend_low_i8x16(a), i16x8_extend_high_i8x16(a), i16x8_extend_low_i8x16(b), i16x8_extend_high_i8x16(b)]
    }
}

#[inline(always)]
fn horizontal(v: v128) -> f32 {
    (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<2>(v)) + (f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<3>(v))
}

/// Groups of `row` that its slices hold (all of them, as `QuantMatrix::row` cuts them), and the byte step between two.
fn row_extent(row: &QuantRow, cb: usize) -> (usize, usize) {
    let held = |len: usize, unit: usize| if len < unit { 0 } else { (len - unit) / (row.step * unit) + 1 };
    (row.groups.min(held(row.codes.len(), cb)).min(held(row.scales.len(), 1)), row.step * cb)
}

fn dot_int8_impl<const Q4: bool>(qx: &[i16], dx: &[f32], row: QuantRow) -> f32 {
    let cb = if Q4 { GROUP / 2 } else { GROUP };
    let (held, pitch) = row_extent(&row, cb);
    let g = held.min(dx.len()).min(qx.len() / GROUP);
    // The scalar twin's sum, group by group (the blocks' products have it too): only the last n mod 4 rows of a
    // weight come here, so the horizontal add per group costs nothing that counts.
    let mut sum = 0.0f32;
    for gi in 0..g {
        // SAFETY: gi < g, so the group's 32 i16 of qx, its code bytes and its scale lie inside the slices.
        unsafe {
            let w = group_i16::<Q4>(row.codes.as_ptr().add(gi * pitch));
            let xp = qx.as_ptr().add(gi * GROUP) as *const v128;
            let s01 = i32x4_add(i32x4_dot_i16x8(v128_load(xp), w[0]), i32x4_dot_i16x8(v128_load(xp.add(1)), w[1]));
            let s23 = i32x4_add(i32x4_dot_i16x8(v128_load(xp.add(2)), w[2]), i32x4_dot_i16x8(v128_load(xp.add(3)), w[3]));
            let s = i32x4_add(s01, s23);
            let isum = i32x4_extract_lane::<0>(s) + i32x4_extract_lane::<1>(s) + i32x4_extract_lane::<2>(s) + i32x4_extract_lane::<3>(s);
            sum += isum as f32 * (*dx.get_unchecked(gi) * *row.scales.get_unchecked(gi * row.step));
        }
    }
    sum
}

fn dot_f32_impl<const Q4: bool>(x: &[f32], row: QuantRow) -> f32 {
    let cb = if Q4 { GROUP / 2 } else { GROUP };
    let (held, pitch) = row_extent(&row, cb);
    let g = held.min(x.len() / GROUP);
    let mut acc = f32x4_splat(0.0);
    for gi in 0..g {
        // SAFETY: gi < g, so the group's 32 f32 of x, its code bytes and its scale lie inside the slices.
        unsafe {
            let w = group_i16::<Q4>(row.codes.as_ptr().add(gi * pitch));
            let xp = x.as_ptr().add(gi * GROUP) as *const v128;
            let mut part0 = f32x4_splat(0.0);
            let mut part1 = f32x4_splat(0.0);
            for (h, &wh) in w.iter().enumerate() {
                let low = f32x4_convert_i32x4(i32x4_extend_low_i16x8(wh));
                let high = f32x4_convert_i32x4(i32x4_extend_high_i16x8(wh));
                part0 = f32x4_add(part0, f32x4_mul(v128_load(xp.add(2 * h)), low));
                part1 = f32x4_add(part1, f32x4_mul(v128_load(xp.add(2 * h + 1)), high));
            }
            acc = f32x4_add(acc, f32x4_mul(f32x4_add(part0, part1), f32x4_splat(*row.scales.get_unchecked(gi * row.step))));
        }
    }
    horizontal(acc)
}

impl QuantDot for Simd128Quant {
    fn dot_int8(format: Format, qx: &[i16], dx: &[f32], row: QuantRow) -> f32 {
        match format {
            Format::Q8 => dot_int8_impl::<false>(qx, dx, row),
            Format::Q4 => dot_int8_impl::<true>(qx, dx, row),
        }
    }

    fn dot_f32(format: Format, x: &[f32], row: QuantRow) -> f32 {
        match format {
            Format::Q8 => dot_f32_impl::<false>(x, row),
            Format::Q4 => dot_f32_impl::<true>(x, row),
        }
    }

    fn widen(format: Format, row: QuantRow, out: &mut [i16]) {
        let (held, pitch) = row_extent(&row, format.group_code_bytes());
        let g = (out.len() / GROUP).min(held);
        for gi in 0..g {
            // SAFETY: gi < g bounds the group's code bytes and its 32 outputs.
            unsafe {
                let p = row.codes.as_ptr().add(gi * pitch);
                let w = match format {
                    Format::Q8 => group_i16::<false>(p),
                    Format::Q4 => group_i16::<true>(p),
                };
                let o = out.as_mut_ptr().add(gi * GROUP) as *mut v128;
                for (h, &v) in w.iter().enumerate() {
                    v128_store(o.add(h), v);
                }
            }
        }
    }

    fn dot4_int8_wide(qx: &[i16], dx: &[f32], w16: &[i16], padded: usize, dw4: &[f32]) -> [f32; 4] {
        dot4_wide(qx, dx, w16, padded, dw4)
    }

    fn dot8_int8_wide(qx: [&[i16]; 2], dx: [&[f32]; 2], w16: &[i16], padded: usize, dw4: &[f32]) -> [[f32; 4]; 2] {
        dot8_wide(qx, dx, w16, padded, dw4)
    }

    fn dot4_decode(format: Format, qxp: &[i16], sx: &[i32], dx: &[f32], block: &[u8], dw4: &[f32]) -> [f32; 4] {
        let cb = format.group_code_bytes();
        let g = dx.len().min(qxp.len() / GROUP).min(dw4.len() / 4).min(block.len() / (4 * cb));
        let g = if format == Format::Q4 { g.min(sx.len()) } else { g };
        // SAFETY: g bounds every slice as dot4_decode requires.
        unsafe {
            match format {
                Format::Q8 => dot4_decode::<false>(qxp.as_ptr(), sx.as_ptr(), dx.as_ptr(), block.as_ptr(), dw4.as_ptr(), g),
                Format::Q4 => dot4_decode::<true>(qxp.as_ptr(), sx.as_ptr(), dx.as_ptr(), block.as_ptr(), dw4.as_ptr(), g),
            }
        }
    }
}

/// [Σ lanes of s[0], …, Σ lanes of s[3]].
#[inline(always)]
fn reduce4(s: [v128; 4]) -> v128 {
    let u01 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(s[0], s[1]), i32x4_shuffle::<2, 6, 3, 7>(s[0], s[1]));
    let u23 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(s[2], s[3]), i32x4_shuffle::<2, 6, 3, 7>(s[2], s[3]));
    i32x4_add(i64x2_shuffle::<0, 2>(u01, u23), i64x2_shuffle::<1, 3>(u01, u23))
}

#[inline(always)]
unsafe fn group_dot(x: &[v128; 4], w: [v128; 4]) -> v128 {
    i32x4_add(
        i32x4_add(i32x4_dot_i16x8(x[0], w[0]), i32x4_dot_i16x8(x[1], w[1])),
        i32x4_add(i32x4_dot_i16x8(x[2], w[2]), i32x4_dot_i16x8(x[3], w[3])),
    )
}

#[inline(always)]
unsafe fn load4(p: *const i16) -> [v128; 4] {
    let p = p as *const v128;
    [v128_load(p), v128_load(p.add(1)), v128_load(p.add(2)), v128_load(p.add(3))]
}

fn lanes(v: v128) -> [f32; 4] {
    [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)]
}

pub(crate) fn dot4_wide(qx: &[i16], dx: &[f32], w16: &[i16], padded: usize, dw4: &[f32]) -> [f32; 4] {
    let g = dx.len().min(qx.len() / GROUP).min(padded / GROUP).min(dw4.len() / 4);
    if w16.len() < 4 * padded {
        return [0.0; 4];
    }
    let mut acc = f32x4_splat(0.0);
    for gi in 0..g {
        // SAFETY: gi < g ≤ padded/32 and w16 holds 4·padded values.
        unsafe {
            let x = load4(qx.as_ptr().add(gi * GROUP));
            let w = w16.as_ptr().add(gi * GROUP);
            let s = [
                group_dot(&x, load4(w)),
                group_dot(&x, load4(w.add(padded))),
                group_dot(&x, load4(w.add(2 * padded))),
                group_dot(&x, load4(w.add(3 * padded))),
            ];
            let scale = f32x4_mul(v128_load(dw4.as_ptr().add(gi * 4) as *const v128), f32x4_splat(*dx.get_unchecked(gi)));
            acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(reduce4(s)), scale));
        }
    }
    lanes(acc)
}

/// `dot4_wide` for two x rows at once: the 16 widened weight vectors of a group are loaded once for both rows.
pub(crate) fn dot8_wide(qx: [&[i16]; 2], dx: [&[f32]; 2], w16: &[i16], padded: usize, dw4: &[f32]) -> [[f32; 4]; 2] {
    let g = dx[0].len().min(dx[1].len()).min(qx[0].len() / GROUP).min(qx[1].len() / GROUP).min(padded / GROUP).min(dw4.len() / 4);
    if w16.len() < 4 * padded {
        return [[0.0; 4]; 2];
    }
    let (mut acc0, mut acc1) = (f32x4_splat(0.0), f32x4_splat(0.0));
    let (p0, p1, pw) = (qx[0].as_ptr() as *const v128, qx[1].as_ptr() as *const v128, w16.as_ptr() as *const v128);
    let stride = padded / 8;
    for gi in 0..g {
        // SAFETY: gi < g ≤ padded/32 and w16 holds 4·padded values; both x rows hold g groups.
        unsafe {
            // Eighth of a group (h) outermost: two x vectors and one weight vector live at a time next to the eight
            // integer accumulators, which fits the 16 SIMD registers of x86-64 (loading whole groups spilled).
            // Integer sums are exact, so the order inside a group changes nothing.
            let z = i32x4_splat(0);
            let (mut s0, mut s1) = ([z; 4], [z; 4]);
            for h in 0..4 {
                let x0 = v128_load(p0.add(gi * 4 + h));
                let x1 = v128_load(p1.add(gi * 4 + h));
                for r in 0..4 {
                    let wv = v128_load(pw.add(r * stride + gi * 4 + h));
                    s0[r] = i32x4_add(s0[r], i32x4_dot_i16x8(x0, wv));
                    s1[r] = i32x4_add(s1[r], i32x4_dot_i16x8(x1, wv));
                }
            }
            let dw = v128_load(dw4.as_ptr().add(gi * 4) as *const v128);
            let d0 = f32x4_mul(dw, f32x4_splat(*dx[0].get_unchecked(gi)));
            let d1 = f32x4_mul(dw, f32x4_splat(*dx[1].get_unchecked(gi)));
            acc0 = f32x4_add(acc0, f32x4_mul(f32x4_convert_i32x4(reduce4(s0)), d0));
            acc1 = f32x4_add(acc1, f32x4_mul(f32x4_convert_i32x4(reduce4(s1)), d1));
        }
    }
    [lanes(acc0), lanes(acc1)]
}

/// A lane mask built from a runtime value so that LLVM hoists the splat out of the loop instead of rematerialising a
/// `v128.const` in it (V8 builds such a constant with several instructions every iteration).
#[inline(always)]
fn runtime_splat_i16(v: i16) -> v128 {
    // SAFETY: a volatile read of a local.
    i16x8_splat(unsafe { core::ptr::read_volatile(&v) })
}

/// The decode product: one x row (codes in `perm_group` order, see quant.rs) against one block of four weight rows,
/// which read as one run of memory (group gi of row r at block + (gi·4 + r)·bytes per group). Per group, each row's
/// integer dot gathers in the lanes of its own i32x4, the four sum exactly into one i32x4 (lane r = row r, `reduce4`)
/// that is converted and scaled by the block's scales times dx[g]: the prefill product's arithmetic, so decode and
/// prefill give the same bits. q8 unpacks 16 codes into the even and odd i16 lanes with two arithmetic shifts and one
/// left shift; q4 unpacks 32 codes with ANDs and 16-bit shifts on the stored c = q + 8 and subtracts 8·Σx once per
/// group (2·Σx in each of the 4 lanes).
///
/// # Safety
/// qxp holds g·32 values, dx and sx (q4) g values, block 4·g groups, dw4 4·g values.
pub(crate) unsafe fn dot4_decode<const Q4: bool>(qxp: *const i16, sx: *const i32, dx: *const f32, block: *const u8, dw4: *const f32, g: usize) -> [f32; 4] {
    let mut acc = f32x4_splat(0.0);
    let mask = runtime_splat_i16(15);
    let xp = qxp as *const v128;
    let cb = if Q4 { GROUP / 2 } else { GROUP };
    for gi in 0..g {
        let x = [v128_load(xp.add(gi * 4)), v128_load(xp.add(gi * 4 + 1)), v128_load(xp.add(gi * 4 + 2)), v128_load(xp.add(gi * 4 + 3))];
        let off = if Q4 { i32x4_shl(v128_load32_splat(sx.add(gi) as *const u32), 1) } else { x[0] };
        let d = f32x4_splat(*dx.add(gi));
        let base = block.add(gi * 4 * cb);
        let mut s = [i32x4_splat(0); 4];
        for (r, sr) in s.iter_mut().enumerate() {
            *sr = if Q4 {
                let v = v128_load(base.add(r * cb) as *const v128);
                let a = i32x4_add(i32x4_dot_i16x8(x[0], v128_and(v, mask)), i32x4_dot_i16x8(x[1], v128_and(u16x8_shr(v, 8), mask)));
                let b = i32x4_add(i32x4_dot_i16x8(x[2], v128_and(u16x8_shr(v, 4), mask)), i32x4_dot_i16x8(x[3], u16x8_shr(v, 12)));
                i32x4_sub(i32x4_add(a, b), off)
            } else {
                let v = v128_load(base.add(r * cb) as *const v128);
                let w = v128_load(base.add(r * cb + 16) as *const v128);
                let a = i32x4_add(i32x4_dot_i16x8(x[0], i16x8_shr(i16x8_shl(v, 8), 8)), i32x4_dot_i16x8(x[1], i16x8_shr(v, 8)));
                let b = i32x4_add(i32x4_dot_i16x8(x[2], i16x8_shr(i16x8_shl(w, 8), 8)), i32x4_dot_i16x8(x[3], i16x8_shr(w, 8)));
                i32x4_add(a, b)
            };
        }
        // dw·dx as the prefill product has it (dot4_wide), equal to dx·dw: one rounding of the same two numbers.
        let scale = f32x4_mul(v128_load(dw4.add(gi * 4) as *const v128), d);
        acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(reduce4(s)), scale));
    }
    lanes(acc)
}
