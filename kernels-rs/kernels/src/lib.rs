//! The C ABI of ppllava-edge's kernels (`#[no_mangle] extern "C"`), loaded by `src/backend/wasm/loader.ts`.
//!
//! Conventions, shared by every export (see `abi.rs`):
//! - Buffers live in this module's memory: the host asks `ppl_alloc(bytes)` for a 16-byte-aligned block, writes
//!   into it through a typed view, and gives it back with `ppl_free(ptr, bytes)`.
//! - Every kernel returns an i32 status: 0 = ok, and the `STATUS_*` codes otherwise. A Rust panic aborts (a trap);
//!   the loader turns traps into typed errors and discards the instance.
//! - `simd` arguments pick the SIMD path (1) or its scalar twin (0), so tests and `bench/` can compare them.
//!
//! One file per kernel family; each only adapts pointers to slices and calls its crate.

pub mod abi;
pub mod media;
pub mod pixels;
pub mod relevance;
#[macro_use]
mod dispatch;
pub mod activation;
pub mod attention;
pub mod gemm;
pub mod layout;
pub mod norm;
pub mod pooling;
pub mod quant;
pub mod bandwidth;
