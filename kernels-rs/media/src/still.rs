//! Images as tracks: JPEG and PNG stills (one frame), GIF (one or many frames, with delays and disposal),
//! and APNG (fcTL frames). The scanners only walk block and chunk headers; pixels are decoded in `decode.rs`.

use crate::reader::{invalid, Reader, Result};
use crate::track::{Codec, Frame, Limits, MatrixTag, RangeTag, Track};
use crate::MediaError;

fn still(container: &'static str, codec: Codec, width: u32, height: u32, size: usize, limits: &Limits) -> Result<Track> {
    // A still is a one-frame video at ffmpeg's image2 default of 25 frames per second.
    Track {
        container,
        codec,
        width,
        height,
        timescale: 25,
        frames: vec![Frame { pts: 0, dts: 0, keyframe: true, offset: 0, size: size as u64, decode_index: 0 }],
        end_pts: 1,
        matrix: MatrixTag::Unspecified,
        range: RangeTag::Unspecified,
        codec_config: None,
    }
    .finish(limits)
}

pub fn jpeg(data: &[u8], limits: &Limits) -> Result<Track> {
    let mut decoder = jpeg_decoder::Decoder::new(data);
    decoder.read_info().map_err(|e| MediaError::InvalidData(format!("JPEG header: {}", e)))?;
    let info = decoder.info().ok_or_else(|| MediaError::InvalidData("JPEG without a frame header".into()))?;
    still("jpeg", Codec::Mjpeg, info.width as u32, info.height as u32, data.len(), limits)
}

/// One GIF image: (offset of the image descriptor, delay in 1/100 s as ffmpeg clamps it).
pub struct GifImage {
    pub offset: usize,
    pub delay: u32,
}

fn skip_sub_blocks(r: &mut Reader) -> Result<()> {
    loop {
        let n = r.u8()? as usize;
        if n == 0 {
            return Ok(());
        }
        r.skip(n)?;
    }
}

/// Walks a GIF's blocks; returns the canvas size and every complete image.
pub fn scan_gif(data: &[u8], max_frames: u64) -> Result<(u32, u32, Vec<GifImage>)> {
    let mut r = Reader::new(data);
    let magic = r.bytes(6)?;
    if magic != b"GIF87a" && magic != b"GIF89a" {
        return invalid("not a GIF");
    }
    let width = r.le16()? as u32;
    let height = r.le16()? as u32;
    let packed = r.u8()?;
    r.skip(2)?;
    if packed & 0x80 != 0 {
        r.skip(3 << ((packed & 7) + 1))?;
    }
    let mut images = Vec::new();
    let mut delay = 0u32;
    loop {
        let block = match r.u8() {
            Ok(b) => b,
            Err(e) if images.is_empty() => return Err(e),
            Err(_) => break, // no trailer: keep the complete images, as ffmpeg does
        };
        match block {
            0x21 => {
                let label = r.u8()?;
                if label == 0xF9 {
                    let n = r.u8()? as usize;
                    let mut gce = Reader::new(r.bytes(n)?);
                    gce.skip(1)?;
                    delay = gce.le16()? as u32;
                    skip_sub_blocks(&mut r)?;
                } else {
                    skip_sub_blocks(&mut r)?;
                }
            }
            0x2C => {
                let offset = r.pos - 1;
                let complete = (|| -> Result<()> {
                    r.skip(4)?;
                    // An empty image is malformed; the gif crate also stalls on one (it never consumes its data).
                    if r.le16()? == 0 || r.le16()? == 0 {
                        return invalid("a GIF image of zero width or height");
                    }
                    let packed = r.u8()?;
                    if packed & 0x80 != 0 {
                        r.skip(3 << ((packed & 7) + 1))?;
                    }
                    r.skip(1)?;
                    skip_sub_blocks(&mut r)
                })();
                if let Err(e) = complete {
                    if images.is_empty() {
                        return Err(e);
                    }
                    break;
                }
                // ffmpeg's GIF demuxer: delays under 2/100 s become 10/100 s.
                images.push(GifImage { offset, delay: if delay < 2 { 10 } else { delay } });
                if images.len() as u64 > max_frames {
                    return Err(MediaError::Limit(format!("more than {} frames", max_frames)));
                }
                delay = 0;
            }
            0x3B => break,
            _ if images.is_empty() => return invalid("an unknown GIF block"),
            _ => break,
        }
    }
    if images.is_empty() {
        return invalid("a GIF without images");
    }
    Ok((width, height, images))
}

pub fn gif(data: &[u8], limits: &Limits) -> Result<Track> {
    let (width, height, images) = scan_gif(data, limits.max_frames)?;
    let mut frames = Vec::with_capacity(images.len());
    let mut pts = 0i64;
    for (i, image) in images.iter().enumerate() {
        frames.push(Frame { pts, dts: pts, keyframe: i == 0, offset: image.offset as u64, size: 0, decode_index: i as u32 });
        pts += image.delay as i64;
    }
    Track { container: "gif", codec: Codec::Gif, width, height, timescale: 100, frames, end_pts: pts, matrix: MatrixTag::Unspecified, range: RangeTag::Unspecified, codec_config: None }
        .finish(limits)
}

