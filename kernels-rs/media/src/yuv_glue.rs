//! Raw planar YUV frames (Y4M) to RGB through `crate::yuv`, with the matrix and range the stream declares
//! (BT.601 limited when it declares nothing, as ffmpeg).

use crate::track::{MatrixTag, RangeTag, Track, YuvLayout};
use crate::yuv::{yuv_to_rgb, Matrix, Range, Subsampling, YuvPlanes};
use crate::y4m::frame_bytes;
use crate::MediaError;

pub fn raw_to_rgb(bytes: &[u8], track: &Track, layout: YuvLayout) -> Result<Vec<u8>, MediaError> {
    let (w, h) = (track.width as usize, track.height as usize);
    if (bytes.len() as u64) < frame_bytes(layout, w as u64, h as u64) {
        return Err(MediaError::InvalidData("a raw YUV frame shorter than its size".into()));
    }
    let matrix = if track.matrix == MatrixTag::Bt709 { Matrix::Bt709 } else { Matrix::Bt601 };
    let range = if track.range == RangeTag::Full { Range::Full } else { Range::Limited };
    let mut out = vec![0u8; w * h * 3];
    let neutral;
    let (subsampling, y, u, v) = match layout {
        YuvLayout::Gray => {
            neutral = vec![128u8; w * h];
            (Subsampling::S444, &bytes[..w * h], &neutral[..], &neutral[..])
        }
        _ => {
            let subsampling = match layout {
                YuvLayout::Yuv420 => Subsampling::S420,
                YuvLayout::Yuv422 => Subsampling::S422,
                _ => Subsampling::S444,
            };
            let (cw, ch) = subsampling.chroma_size(w, h);
            let (y, rest) = bytes.split_at(w * h);
            let (u, rest) = rest.split_at(cw * ch);
            (subsampling, y, u, &rest[..cw * ch])
        }
    };
    let (cw, _) = subsampling.chroma_size(w, h);
    let planes = YuvPlanes { y, u, v, width: w, height: h, y_stride: w, uv_stride: cw, subsampling };
    yuv_to_rgb(&planes, matrix, range, &mut out)?;
    Ok(out)
}
