//! AVI (RIFF) demuxer: the first video stream, indexed by OpenDML `indx`/`ix##` when present, else by `idx1`,
//! else by scanning the `movi` lists. Every frame is a keyframe unless the index says otherwise.

use crate::reader::{check_count, fourcc_text, invalid, Reader, Result};
use crate::track::{Codec, Frame, Limits, MatrixTag, RangeTag, Track};
use crate::MediaError;

/// Next chunk: (id, content reader, chunk start). LIST/RIFF content starts at the list type.
fn next_chunk<'a>(r: &mut Reader<'a>) -> Result<Option<([u8; 4], Reader<'a>, usize)>> {
    if r.remaining() < 8 {
        return Ok(None);
    }
    let start = r.pos;
    let id = r.fourcc()?;
    let size = r.le32()? as usize;
    // A chunk longer than its parent is cut at the parent's end (truncated recordings are common).
    let end = r.pos.saturating_add(size).min(r.end());
    let content = Reader::range(r.data(), r.pos, end)?;
    r.pos = (end + (size & 1)).min(r.end());
    Ok(Some((id, content, start)))
}

pub fn codec_of_fourcc(code: &[u8; 4]) -> Codec {
    let upper: Vec<u8> = code.iter().map(|c| c.to_ascii_uppercase()).collect();
    match &upper[..] {
        b"MJPG" | b"AVRN" | b"DMB1" | b"JPGL" | b"MJLS" => Codec::Mjpeg,
        b"MPNG" | b"PNG1" | b"PNG " => Codec::Png,
        b"H264" | b"X264" | b"AVC1" | b"DAVC" => Codec::Other("h264".into()),
        b"HEVC" | b"H265" | b"HVC1" => Codec::Other("hevc".into()),
        b"XVID" | b"DIVX" | b"FMP4" | b"DX50" | b"MP4V" => Codec::Other("mpeg4".into()),
        b"VP80" => Codec::Other("vp8".into()),
        b"VP90" => Codec::Other("vp9".into()),
        b"AV01" => Codec::Other("av1".into()),
        _ => Codec::Other(format!("'{}'", fourcc_text(code))),
    }
}

struct Stream {
    number: usize,
    scale: u32,
    rate: u32,
    width: u32,
    height: u32,
    codec: Codec,
    indx: Option<(usize, usize)>,
    extra: Option<(u64, u64)>,
}

fn is_video_chunk(id: &[u8; 4], number: usize) -> bool {
    let digits = [b'0' + (number / 10) as u8, b'0' + (number % 10) as u8];
    id[0] == digits[0] && id[1] == digits[1] && (&id[2..] == b"dc" || &id[2..] == b"db")
}

/// (offset of data, size, keyframe) per frame in stream order.
type Entry = (u64, u64, bool);

fn read_std_index(data: &[u8], mut ix: Reader, out: &mut Vec<Entry>, max_frames: u64) -> Result<()> {
    let longs = ix.le16()?;
    ix.skip(1)?;
    let kind = ix.u8()?;
    let count = ix.le32()? as u64;
    ix.skip(4)?;
    if kind != 1 || longs != 2 {
        return invalid("an OpenDML standard index with an unexpected layout");
    }
    let base = ix.le64()?;
    ix.skip(4)?;
    let count = check_count(count, 8, ix.remaining(), "ix## index")?;
    if (out.len() + count) as u64 > max_frames {
        return Err(MediaError::Limit(format!("more than {} frames", max_frames)));
    }
    for _ in 0..count {
        let offset = ix.le32()? as u64;
        let size = ix.le32()?;
        out.push((base.wrapping_add(offset), (size & 0x7fff_ffff) as u64, size & 0x8000_0000 == 0));
    }
    let _ = data;
    Ok(())
}

fn opendml_index(data: &[u8], mut indx: Reader, max_frames: u64) -> Result<Vec<Entry>> {
    let longs = indx.le16()?;
    indx.skip(1)?;
    let kind = indx.u8()?;
    let mut out = Vec::new();
    if kind == 1 {
        // An index of chunks kept directly in the stream header.
        let mut r = indx.clone();
        r.pos -= 4;
        read_std_index(data, r, &mut out, max_frames)?;
        return Ok(out);
    }
    let count = indx.le32()? as u64;
    indx.skip(16)?;
    if kind != 0 || longs != 4 {
        return invalid("an OpenDML super index with an unexpected layout");
    }
    let count = check_count(count, 16, indx.remaining(), "indx super index")?;
    for _ in 0..count {
        let offset = indx.le64()?;
        indx.skip(8)?;
        if offset >= data.len() as u64 {
            return invalid("an OpenDML super index entry points past the end");
        }
        let mut r = Reader::range(data, offset as usize, data.len())?;
        if let Some((_, ix, _)) = next_chunk(&mut r)? {
            read_std_index(data, ix, &mut out, max_frames)?;
        }
    }
    Ok(out)
}

