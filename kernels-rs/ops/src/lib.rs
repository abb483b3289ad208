//! Numeric kernels of PPLLaVA. Each kernel is written once, generic over [`lanes::Lanes`], so that it has a SIMD
//! implementation (`Simd128`, wasm32 with `+simd128`) and a scalar twin (`Scalar`) that tests compare against.

pub mod activation;
pub mod attention;
pub mod convert;
pub mod gemm;
pub mod lanes;
pub mod layout;
pub mod norm;
pub mod pooling;
pub mod quant;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod quant_simd;
pub mod relevance;
pub mod rope;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;
pub mod softmax;

/// Why a kernel refused its arguments. The C ABI turns these into status codes (see `ppllava_kernels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpError {
    /// A length or dimension is zero, or a buffer is shorter than its shape says.
    BadShape,
    /// A scalar argument is not finite or out of its range.
    BadArgument,
}
