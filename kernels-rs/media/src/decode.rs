//! Decoding the chosen frames of a track, forward in stream order. Every codec here is intra-only except the
//! composited animations (GIF, APNG), which are replayed from the first frame on one canvas; so memory is one
//! frame (or one canvas) plus the caller's output buffer.

use crate::still::{scan_gif, scan_png, ApngFrame};
use crate::track::{Codec, Limits, Track, YuvLayout, SUPPORTED_CODECS};
use crate::MediaError;

type Result<T> = core::result::Result<T, MediaError>;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PixFmt {
    Rgb24,
    Yuv420p,
}

pub fn frame_bytes(pix_fmt: PixFmt, width: u32, height: u32) -> u64 {
    let (w, h) = (width as u64, height as u64);
    match pix_fmt {
        PixFmt::Rgb24 => w * h * 3,
        PixFmt::Yuv420p => w * h + 2 * ((w + 1) / 2) * ((h + 1) / 2),
    }
}

fn invalid<T>(m: String) -> Result<T> {
    Err(MediaError::InvalidData(m))
}

/// Writes frames `indices` (presentation order positions, any order, repeats allowed) of `track` into `out`,
/// one after another in the order given, each `frame_bytes(pix_fmt, width, height)` long.
pub fn decode_frames(data: &[u8], track: &Track, indices: &[u32], pix_fmt: PixFmt, out: &mut [u8], limits: &Limits) -> Result<()> {
    let size = frame_bytes(pix_fmt, track.width, track.height);
    let working = track.width as u64 * track.height as u64 * 8;
    let total = size.saturating_mul(indices.len() as u64).saturating_add(working);
    if total > limits.max_decoded_bytes {
        return Err(MediaError::Limit(format!(
            "{} frames of {}x{} need {} bytes, above the decoded-memory limit of {}",
            indices.len(), track.width, track.height, total, limits.max_decoded_bytes
        )));
    }
    if out.len() as u64 != size * indices.len() as u64 {
        return Err(MediaError::BadArgument(format!("the output buffer holds {} bytes, not {}", out.len(), size * indices.len() as u64)));
    }
    for &i in indices {
        if i as usize >= track.frames.len() {
            return Err(MediaError::BadArgument(format!("frame {} of a {}-frame video", i, track.frames.len())));
        }
    }
    // Visit the wanted frames in stream (decode) order, once each.
    let mut order: Vec<usize> = (0..indices.len()).collect();
    order.sort_by_key(|&k| (track.frames[indices[k] as usize].decode_index, k));
    let size = size as usize;
    let sink = |k_list: &[usize], rgb: &[u8], out: &mut [u8]| {
        for &k in k_list {
            let slot = &mut out[k * size..(k + 1) * size];
            match pix_fmt {
                PixFmt::Rgb24 => slot.copy_from_slice(rgb),
                PixFmt::Yuv420p => rgb_to_yuv420p(rgb, track.width as usize, track.height as usize, slot),
            }
        }
    };
    // Groups of output slots that want the same frame.
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for &k in &order {
        let frame = indices[k] as usize;
        match groups.last_mut() {
            Some((f, ks)) if *f == frame => ks.push(k),
            _ => groups.push((frame, vec![k])),
        }
    }
    match &track.codec {
        Codec::Other(name) => Err(MediaError::Unsupported(format!(
            "codec {} in {} (this build decodes: {})", name, track.container, SUPPORTED_CODECS
        ))),
        Codec::Mjpeg | Codec::Png => {
            for (frame, ks) in &groups {
                let f = &track.frames[*frame];
                let bytes = &data[f.offset as usize..(f.offset + f.size) as usize];
                let rgb = if track.codec == Codec::Mjpeg { decode_jpeg(bytes, track, limits)? } else { decode_png_rgb(bytes, track, limits)? };
                sink(ks, &rgb, out);
            }
            Ok(())
        }
        Codec::RawYuv(layout) => {
            for (frame, ks) in &groups {
                let f = &track.frames[*frame];
                let bytes = &data[f.offset as usize..(f.offset + f.size) as usize];
                if pix_fmt == PixFmt::Yuv420p && *layout == YuvLayout::Yuv420 {
                    for &k in ks {
                        out[k * size..(k + 1) * size].copy_from_slice(bytes);
                    }
                    continue;
                }
                let rgb = crate::yuv_glue::raw_to_rgb(bytes, track, *layout)?;
                sink(ks, &rgb, out);
            }
            Ok(())
        }
        Codec::Gif => decode_gif(data, track, &groups, limits, |ks, rgb| sink(ks, rgb, out)),
        Codec::Apng => decode_apng(data, track, &groups, limits, |ks, rgb| sink(ks, rgb, out)),
    }
}

