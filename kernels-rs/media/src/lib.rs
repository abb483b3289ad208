//! Media for ppllava-edge: sniff and demux containers, decode the sampled frames, convert YUV to RGB, and resize
//! exactly as Pillow does. Every parser is a bounds-checked reader: malformed input is a `MediaError`, never a panic.

/// Why a media operation failed. The C ABI maps these to status codes (kernels-rs/kernels/src/abi.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaError {
    /// The container or codec is recognised but not handled by this build; the message names it.
    Unsupported(String),
    /// The data is malformed: truncated, inconsistent, pointing past the end.
    InvalidData(String),
    /// A configured limit (bytes, pixels, frames, duration, decoded memory) would be exceeded.
    Limit(String),
    /// Arguments out of range (a frame index past the end, a zero size).
    BadArgument(String),
}

impl core::fmt::Display for MediaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MediaError::Unsupported(m) => write!(f, "unsupported: {}", m),
            MediaError::InvalidData(m) => write!(f, "invalid data: {}", m),
            MediaError::Limit(m) => write!(f, "limit: {}", m),
            MediaError::BadArgument(m) => write!(f, "bad argument: {}", m),
        }
    }
}

pub mod yuv;
pub mod resize;
pub mod preprocess;
