//! Container detection from the first bytes (never from a file name).

use crate::MediaError;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Container {
    Mp4,
    Mov,
    Matroska,
    Avi,
    Y4m,
    Jpeg,
    Png,
    Gif,
}

pub const SUPPORTED_CONTAINERS: &str = "mp4, mov, matroska, webm, avi, y4m, gif, apng, png, jpeg";

fn box_kind_at(data: &[u8], at: usize) -> Option<&[u8]> {
    data.get(at + 4..at + 8)
}

pub fn sniff(data: &[u8]) -> Result<Container, MediaError> {
    let starts = |magic: &[u8]| data.starts_with(magic);
    if starts(b"\x1a\x45\xdf\xa3") {
        return Ok(Container::Matroska);
    }
    if starts(b"RIFF") && data.get(8..12) == Some(b"AVI ") {
        return Ok(Container::Avi);
    }
    if starts(b"YUV4MPEG2 ") {
        return Ok(Container::Y4m);
    }
    if starts(b"\xff\xd8\xff") {
        return Ok(Container::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(Container::Png);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Ok(Container::Gif);
    }
    match box_kind_at(data, 0) {
        Some(b"ftyp") => {
            let brand = data.get(8..12);
            return Ok(if brand == Some(b"qt  ") { Container::Mov } else { Container::Mp4 });
        }
        Some(b"moov") | Some(b"mdat") | Some(b"wide") | Some(b"free") | Some(b"skip") | Some(b"pnot") => {
            return Ok(Container::Mov)
        }
        _ => {}
    }
    let other = if data.len() > 188 && data[0] == 0x47 && data[188] == 0x47 {
        "MPEG transport stream"
    } else if starts(b"\x00\x00\x01\xba") {
        "MPEG program stream"
    } else if starts(b"FLV") {
        "FLV"
    } else if starts(b"OggS") {
        "Ogg"
    } else if starts(b"\x30\x26\xb2\x75") {
        "ASF/WMV"
    } else if starts(b"\x00\x00\x00\x01") || starts(b"\x00\x00\x01") {
        "a raw Annex-B elementary stream"
    } else if starts(b"RIFF") && data.get(8..12) == Some(b"WEBP") {
        "WebP"
    } else if starts(b"BM") {
        "BMP"
    } else {
        return Err(MediaError::InvalidData(format!(
            "unrecognised data (first bytes {:02x?}); supported containers: {}", &data[..data.len().min(8)], SUPPORTED_CONTAINERS
        )));
    };
    Err(MediaError::Unsupported(format!("container {} (supported: {})", other, SUPPORTED_CONTAINERS)))
}
