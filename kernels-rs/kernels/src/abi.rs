//! Memory, status codes and pointer checks shared by every export.

use ops::OpError;
use std::alloc::{alloc, dealloc, Layout};

pub const STATUS_OK: i32 = 0;
pub const STATUS_BAD_SHAPE: i32 = 1;
pub const STATUS_BAD_ARGUMENT: i32 = 2;
pub const STATUS_OUT_OF_MEMORY: i32 = 3;
pub const STATUS_NO_SIMD: i32 = 4;
/// A format or codec this build does not handle (media).
pub const STATUS_UNSUPPORTED: i32 = 5;
/// Malformed input data (media: a truncated box, a corrupt stream).
pub const STATUS_INVALID_DATA: i32 = 6;
/// A configured limit (bytes, pixels, frames, memory) would be exceeded.
pub const STATUS_LIMIT: i32 = 7;

const ALIGN: usize = 16;

pub fn status(result: Result<(), OpError>) -> i32 {
    match result {
        Ok(()) => STATUS_OK,
        Err(OpError::BadShape) => STATUS_BAD_SHAPE,
        Err(OpError::BadArgument) => STATUS_BAD_ARGUMENT,
    }
}

/// Version of this ABI; the loader refuses a module whose version it does not know.
#[no_mangle]
pub extern "C" fn ppl_abi_version() -> i32 {
    1
}

/// 1 when the module was built with `+simd128`.
#[no_mangle]
pub extern "C" fn ppl_has_simd() -> i32 {
    cfg!(all(target_arch = "wasm32", target_feature = "simd128")) as i32
}

/// A 16-byte-aligned block of `bytes` bytes, or 0 when memory cannot grow.
#[no_mangle]
pub extern "C" fn ppl_alloc(bytes: usize) -> *mut u8 {
    match Layout::from_size_align(bytes.max(1), ALIGN) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { alloc(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Gives back a block from `ppl_alloc` with the same `bytes`.
#[no_mangle]
pub extern "C" fn ppl_free(ptr: *mut u8, bytes: usize) {
    if ptr.is_null() {
        return;
    }
    if let Ok(layout) = Layout::from_size_align(bytes.max(1), ALIGN) {
        // SAFETY: the host promises ptr came from ppl_alloc(bytes).
        unsafe { dealloc(ptr, layout) }
    }
}

/// A slice from a host pointer; None for null or misaligned pointers, so they become a status, not a trap.
///
/// # Safety
/// `ptr..ptr+len` must lie in memory the host allocated with `ppl_alloc`.
pub unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> Option<&'a [T]> {
    if ptr.is_null() || (ptr as usize) % std::mem::align_of::<T>() != 0 {
        return None;
    }
    Some(std::slice::from_raw_parts(ptr, len))
}

/// The mutable twin of [`slice`].
///
/// # Safety
/// As for [`slice`], and no other live reference may alias the block.
pub unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize) -> Option<&'a mut [T]> {
    if ptr.is_null() || (ptr as usize) % std::mem::align_of::<T>() != 0 {
        return None;
    }
    Some(std::slice::from_raw_parts_mut(ptr, len))
}
