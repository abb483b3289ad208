//! Two macros every op export uses: pick the lanes (SIMD or its scalar twin) and the weight element type.

/// `with_lanes!(simd, L => body)`: runs body with `L` = `Simd128` when simd ≠ 0 (or returns STATUS_NO_SIMD on a
/// build without it) and `Scalar` otherwise.
macro_rules! with_lanes {
    ($simd:expr, $lanes:ident => $body:expr) => {{
        if $simd != 0 {
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            {
                type $lanes = ops::lanes::Simd128;
                $body
            }
            #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
            {
                crate::abi::STATUS_NO_SIMD
            }
        } else {
            type $lanes = ops::lanes::Scalar;
            $body
        }
    }};
}

/// Element codes shared with TypeScript (src/backend/wasm/backend.ts): 0 f32, 1 f16, 2 bf16.
pub const DTYPE_F32: i32 = 0;
pub const DTYPE_F16: i32 = 1;
pub const DTYPE_BF16: i32 = 2;

/// `with_element!(dtype, E => body)`: runs body with `E` = f32, F16 or Bf16; an unknown code is STATUS_UNSUPPORTED.
macro_rules! with_element {
    ($dtype:expr, $elem:ident => $body:expr) => {{
        match $dtype {
            crate::dispatch::DTYPE_F32 => {
                type $elem = f32;
                $body
            }
            crate::dispatch::DTYPE_F16 => {
                type $elem = ops::convert::F16;
                $body
            }
            crate::dispatch::DTYPE_BF16 => {
                type $elem = ops::convert::Bf16;
                $body
            }
            _ => crate::abi::STATUS_UNSUPPORTED,
        }
    }};
}

pub(crate) use {with_element, with_lanes};