fn decode_jpeg(bytes: &[u8], track: &Track, limits: &Limits) -> Result<Vec<u8>> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(limits.max_decoded_bytes.min(usize::MAX as u64) as usize);
    decoder.read_info().map_err(|e| MediaError::InvalidData(format!("JPEG frame header: {}", e)))?;
    let info = decoder.info().ok_or_else(|| MediaError::InvalidData("JPEG frame without a frame header".into()))?;
    if info.width as u32 != track.width || info.height as u32 != track.height {
        return invalid(format!("a {}x{} JPEG frame in a {}x{} track", info.width, info.height, track.width, track.height));
    }
    let pixels = decoder.decode().map_err(|e| MediaError::InvalidData(format!("JPEG frame: {}", e)))?;
    let n = track.width as usize * track.height as usize;
    match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 if pixels.len() >= n * 3 => Ok(pixels[..n * 3].to_vec()),
        jpeg_decoder::PixelFormat::L8 if pixels.len() >= n => Ok(pixels[..n].iter().flat_map(|&v| [v, v, v]).collect()),
        jpeg_decoder::PixelFormat::CMYK32 => Err(MediaError::Unsupported("CMYK JPEG frames".into())),
        _ => invalid("a JPEG frame decoded to an unexpected size".into()),
    }
}

/// Decodes a PNG to 8-bit RGBA (palette, grey and 16-bit expanded) with its size.
fn decode_png_rgba(bytes: &[u8], limits: &Limits) -> Result<(u32, u32, Vec<u8>)> {
    let cap = limits.max_decoded_bytes.min(usize::MAX as u64) as usize;
    let mut decoder = png::Decoder::new_with_limits(bytes, png::Limits { bytes: cap });
    // 16-bit samples are kept and rounded below as ffmpeg does ((v + 128) >> 8), not truncated by STRIP_16.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(|e| MediaError::InvalidData(format!("PNG: {}", e)))?;
    let (width, height) = (reader.info().width, reader.info().height);
    if width as u64 * height as u64 > limits.max_pixels {
        return Err(MediaError::Limit(format!("a {}x{} PNG, above the limit of {} pixels", width, height, limits.max_pixels)));
    }
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| MediaError::InvalidData(format!("PNG: {}", e)))?;
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return invalid("a PNG palette that was not expanded".into()),
    };
    let n = width as usize * height as usize;
    let stride = info.line_size;
    let bytes_per_sample = match info.bit_depth {
        png::BitDepth::Eight => 1,
        png::BitDepth::Sixteen => 2,
        _ => return invalid("a PNG that did not expand to 8 or 16 bits".into()),
    };
    let row_bytes = width as usize * channels * bytes_per_sample;
    if stride < row_bytes || buf.len() < stride * height as usize {
        return invalid("a PNG whose rows are shorter than its width".into());
    }
    let mut rgba = Vec::with_capacity(n * 4);
    let mut row8 = vec![0u8; width as usize * channels];
    for y in 0..height as usize {
        let raw = &buf[y * stride..y * stride + row_bytes];
        let row: &[u8] = if bytes_per_sample == 1 {
            raw
        } else {
            for (d, v) in row8.iter_mut().zip(raw.chunks_exact(2)) {
                *d = ((u16::from_be_bytes([v[0], v[1]]) as u32 + 128) >> 8).min(255) as u8;
            }
            &row8
        };
        for p in row.chunks_exact(channels) {
            let px = match channels {
                1 => [p[0], p[0], p[0], 255],
                2 => [p[0], p[0], p[0], p[1]],
                3 => [p[0], p[1], p[2], 255],
                _ => [p[0], p[1], p[2], p[3]],
            };
            rgba.extend_from_slice(&px);
        }
    }
    Ok((width, height, rgba))
}

fn decode_png_rgb(bytes: &[u8], track: &Track, limits: &Limits) -> Result<Vec<u8>> {
    let (w, h, rgba) = decode_png_rgba(bytes, limits)?;
    if w != track.width || h != track.height {
        return invalid(format!("a {}x{} PNG frame in a {}x{} track", w, h, track.width, track.height));
    }
    // Alpha is dropped, as ffmpeg does converting rgba to rgb24.
    Ok(rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect())
}

