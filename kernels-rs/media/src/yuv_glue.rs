//! Raw planar YUV frames (Y4M) to RGB, through `crate::yuv` (BT.601 limited unless the stream declares otherwise).

use crate::track::{Track, YuvLayout};
use crate::MediaError;

pub fn raw_to_rgb(_bytes: &[u8], _track: &Track, _layout: YuvLayout) -> Result<Vec<u8>, MediaError> {
    Err(MediaError::Unsupported("Y4M to rgb24 needs yuv.rs (not merged yet); use pix_fmt yuv420p for 4:2:0".into()))
}
