//! YUV4MPEG2 (Y4M) demuxer: the header line's size, rate, chroma layout and range, then one FRAME per picture.

use crate::reader::{invalid, Result};
use crate::track::{Codec, Frame, Limits, MatrixTag, RangeTag, Track, YuvLayout};
use crate::MediaError;

fn line(data: &[u8], start: usize) -> Result<(&[u8], usize)> {
    // Header and FRAME lines are short; a missing newline within 4 KiB is malformed, not a reason to scan on.
    let window = &data[start..data.len().min(start + 4096)];
    match window.iter().position(|&b| b == b'\n') {
        Some(n) => Ok((&window[..n], start + n + 1)),
        None => invalid("a Y4M header line without a newline"),
    }
}

fn ratio(text: &str) -> Option<(u64, u64)> {
    let mut parts = text.splitn(2, ':');
    let n = parts.next()?.parse().ok()?;
    let d = parts.next()?.parse().ok()?;
    Some((n, d))
}

/// Bytes of one 8-bit frame of `layout`.
pub fn frame_bytes(layout: YuvLayout, width: u64, height: u64) -> u64 {
    let (cw, ch) = ((width + 1) / 2, (height + 1) / 2);
    match layout {
        YuvLayout::Yuv420 => width * height + 2 * cw * ch,
        YuvLayout::Yuv422 => width * height + 2 * cw * height,
        YuvLayout::Yuv444 => 3 * width * height,
        YuvLayout::Gray => width * height,
    }
}

pub fn demux(data: &[u8], limits: &Limits) -> Result<Track> {
    let (header, mut pos) = line(data, 0)?;
    let header = String::from_utf8_lossy(header);
    let (mut width, mut height, mut rate, mut layout, mut range) =
        (0u64, 0u64, (25u64, 1u64), YuvLayout::Yuv420, RangeTag::Unspecified);
    for token in header.split(' ').skip(1) {
        // The tag is the first character (any UTF-8 width: the header may be corrupt), the value the rest.
        let tag = match token.chars().next() {
            Some(c) => c,
            None => continue,
        };
        let value = &token[tag.len_utf8()..];
        match tag {
            'W' => width = value.parse().map_err(|_| MediaError::InvalidData(format!("Y4M width '{}'", value)))?,
            'H' => height = value.parse().map_err(|_| MediaError::InvalidData(format!("Y4M height '{}'", value)))?,
            'F' => rate = ratio(value).ok_or_else(|| MediaError::InvalidData(format!("Y4M frame rate '{}'", value)))?,
            'C' => {
                layout = match value {
                    "420jpeg" | "420paldv" | "420mpeg2" | "420" => YuvLayout::Yuv420,
                    "422" => YuvLayout::Yuv422,
                    "444" => YuvLayout::Yuv444,
                    "mono" => YuvLayout::Gray,
                    other => {
                        return Err(MediaError::Unsupported(format!(
                            "Y4M colour space C{} (supported: 420jpeg, 420paldv, 420mpeg2, 422, 444, mono, 8-bit)", other
                        )))
                    }
                }
            }
            'X' => {
                if value == "COLORRANGE=FULL" {
                    range = RangeTag::Full;
                } else if value == "COLORRANGE=LIMITED" {
                    range = RangeTag::Limited;
                }
            }
            _ => {}
        }
    }
    if rate.0 == 0 || rate.1 == 0 {
        return invalid("a Y4M frame rate of zero");
    }
    if width == 0 || height == 0 || width > u32::MAX as u64 || height > u32::MAX as u64 {
        return invalid("a Y4M frame size of zero or too large");
    }
    if width * height > limits.max_pixels {
        return Err(MediaError::Limit(format!("{}x{} is above the limit of {} pixels", width, height, limits.max_pixels)));
    }
    let size = frame_bytes(layout, width, height);
    let mut frames = Vec::new();
    while pos < data.len() {
        if !data[pos..].starts_with(b"FRAME") {
            return invalid("a Y4M frame that does not start with FRAME");
        }
        let (_, next) = line(data, pos)?;
        if next as u64 + size > data.len() as u64 {
            // A truncated last frame is dropped, as ffmpeg does.
            break;
        }
        if frames.len() as u64 >= limits.max_frames {
            return Err(MediaError::Limit(format!("more than {} frames", limits.max_frames)));
        }
        let i = frames.len() as i64;
        frames.push(Frame { pts: i * rate.1 as i64, dts: i * rate.1 as i64, keyframe: true, offset: next as u64, size, decode_index: i as u32 });
        pos = next + size as usize;
    }
    let end_pts = frames.len() as i64 * rate.1 as i64;
    Track {
        container: "y4m",
        codec: Codec::RawYuv(layout),
        width: width as u32,
        height: height as u32,
        timescale: rate.0,
        frames,
        end_pts,
        matrix: MatrixTag::Unspecified,
        range,
        codec_config: None,
    }
    .finish(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_header_bytes_are_an_error_not_a_panic() {
        // A length-field mutation found by tests/media_fuzz.test.ts: non-ASCII bytes where a tag letter goes.
        let mut data = b"YUV4MPEG2 W2 H2 F25:1 \xff\xfe\xfd C444\nFRAME\n".to_vec();
        data.extend_from_slice(&[0u8; 12]);
        let track = demux(&data, &Limits::default()).unwrap();
        assert_eq!(track.frames.len(), 1);
        assert!(demux(b"YUV4MPEG2 \xffW2 H2\n", &Limits::default()).is_err());
    }
}
