//! Media for ppllava-edge: sniff and demux containers, decode the sampled frames, convert YUV to RGB, and resize
//! exactly as Pillow does. Every parser is a bounds-checked reader: malformed input is a `MediaError`, never a panic.

pub mod avi;
pub mod decode;
pub mod mkv;
pub mod mp4;
pub mod reader;
pub mod sniff;
pub mod still;
pub mod track;
pub mod y4m;
pub mod yuv_glue;

pub use track::{Codec, Frame, Limits, Track};

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

/// Sniffs `data` by content and demuxes its first video track (frame table in presentation order).
pub fn open(data: &[u8], limits: &Limits) -> Result<Track, MediaError> {
    if data.len() as u64 > limits.max_input_bytes {
        return Err(MediaError::Limit(format!("{} input bytes, above the limit of {}", data.len(), limits.max_input_bytes)));
    }
    use sniff::Container;
    match sniff::sniff(data)? {
        Container::Mp4 => mp4::demux(data, limits, "mp4"),
        Container::Mov => mp4::demux(data, limits, "mov"),
        Container::Matroska => mkv::demux(data, limits),
        Container::Avi => avi::demux(data, limits),
        Container::Y4m => y4m::demux(data, limits),
        Container::Jpeg => still::jpeg(data, limits),
        Container::Png => still::png(data, limits),
        Container::Gif => still::gif(data, limits),
    }
}