fn decode_gif(data: &[u8], track: &Track, groups: &[(usize, Vec<usize>)], limits: &Limits, mut emit: impl FnMut(&[usize], &[u8])) -> Result<()> {
    let (width, height, _) = scan_gif(data, limits.max_frames)?;
    let (w, h) = (width as usize, height as usize);
    let last = groups.iter().map(|g| g.0).max().unwrap_or(0);
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    options.set_memory_limit(gif::MemoryLimit(limits.max_decoded_bytes.min(u32::MAX as u64) as u32));
    let mut decoder = options.read_info(data).map_err(|e| MediaError::InvalidData(format!("GIF: {}", e)))?;
    let global: Vec<u8> = decoder.global_palette().map(|p| p.to_vec()).unwrap_or_default();
    let background = decoder
        .bg_color()
        .and_then(|i| global.get(i * 3..i * 3 + 3))
        .map(|c| [c[0], c[1], c[2]])
        .unwrap_or([0, 0, 0]);
    // As ffmpeg's GIF decoder: transparent pixels are "transparent white" (white once alpha is dropped); the canvas
    // starts as the background colour when the first image has no transparent index and there is a global
    // palette, else transparent; a frame's disposal acts before the next frame is drawn.
    const TRANSPARENT: [u8; 3] = [255, 255, 255];
    let mut canvas = vec![0u8; w * h * 3];
    let mut started = false;
    let mut saved: Vec<u8> = Vec::new();
    let mut pending: Option<(gif::DisposalMethod, [usize; 4], [u8; 3])> = None;
    let mut group = 0usize;
    for index in 0..=last {
        let frame = match decoder.read_next_frame().map_err(|e| MediaError::InvalidData(format!("GIF frame {}: {}", index, e)))? {
            Some(f) => f,
            None => return invalid(format!("the GIF ends before frame {}", index)),
        };
        let rect = [frame.left as usize, frame.top as usize, frame.width as usize, frame.height as usize];
        let clip = |r: [usize; 4]| -> (usize, usize, usize, usize) {
            let x0 = r[0].min(w);
            let y0 = r[1].min(h);
            ((x0), (y0), (r[0] + r[2]).min(w), (r[1] + r[3]).min(h))
        };
        if let Some((dispose, r, fill)) = pending.take() {
            let (x0, y0, x1, y1) = clip(r);
            match dispose {
                gif::DisposalMethod::Background => {
                    for y in y0..y1 {
                        for px in canvas[(y * w + x0) * 3..(y * w + x1) * 3].chunks_exact_mut(3) {
                            px.copy_from_slice(&fill);
                        }
                    }
                }
                gif::DisposalMethod::Previous if saved.len() == canvas.len() => canvas.copy_from_slice(&saved),
                _ => {}
            }
        }
        if !started {
            let fill = if frame.transparent.is_none() && !global.is_empty() { background } else { TRANSPARENT };
            for px in canvas.chunks_exact_mut(3) {
                px.copy_from_slice(&fill);
            }
            started = true;
        }
        if frame.dispose == gif::DisposalMethod::Previous {
            saved.clear();
            saved.extend_from_slice(&canvas);
        }
        let palette: &[u8] = frame.palette.as_deref().unwrap_or(&global);
        let (x0, y0, x1, y1) = clip(rect);
        let fw = rect[2];
        if frame.buffer.len() < rect[2] * rect[3] {
            return invalid(format!("GIF frame {} has fewer pixels than its size", index));
        }
        for y in y0..y1 {
            for x in x0..x1 {
                let c = frame.buffer[(y - rect[1]) * fw + (x - rect[0])];
                if Some(c) == frame.transparent {
                    continue;
                }
                let at = (y * w + x) * 3;
                match palette.get(c as usize * 3..c as usize * 3 + 3) {
                    Some(rgb) => canvas[at..at + 3].copy_from_slice(rgb),
                    None => canvas[at..at + 3].copy_from_slice(&[0, 0, 0]),
                }
            }
        }
        let fill = if frame.transparent.is_some() { TRANSPARENT } else { background };
        pending = Some((frame.dispose, rect, fill));
        while group < groups.len() && groups[group].0 == index {
            emit(&groups[group].1, &canvas);
            group += 1;
        }
    }
    let _ = track;
    Ok(())
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A standalone PNG of one APNG frame: IHDR with the frame's size, the palette chunks, its data as IDAT.
fn frame_png(data: &[u8], ihdr: (usize, usize), extra: &[(usize, usize)], f: &ApngFrame) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = data[ihdr.0..ihdr.1].to_vec();
    if header.len() >= 8 {
        header[0..4].copy_from_slice(&f.width.to_be_bytes());
        header[4..8].copy_from_slice(&f.height.to_be_bytes());
    }
    chunk(&mut png, b"IHDR", &header);
    for &(s, e) in extra {
        png.extend_from_slice(&data[s..e]);
    }
    for &(s, e) in &f.data {
        chunk(&mut png, b"IDAT", &data[s..e]);
    }
    chunk(&mut png, b"IEND", &[]);
    png
}