/// An APNG frame control (fcTL) with the byte ranges of its data chunks (IDAT or fdAT payloads).
#[derive(Clone)]
pub struct ApngFrame {
    pub width: u32,
    pub height: u32,
    pub x: u32,
    pub y: u32,
    pub delay_num: u16,
    pub delay_den: u16,
    pub dispose: u8,
    pub blend: u8,
    /// (start, end) of each compressed data piece, in order.
    pub data: Vec<(usize, usize)>,
}

pub struct PngScan {
    pub width: u32,
    pub height: u32,
    /// IHDR bytes (13) and the PLTE/tRNS chunks (whole, with headers) a frame's standalone PNG needs.
    pub ihdr: (usize, usize),
    pub extra_chunks: Vec<(usize, usize)>,
    pub animated: bool,
    pub frames: Vec<ApngFrame>,
}

/// Walks a PNG's chunks (no CRC check: the decoder checks what it decodes).
pub fn scan_png(data: &[u8], max_frames: u64) -> Result<PngScan> {
    let mut r = Reader::new(data);
    if r.bytes(8)? != b"\x89PNG\r\n\x1a\n" {
        return invalid("not a PNG");
    }
    let mut scan = PngScan { width: 0, height: 0, ihdr: (0, 0), extra_chunks: Vec::new(), animated: false, frames: Vec::new() };
    let mut current: Option<ApngFrame> = None;
    let mut seen_idat = false;
    let mut default_image_in_animation = false;
    while r.remaining() >= 12 {
        let start = r.pos;
        let length = r.be32()? as usize;
        let kind = r.fourcc()?;
        if length > r.remaining().saturating_sub(4) {
            if scan.frames.is_empty() && current.is_none() {
                return invalid("a PNG chunk extends past the end");
            }
            break;
        }
        let body = r.pos;
        let mut c = Reader::range(data, body, body + length)?;
        r.skip(length + 4)?;
        match &kind {
            b"IHDR" => {
                scan.width = c.be32()?;
                scan.height = c.be32()?;
                scan.ihdr = (body, body + length);
            }
            b"PLTE" | b"tRNS" => scan.extra_chunks.push((start, body + length + 4)),
            b"acTL" => scan.animated = true,
            b"fcTL" => {
                c.skip(4)?;
                let frame = ApngFrame {
                    width: c.be32()?,
                    height: c.be32()?,
                    x: c.be32()?,
                    y: c.be32()?,
                    delay_num: c.be16()?,
                    delay_den: c.be16()?,
                    dispose: c.u8()?,
                    blend: c.u8()?,
                    data: Vec::new(),
                };
                if !seen_idat {
                    default_image_in_animation = true;
                }
                if let Some(f) = current.take() {
                    scan.frames.push(f);
                }
                if scan.frames.len() as u64 >= max_frames {
                    return Err(MediaError::Limit(format!("more than {} frames", max_frames)));
                }
                current = Some(frame);
            }
            b"IDAT" => {
                seen_idat = true;
                if default_image_in_animation || !scan.animated {
                    match current.as_mut() {
                        Some(f) => f.data.push((body, body + length)),
                        None => {
                            // A still PNG: one frame covering the canvas.
                            current = Some(ApngFrame {
                                width: scan.width, height: scan.height, x: 0, y: 0, delay_num: 0, delay_den: 0,
                                dispose: 0, blend: 0, data: vec![(body, body + length)],
                            });
                        }
                    }
                }
            }
            b"fdAT" => {
                if length < 4 {
                    return invalid("an fdAT chunk shorter than its sequence number");
                }
                if let Some(f) = current.as_mut() {
                    f.data.push((body + 4, body + length));
                }
            }
            b"IEND" => break,
            _ => {}
        }
    }
    if let Some(f) = current.take() {
        scan.frames.push(f);
    }
    scan.frames.retain(|f| !f.data.is_empty());
    if scan.frames.is_empty() {
        return invalid("a PNG without image data");
    }
    Ok(scan)
}

pub fn png(data: &[u8], limits: &Limits) -> Result<Track> {
    let scan = scan_png(data, limits.max_frames)?;
    if !scan.animated {
        return still("png", Codec::Png, scan.width, scan.height, data.len(), limits);
    }
    // ffmpeg's APNG demuxer: time base 1/100000, a zero denominator means 1/100 s, a zero delay 1/15 s.
    let mut frames = Vec::with_capacity(scan.frames.len());
    let mut pts = 0i64;
    for (i, f) in scan.frames.iter().enumerate() {
        frames.push(Frame { pts, dts: pts, keyframe: i == 0, offset: f.data[0].0 as u64, size: 0, decode_index: i as u32 });
        let den = if f.delay_den == 0 { 100 } else { f.delay_den as i64 };
        let (num, den) = if f.delay_num == 0 { (1, 15) } else { (f.delay_num as i64, den) };
        pts += num * 100_000 / den;
    }
    Track { container: "apng", codec: Codec::Apng, width: scan.width, height: scan.height, timescale: 100_000, frames, end_pts: pts, matrix: MatrixTag::Unspecified, range: RangeTag::Unspecified, codec_config: None }
        .finish(limits)
}