pub fn demux(data: &[u8], limits: &Limits) -> Result<Track> {
    let mut top = Reader::new(data);
    let mut stream: Option<Stream> = None;
    let mut movi: Vec<Reader> = Vec::new();
    let mut idx1: Option<Reader> = None;
    let mut first_movi_start = 0usize;
    while let Some((id, mut riff, _)) = next_chunk(&mut top)? {
        if &id != b"RIFF" {
            continue;
        }
        riff.skip(4)?;
        while let Some((id, mut content, _)) = next_chunk(&mut riff)? {
            if &id == b"idx1" {
                idx1 = Some(content);
                continue;
            }
            if &id != b"LIST" {
                continue;
            }
            let list = content.fourcc()?;
            if &list == b"movi" {
                if movi.is_empty() {
                    first_movi_start = content.pos - 4;
                }
                movi.push(content);
            } else if &list == b"hdrl" {
                let mut number = 0usize;
                while let Some((id, mut strl, _)) = next_chunk(&mut content)? {
                    if &id != b"LIST" || &strl.fourcc()? != b"strl" {
                        continue;
                    }
                    let this = number;
                    number += 1;
                    if stream.is_some() {
                        continue;
                    }
                    let mut s = Stream { number: this, scale: 0, rate: 0, width: 0, height: 0, codec: Codec::Other("none".into()), indx: None, extra: None };
                    let mut video = false;
                    while let Some((id, mut c, _)) = next_chunk(&mut strl)? {
                        match &id {
                            b"strh" => {
                                video = &c.fourcc()? == b"vids";
                                let handler = c.fourcc()?;
                                s.codec = codec_of_fourcc(&handler);
                                c.skip(12)?;
                                s.scale = c.le32()?;
                                s.rate = c.le32()?;
                            }
                            b"strf" if video => {
                                if c.remaining() > 40 {
                                    s.extra = Some(((c.pos + 40) as u64, c.end() as u64));
                                }
                                c.skip(4)?;
                                s.width = (c.le32()? as i32).unsigned_abs();
                                s.height = (c.le32()? as i32).unsigned_abs();
                                c.skip(4)?;
                                let compression = c.fourcc()?;
                                s.codec = codec_of_fourcc(&compression);
                            }
                            b"indx" => s.indx = Some((c.pos, c.end())),
                            _ => {}
                        }
                    }
                    if video {
                        stream = Some(s);
                    }
                }
            }
        }
    }
    let s = stream.ok_or_else(|| MediaError::InvalidData("no video stream in the AVI header".into()))?;
    if s.rate == 0 || s.scale == 0 {
        return invalid("the AVI video stream has a zero rate or scale");
    }
    let mut entries: Vec<Entry> = Vec::new();
    if let Some((start, end)) = s.indx {
        entries = opendml_index(data, Reader::range(data, start, end)?, limits.max_frames)?;
    }
    if entries.is_empty() {
        if let Some(mut idx) = idx1 {
            let count = idx.remaining() / 16;
            // Offsets count from the 'movi' fourcc, or (some writers) from the file start.
            let mut base: Option<u64> = None;
            for _ in 0..count {
                let id = idx.fourcc()?;
                let flags = idx.le32()?;
                let offset = idx.le32()? as u64;
                let size = idx.le32()? as u64;
                if !is_video_chunk(&id, s.number) {
                    continue;
                }
                let b = *base.get_or_insert_with(|| {
                    let absolute = offset as usize;
                    if data.get(absolute..absolute + 4) == Some(&id[..]) { 0 } else { first_movi_start as u64 }
                });
                entries.push((b + offset + 8, size, flags & 0x10 != 0));
                if entries.len() as u64 > limits.max_frames {
                    return Err(MediaError::Limit(format!("more than {} frames", limits.max_frames)));
                }
            }
        }
    }
    if entries.is_empty() {
        for list in movi {
            scan_movi(list, s.number, &mut entries, limits.max_frames, 0)?;
        }
    }
    let mut frames = Vec::with_capacity(entries.len());
    let mut i = 0i64;
    for (offset, size, keyframe) in entries {
        if size == 0 {
            // A zero-size chunk repeats the previous frame in time: it advances the clock, it is not a frame.
            i += 1;
            continue;
        }
        if offset.checked_add(size).map_or(true, |e| e > data.len() as u64) {
            return invalid("an AVI index entry points past the end of the file");
        }
        let pts = i * s.scale as i64;
        frames.push(Frame { pts, dts: pts, keyframe, offset, size, decode_index: frames.len() as u32 });
        i += 1;
    }
    Track {
        container: "avi",
        codec: s.codec,
        width: s.width,
        height: s.height,
        timescale: s.rate as u64,
        frames,
        end_pts: i * s.scale as i64,
        matrix: MatrixTag::Unspecified,
        range: RangeTag::Unspecified,
        codec_config: s.extra,
    }
    .finish(limits)
}

fn scan_movi(mut list: Reader, number: usize, out: &mut Vec<Entry>, max_frames: u64, depth: u32) -> Result<()> {
    while let Some((id, mut content, _)) = next_chunk(&mut list)? {
        if &id == b"LIST" {
            if depth < 2 && content.remaining() >= 4 && &content.fourcc()? == b"rec " {
                scan_movi(content, number, out, max_frames, depth + 1)?;
            }
        } else if is_video_chunk(&id, number) {
            out.push((content.pos as u64, content.remaining() as u64, true));
            if out.len() as u64 > max_frames {
                return Err(MediaError::Limit(format!("more than {} frames", max_frames)));
            }
        }
    }
    Ok(())
}