fn decode_apng(data: &[u8], track: &Track, groups: &[(usize, Vec<usize>)], limits: &Limits, mut emit: impl FnMut(&[usize], &[u8])) -> Result<()> {
    let scan = scan_png(data, limits.max_frames)?;
    let (w, h) = (track.width as usize, track.height as usize);
    let last = groups.iter().map(|g| g.0).max().unwrap_or(0);
    let mut canvas = vec![0u8; w * h * 4];
    let mut saved: Vec<u8> = Vec::new();
    let mut rgb = vec![0u8; w * h * 3];
    let mut group = 0usize;
    for index in 0..=last {
        let f = scan.frames.get(index).ok_or_else(|| MediaError::InvalidData(format!("APNG frame {} is missing", index)))?;
        let (fx, fy, fw, fh) = (f.x as usize, f.y as usize, f.width as usize, f.height as usize);
        if fx.checked_add(fw).map_or(true, |e| e > w) || fy.checked_add(fh).map_or(true, |e| e > h) {
            return invalid(format!("APNG frame {} lies outside the canvas", index));
        }
        let (pw, ph, pixels) = decode_png_rgba(&frame_png(data, scan.ihdr, &scan.extra_chunks, f), limits)?;
        if pw as usize != fw || ph as usize != fh {
            return invalid(format!("APNG frame {} decoded to the wrong size", index));
        }
        let mut dispose = f.dispose;
        if index == 0 && dispose == 2 {
            dispose = 1;
        }
        if dispose == 2 {
            saved.clear();
            saved.extend_from_slice(&canvas);
        }
        for y in 0..fh {
            for x in 0..fw {
                let src = &pixels[(y * fw + x) * 4..(y * fw + x) * 4 + 4];
                let at = ((fy + y) * w + fx + x) * 4;
                let dst = &mut canvas[at..at + 4];
                if f.blend == 0 || src[3] == 255 {
                    dst.copy_from_slice(src);
                } else if src[3] != 0 {
                    let (a, ba) = (src[3] as u32, dst[3] as u32);
                    let out_a = a * 255 + (255 - a) * ba;
                    for c in 0..3 {
                        let v = (a * 255 * src[c] as u32 + (255 - a) * ba * dst[c] as u32 + out_a / 2) / out_a.max(1);
                        dst[c] = v.min(255) as u8;
                    }
                    dst[3] = ((out_a + 127) / 255) as u8;
                }
            }
        }
        if group < groups.len() && groups[group].0 == index {
            for (d, s) in rgb.chunks_exact_mut(3).zip(canvas.chunks_exact(4)) {
                d.copy_from_slice(&s[..3]);
            }
        }
        while group < groups.len() && groups[group].0 == index {
            emit(&groups[group].1, &rgb);
            group += 1;
        }
        match dispose {
            1 => {
                for y in fy..fy + fh {
                    canvas[(y * w + fx) * 4..(y * w + fx + fw) * 4].fill(0);
                }
            }
            2 if saved.len() == canvas.len() => canvas.copy_from_slice(&saved),
            _ => {}
        }
    }
    Ok(())
}

/// RGB to yuv420p with BT.601 limited-range integer coefficients (2×2 chroma average); odd edges replicate.
pub fn rgb_to_yuv420p(rgb: &[u8], w: usize, h: usize, out: &mut [u8]) {
    let (cw, ch) = ((w + 1) / 2, (h + 1) / 2);
    let (y_plane, chroma) = out.split_at_mut(w * h);
    let (u_plane, v_plane) = chroma.split_at_mut(cw * ch);
    for i in 0..w * h {
        let (r, g, b) = (rgb[i * 3] as i32, rgb[i * 3 + 1] as i32, rgb[i * 3 + 2] as i32);
        y_plane[i] = (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
    }
    for cy in 0..ch {
        for cx in 0..cw {
            let (mut r, mut g, mut b) = (0i32, 0i32, 0i32);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let x = (cx * 2 + dx).min(w - 1);
                let y = (cy * 2 + dy).min(h - 1);
                let p = (y * w + x) * 3;
                r += rgb[p] as i32;
                g += rgb[p + 1] as i32;
                b += rgb[p + 2] as i32;
            }
            let (r, g, b) = ((r + 2) / 4, (g + 2) / 4, (b + 2) / 4);
            u_plane[cy * cw + cx] = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128).clamp(0, 255) as u8;
            v_plane[cy * cw + cx] = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128).clamp(0, 255) as u8;
        }
    }
}
