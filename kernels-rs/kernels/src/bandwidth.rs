//! A memory-bandwidth probe for `bench/big_model.ts`: reads `bytes` bytes at `ptr` once, 64 bytes per step in four
//! independent 16-byte loads (SIMD) or eight u64 loads (scalar), and stores an XOR checksum in `out` so the reads
//! cannot be optimised away. Decoding is a stream over the weights, so this is its roofline.

use crate::abi::{STATUS_BAD_ARGUMENT, STATUS_OK};

/// # Safety
/// `ptr` must come from `ppl_alloc` with at least `bytes` bytes, 16-byte aligned; `out` must hold one u32.
#[no_mangle]
pub unsafe extern "C" fn ppl_bandwidth_read(ptr: *const u8, bytes: usize, out: *mut u32, simd: i32) -> i32 {
    if ptr.is_null() || out.is_null() || bytes % 64 != 0 || (ptr as usize) % 16 != 0 {
        return STATUS_BAD_ARGUMENT;
    }
    if simd != 0 {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            *out = read_simd(ptr, bytes);
            return STATUS_OK;
        }
    }
    *out = read_scalar(ptr, bytes);
    STATUS_OK
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
unsafe fn read_simd(ptr: *const u8, bytes: usize) -> u32 {
    use core::arch::wasm32::*;
    let (mut a0, mut a1, mut a2, mut a3) = (u32x4_splat(0), u32x4_splat(0), u32x4_splat(0), u32x4_splat(0));
    let mut p = ptr;
    let end = ptr.add(bytes);
    while p < end {
        a0 = v128_xor(a0, v128_load(p as *const v128));
        a1 = v128_xor(a1, v128_load(p.add(16) as *const v128));
        a2 = v128_xor(a2, v128_load(p.add(32) as *const v128));
        a3 = v128_xor(a3, v128_load(p.add(48) as *const v128));
        p = p.add(64);
    }
    let acc = v128_xor(v128_xor(a0, a1), v128_xor(a2, a3));
    u32x4_extract_lane::<0>(acc) ^ u32x4_extract_lane::<1>(acc) ^ u32x4_extract_lane::<2>(acc) ^ u32x4_extract_lane::<3>(acc)
}

unsafe fn read_scalar(ptr: *const u8, bytes: usize) -> u32 {
    let words = ptr as *const u64;
    let mut acc = [0u64; 8];
    let mut i = 0;
    while i < bytes / 8 {
        for (k, a) in acc.iter_mut().enumerate() {
            *a ^= core::ptr::read(words.add(i + k));
        }
        i += 8;
    }
    let x = acc.iter().fold(0u64, |x, a| x ^ a);
    (x ^ (x >> 32)) as u32
}
