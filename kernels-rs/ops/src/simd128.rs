//! The WebAssembly SIMD (128-bit) implementation of [`Lanes`]; `Scalar` in lanes.rs is its twin. Compiled only
//! for wasm32 with `+simd128`.

use crate::lanes::{exp_cephes, Lanes, EXP_C1, EXP_C2, EXP_LOG2E, EXP_MIN, EXP_P, MR, NR};

/// WebAssembly SIMD (128-bit): four f32 lanes widened into two f64x2 accumulators.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub struct Simd128;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Lanes for Simd128 {
    fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
        use core::arch::wasm32::*;
        let n = a.len().min(b.len());
        let n4 = n - n % 4;
        let mut low = f64x2_splat(0.0);
        let mut high = f64x2_splat(0.0);
        let mut i = 0;
        while i < n4 {
            // SAFETY: i + 4 <= n4 <= len of both slices; v128_load has no alignment requirement.
            let (va, vb) = unsafe {
                (v128_load(a.as_ptr().add(i) as *const v128), v128_load(b.as_ptr().add(i) as *const v128))
            };
            low = f64x2_add(low, f64x2_mul(f64x2_promote_low_f32x4(va), f64x2_promote_low_f32x4(vb)));
            let (va_hi, vb_hi) = (i64x2_shuffle::<1, 0>(va, va), i64x2_shuffle::<1, 0>(vb, vb));
            high = f64x2_add(high, f64x2_mul(f64x2_promote_low_f32x4(va_hi), f64x2_promote_low_f32x4(vb_hi)));
            i += 4;
        }
        let both = f64x2_add(low, high);
        let mut sum = f64x2_extract_lane::<0>(both) + f64x2_extract_lane::<1>(both);
        while i < n {
            sum += a[i] as f64 * b[i] as f64;
            i += 1;
        }
        sum
    }

    fn dot_and_square_f64(a: &[f32], b: &[f64]) -> (f64, f64) {
        use core::arch::wasm32::*;
        let n = a.len().min(b.len());
        let n4 = n - n % 4;
        let (mut dot_low, mut dot_high) = (f64x2_splat(0.0), f64x2_splat(0.0));
        let (mut sq_low, mut sq_high) = (f64x2_splat(0.0), f64x2_splat(0.0));
        let mut i = 0;
        while i < n4 {
            // SAFETY: i + 4 <= n4 <= len of both slices; v128_load has no alignment requirement.
            let (va, b_low, b_high) = unsafe {
                (
                    v128_load(a.as_ptr().add(i) as *const v128),
                    v128_load(b.as_ptr().add(i) as *const v128),
                    v128_load(b.as_ptr().add(i + 2) as *const v128),
                )
            };
            let a_low = f64x2_promote_low_f32x4(va);
            let a_high = f64x2_promote_low_f32x4(i64x2_shuffle::<1, 0>(va, va));
            dot_low = f64x2_add(dot_low, f64x2_mul(a_low, b_low));
            dot_high = f64x2_add(dot_high, f64x2_mul(a_high, b_high));
            sq_low = f64x2_add(sq_low, f64x2_mul(a_low, a_low));
            sq_high = f64x2_add(sq_high, f64x2_mul(a_high, a_high));
            i += 4;
        }
        let dot_v = f64x2_add(dot_low, dot_high);
        let sq_v = f64x2_add(sq_low, sq_high);
        let mut dot = f64x2_extract_lane::<0>(dot_v) + f64x2_extract_lane::<1>(dot_v);
        let mut square = f64x2_extract_lane::<0>(sq_v) + f64x2_extract_lane::<1>(sq_v);
        while i < n {
            let x = a[i] as f64;
            dot += x * b[i];
            square += x * x;
            i += 1;
        }
        (dot, square)
    }

    fn sum_f64(a: &[f32]) -> f64 {
        use core::arch::wasm32::*;
        let n4 = a.len() - a.len() % 4;
        let (mut low, mut high) = (f64x2_splat(0.0), f64x2_splat(0.0));
        let mut i = 0;
        while i < n4 {
            // SAFETY: i + 4 <= n4 <= a.len().
            let v = unsafe { v128_load(a.as_ptr().add(i) as *const v128) };
            low = f64x2_add(low, f64x2_promote_low_f32x4(v));
            high = f64x2_add(high, f64x2_promote_low_f32x4(i64x2_shuffle::<1, 0>(v, v)));
            i += 4;
        }
        let both = f64x2_add(low, high);
        let mut sum = f64x2_extract_lane::<0>(both) + f64x2_extract_lane::<1>(both);
        while i < a.len() {
            sum += a[i] as f64;
            i += 1;
        }
        sum
    }

    fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        use core::arch::wasm32::*;
        let n = a.len().min(b.len());
        let n8 = n - n % 8;
        let (mut s0, mut s1) = (f32x4_splat(0.0), f32x4_splat(0.0));
        let mut i = 0;
        while i < n8 {
            // SAFETY: i + 8 <= n8 <= len of both slices.
            unsafe {
                let (pa, pb) = (a.as_ptr().add(i), b.as_ptr().add(i));
                s0 = f32x4_add(s0, f32x4_mul(v128_load(pa as *const v128), v128_load(pb as *const v128)));
                s1 = f32x4_add(s1, f32x4_mul(v128_load(pa.add(4) as *const v128), v128_load(pb.add(4) as *const v128)));
            }
            i += 8;
        }
        // Lanes l of s0 and s1 hold the scalar twin's part[l] and part[l + 4].
        let t = f32x4_add(s0, s1); // part[l] + part[l+4]
        let u = f32x4_add(t, i32x4_shuffle::<2, 3, 0, 1>(t, t)); // (p0+p4)+(p2+p6), (p1+p5)+(p3+p7)
        let mut sum = f32x4_extract_lane::<0>(u) + f32x4_extract_lane::<1>(u);
        while i < n {
            sum += a[i] * b[i];
            i += 1;
        }
        sum
    }

    fn dot8_rows_f32(a: &[f32], w: &[f32], rs: usize) -> [f32; 8] {
        use core::arch::wasm32::*;
        let k = a.len();
        assert!(k == 0 || w.len() >= 7 * rs + k);
        let k4 = k - k % 4;
        let k16 = k - k % 16;
        let z = f32x4_splat(0.0);
        let mut s = [z; 8];
        // Addresses as integers: `base + byte offset` then constant offsets per vector, which LLVM folds into the
        // loads' offset immediates (pointer induction variables get strength-reduced into one add per load: a
        // third of the instructions V8 then runs).
        let xa = a.as_ptr() as usize;
        let mut rows = [0usize; 8];
        for (r, p) in rows.iter_mut().enumerate() {
            *p = w.as_ptr() as usize + 4 * r * rs;
        }
        let mut i = 0;
        while i < k16 {
            // SAFETY: i + 16 <= k16 <= k, and row r < 8 of w holds k values from r·rs (asserted above).
            unsafe {
                let px = (xa + 4 * i) as *const v128;
                for u in 0..4 {
                    let x = v128_load(px.add(u));
                    for (r, sr) in s.iter_mut().enumerate() {
                        *sr = f32x4_add(*sr, f32x4_mul(x, v128_load(((rows[r] + 4 * i) as *const v128).add(u))));
                    }
                }
            }
            i += 16;
        }
        while i < k4 {
            // SAFETY: i + 4 <= k4 <= k, and row r < 8 of w holds k values from r·rs (asserted above).
            unsafe {
                let x = v128_load(a.as_ptr().add(i) as *const v128);
                let p = w.as_ptr().add(i);
                for (r, sr) in s.iter_mut().enumerate() {
                    *sr = f32x4_add(*sr, f32x4_mul(x, v128_load(p.add(r * rs) as *const v128)));
                }
            }
            i += 4;
        }
        let mut out = [0.0f32; 8];
        for (r, o) in out.iter_mut().enumerate() {
            // Lane l of s[r] is the scalar twin's part[l]; the same reduction and tail.
            let t = s[r];
            let mut sum = (f32x4_extract_lane::<0>(t) + f32x4_extract_lane::<2>(t)) + (f32x4_extract_lane::<1>(t) + f32x4_extract_lane::<3>(t));
            for j in k4..k {
                sum += a[j] * w[r * rs + j];
            }
            *o = sum;
        }
        out
    }

    fn dot8_rows_pair(a: &[f32], w: &[f32], rs: usize) -> [f32; 2] {
        use core::arch::wasm32::*;
        let k = a.len();
        assert!(k == 0 || w.len() >= rs + k);
        let k4 = k - k % 4;
        let (mut s0, mut s1) = (f32x4_splat(0.0), f32x4_splat(0.0));
        let mut t = 0;
        while t < k4 {
            // SAFETY: t + 4 <= k4 <= k; rows 0 and 1 of w hold k values (asserted above).
            unsafe {
                let x = v128_load(a.as_ptr().add(t) as *const v128);
                let pw = w.as_ptr().add(t);
                s0 = f32x4_add(s0, f32x4_mul(x, v128_load(pw as *const v128)));
                s1 = f32x4_add(s1, f32x4_mul(x, v128_load(pw.add(rs) as *const v128)));
            }
            t += 4;
        }
        let mut out = [0.0f32; 2];
        for (r, (o, v)) in out.iter_mut().zip([s0, s1]).enumerate() {
            let mut sum = (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<2>(v)) + (f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<3>(v));
            for j in k4..k {
                sum += a[j] * w[r * rs + j];
            }
            *o = sum;
        }
        out
    }

    fn dot_tile_4x2_packed(xp: &[f32], w: &[f32], w_rs: usize, k: usize) -> [f32; 8] {
        use core::arch::wasm32::*;
        assert!(k == 0 || (xp.len() >= 4 * k && w.len() >= w_rs + k));
        let k4 = k - k % 4;
        let tail = k - k4;
        let z = f32x4_splat(0.0);
        let mut s = [z; 8];
        // Integer addresses: the packed x quad is one address per step, its four vectors at constant offsets that
        // fold into the loads (see `dot8_rows_f32`).
        let (px, pw0) = (xp.as_ptr() as usize, w.as_ptr() as usize);
        let pw1 = pw0 + 4 * w_rs;
        let mut t = 0;
        while t < k4 {
            // SAFETY: t + 4 <= k4 <= k: the packed quad holds 4·k4 values before its tail, and rows 0 and 1 of w
            // hold k values (asserted above).
            unsafe {
                let x = (px + 16 * t) as *const v128;
                let w0 = v128_load((pw0 + 4 * t) as *const v128);
                let w1 = v128_load((pw1 + 4 * t) as *const v128);
                for i in 0..4 {
                    let xv = v128_load(x.add(i));
                    s[2 * i] = f32x4_add(s[2 * i], f32x4_mul(xv, w0));
                    s[2 * i + 1] = f32x4_add(s[2 * i + 1], f32x4_mul(xv, w1));
                }
            }
            t += 4;
        }
        let mut out = [0.0f32; 8];
        for (e, o) in out.iter_mut().enumerate() {
            let (i, r) = (e / 2, e % 2);
            let v = s[e];
            let mut sum = (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<2>(v)) + (f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<3>(v));
            for j in 0..tail {
                sum += xp[4 * k4 + i * tail + j] * w[r * w_rs + k4 + j];
            }
            *o = sum;
        }
        out
    }

    fn dot_bf16(a: &[f32], b: &[u16]) -> f32 {
        use core::arch::wasm32::*;
        let n = a.len().min(b.len());
        let n8 = n - n % 8;
        let (mut s0, mut s1) = (f32x4_splat(0.0), f32x4_splat(0.0));
        let mut i = 0;
        while i < n8 {
            // SAFETY: i + 8 <= n8 <= len of both slices.
            unsafe {
                let (pa, pb) = (a.as_ptr().add(i), b.as_ptr().add(i));
                let w = v128_load(pb as *const v128);
                let w0 = i32x4_shl(u32x4_extend_low_u16x8(w), 16);
                let w1 = i32x4_shl(u32x4_extend_high_u16x8(w), 16);
                s0 = f32x4_add(s0, f32x4_mul(v128_load(pa as *const v128), w0));
                s1 = f32x4_add(s1, f32x4_mul(v128_load(pa.add(4) as *const v128), w1));
            }
            i += 8;
        }
        let t = f32x4_add(s0, s1);
        let u = f32x4_add(t, i32x4_shuffle::<2, 3, 0, 1>(t, t));
        let mut sum = f32x4_extract_lane::<0>(u) + f32x4_extract_lane::<1>(u);
        while i < n {
            sum += a[i] * f32::from_bits((b[i] as u32) << 16);
            i += 1;
        }
        sum
    }

    fn exp_shifted(x: &mut [f32], shift: f32) {
        use core::arch::wasm32::*;
        let n = x.len();
        let n4 = n - n % 4;
        let vs = f32x4_splat(shift);
        let mut i = 0;
        while i < n4 {
            // SAFETY: i + 4 <= n4 <= x.len().
            unsafe {
                let p = x.as_mut_ptr().add(i) as *mut v128;
                let t = f32x4_sub(v128_load(p), vs);
                let k = f32x4_floor(f32x4_add(f32x4_mul(t, f32x4_splat(EXP_LOG2E)), f32x4_splat(0.5)));
                let r = f32x4_sub(f32x4_sub(t, f32x4_mul(k, f32x4_splat(EXP_C1))), f32x4_mul(k, f32x4_splat(EXP_C2)));
                let mut q = f32x4_splat(EXP_P[0]);
                for c in EXP_P.iter().skip(1) {
                    q = f32x4_add(f32x4_mul(q, r), f32x4_splat(*c));
                }
                let e = f32x4_add(f32x4_add(f32x4_mul(q, f32x4_mul(r, r)), r), f32x4_splat(1.0));
                let scale = i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(k), i32x4_splat(127)), 23);
                let y = f32x4_mul(e, scale);
                // Below the cut-off the true value is subnormal or zero: flush to 0 (the scalar twin does too).
                v128_store(p, v128_and(y, f32x4_ge(t, f32x4_splat(EXP_MIN))));
            }
            i += 4;
        }
        while i < n {
            x[i] = exp_cephes(x[i] - shift);
            i += 1;
        }
    }

    fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
        use core::arch::wasm32::*;
        let n = x.len().min(y.len());
        let n4 = n - n % 4;
        let va = f32x4_splat(alpha);
        let mut i = 0;
        while i < n4 {
            // SAFETY: i + 4 <= n4 <= len of both slices.
            unsafe {
                let py = y.as_mut_ptr().add(i) as *mut v128;
                let vx = v128_load(x.as_ptr().add(i) as *const v128);
                v128_store(py, f32x4_add(v128_load(py), f32x4_mul(va, vx)));
            }
            i += 4;
        }
        while i < n {
            y[i] += alpha * x[i];
            i += 1;
        }
    }

    fn normalize(x: &[f32], shift: f32, scale: f32, gain: &[f32], bias: &[f32], out: &mut [f32]) {
        use core::arch::wasm32::*;
        let n = out.len();
        assert!(x.len() >= n && gain.len() >= n && bias.len() >= n);
        let n4 = n - n % 4;
        let (vs, vk) = (f32x4_splat(shift), f32x4_splat(scale));
        let mut i = 0;
        while i < n4 {
            // SAFETY: i + 4 <= n4 <= len of every slice (asserted above).
            unsafe {
                let vx = v128_load(x.as_ptr().add(i) as *const v128);
                let vg = v128_load(gain.as_ptr().add(i) as *const v128);
                let vb = v128_load(bias.as_ptr().add(i) as *const v128);
                let y = f32x4_add(f32x4_mul(f32x4_mul(f32x4_sub(vx, vs), vk), vg), vb);
                v128_store(out.as_mut_ptr().add(i) as *mut v128, y);
            }
            i += 4;
        }
        while i < n {
            out[i] = (x[i] - shift) * scale * gain[i] + bias[i];
            i += 1;
        }
    }

    fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
        binary(a, b, out, |x, y| core::arch::wasm32::f32x4_add(x, y), |x, y| x + y)
    }

    fn mul(a: &[f32], b: &[f32], out: &mut [f32]) {
        binary(a, b, out, |x, y| core::arch::wasm32::f32x4_mul(x, y), |x, y| x * y)
    }

    fn pack_rows(w: &[f32], rs: usize, kc: usize, out: &mut [f32]) {
        use core::arch::wasm32::*;
        assert!(kc == 0 || (w.len() >= (NR - 1) * rs + kc && out.len() >= kc * NR));
        let k4 = kc - kc % 4;
        // 4×4 transposes: four values of four rows in, four k-steps of those rows out.
        for half in 0..NR / 4 {
            let mut kk = 0;
            while kk < k4 {
                // SAFETY: rows half·4 + i < NR hold kc ≥ kk + 4 values; out holds kc·NR values (asserted above).
                unsafe {
                    let p = w.as_ptr().add(half * 4 * rs + kk);
                    let r0 = v128_load(p as *const v128);
                    let r1 = v128_load(p.add(rs) as *const v128);
                    let r2 = v128_load(p.add(2 * rs) as *const v128);
                    let r3 = v128_load(p.add(3 * rs) as *const v128);
                    let t0 = i32x4_shuffle::<0, 4, 1, 5>(r0, r1); // r0k0 r1k0 r0k1 r1k1
                    let t1 = i32x4_shuffle::<2, 6, 3, 7>(r0, r1); // r0k2 r1k2 r0k3 r1k3
                    let t2 = i32x4_shuffle::<0, 4, 1, 5>(r2, r3);
                    let t3 = i32x4_shuffle::<2, 6, 3, 7>(r2, r3);
                    let o = out.as_mut_ptr().add(kk * NR + half * 4);
                    v128_store(o as *mut v128, i64x2_shuffle::<0, 2>(t0, t2));
                    v128_store(o.add(NR) as *mut v128, i64x2_shuffle::<1, 3>(t0, t2));
                    v128_store(o.add(2 * NR) as *mut v128, i64x2_shuffle::<0, 2>(t1, t3));
                    v128_store(o.add(3 * NR) as *mut v128, i64x2_shuffle::<1, 3>(t1, t3));
                }
                kk += 4;
            }
        }
        for r in 0..NR {
            for kk in k4..kc {
                out[kk * NR + r] = w[r * rs + kk];
            }
        }
    }

    fn gemm_tile(kc: usize, a: &[f32], b: &[f32], acc: &mut [f32; MR * NR]) {
        use core::arch::wasm32::*;
        assert!(a.len() >= kc * MR && b.len() >= kc * NR);
        let z = f32x4_splat(0.0);
        let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21, mut c30, mut c31) = (z, z, z, z, z, z, z, z);
        let (mut pa, mut pb) = (a.as_ptr(), b.as_ptr());
        for _ in 0..kc {
            // SAFETY: the loop reads kc·MR values of a and kc·NR values of b (asserted above).
            unsafe {
                let b0 = v128_load(pb as *const v128);
                let b1 = v128_load(pb.add(4) as *const v128);
                let a0 = f32x4_splat(*pa);
                c00 = f32x4_add(c00, f32x4_mul(a0, b0));
                c01 = f32x4_add(c01, f32x4_mul(a0, b1));
                let a1 = f32x4_splat(*pa.add(1));
                c10 = f32x4_add(c10, f32x4_mul(a1, b0));
                c11 = f32x4_add(c11, f32x4_mul(a1, b1));
                let a2 = f32x4_splat(*pa.add(2));
                c20 = f32x4_add(c20, f32x4_mul(a2, b0));
                c21 = f32x4_add(c21, f32x4_mul(a2, b1));
                let a3 = f32x4_splat(*pa.add(3));
                c30 = f32x4_add(c30, f32x4_mul(a3, b0));
                c31 = f32x4_add(c31, f32x4_mul(a3, b1));
                pa = pa.add(MR);
                pb = pb.add(NR);
            }
        }
        let p = acc.as_mut_ptr() as *mut v128;
        // SAFETY: acc holds MR·NR = 32 f32 = eight v128.
        unsafe {
            v128_store(p, c00);
            v128_store(p.add(1), c01);
            v128_store(p.add(2), c10);
            v128_store(p.add(3), c11);
            v128_store(p.add(4), c20);
            v128_store(p.add(5), c21);
            v128_store(p.add(6), c30);
            v128_store(p.add(7), c31);
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn binary(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    vector: impl Fn(core::arch::wasm32::v128, core::arch::wasm32::v128) -> core::arch::wasm32::v128,
    scalar: impl Fn(f32, f32) -> f32,
) {
    use core::arch::wasm32::*;
    let n = out.len();
    assert!(a.len() >= n && b.len() >= n);
    let n4 = n - n % 4;
    let mut i = 0;
    while i < n4 {
        // SAFETY: i + 4 <= n4 <= len of every slice (asserted above).
        unsafe {
            let v = vector(v128_load(a.as_ptr().add(i) as *const v128), v128_load(b.as_ptr().add(i) as *const v128));
            v128_store(out.as_mut_ptr().add(i) as *mut v128, v);
        }
        i += 4;
    }
    while i < n {
        out[i] = scalar(a[i], b[i]);
        i += 1;
    }
}

