//! Matroska / WebM demuxer: EBML header, Segment Info and Tracks, then every Cluster's SimpleBlocks and
//! BlockGroups (with Xiph, EBML and fixed lacing) of the first video track. Unknown-size Segments and Clusters
//! (live recordings) end where the next top-level element starts.

use crate::avi::codec_of_fourcc;
use crate::reader::{invalid, Reader, Result};
use crate::track::{Codec, Frame, Limits, MatrixTag, RangeTag, Track};
use crate::MediaError;

const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TRACKS: u32 = 0x1654_AE6B;
const CLUSTER: u32 = 0x1F43_B675;
const TOP_LEVEL: [u32; 7] = [0x114D_9B74, INFO, TRACKS, CLUSTER, 0x1C53_BB6B, 0x1941_A469, 0x1043_A770];

fn read_id(r: &mut Reader) -> Result<u32> {
    let first = r.u8()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 {
        return invalid("an EBML element ID longer than 4 bytes");
    }
    let mut id = first as u32;
    for _ in 1..len {
        id = id << 8 | r.u8()? as u32;
    }
    Ok(id)
}

/// A size vint; None for the reserved all-ones "unknown size".
fn read_size(r: &mut Reader) -> Result<Option<u64>> {
    let first = r.u8()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return invalid("an EBML size longer than 8 bytes");
    }
    let mut value = (first as u64) & (0xff >> len);
    let mut all_ones = value == (0xff >> len) as u64;
    for _ in 1..len {
        let b = r.u8()?;
        all_ones &= b == 0xff;
        value = value << 8 | b as u64;
    }
    Ok(if all_ones { None } else { Some(value) })
}

/// Next element: (id, content reader). An unknown size extends to the parent's end.
fn next_element<'a>(r: &mut Reader<'a>) -> Result<Option<(u32, Reader<'a>)>> {
    if r.remaining() < 2 {
        return Ok(None);
    }
    let id = read_id(r)?;
    let size = read_size(r)?;
    let end = match size {
        Some(s) if s <= r.remaining() as u64 => r.pos + s as usize,
        Some(_) => r.end(), // truncated: keep what is there
        None => r.end(),
    };
    let content = Reader::range(r.data(), r.pos, end)?;
    r.pos = end;
    Ok(Some((id, content)))
}

fn uint(mut r: Reader) -> Result<u64> {
    if r.remaining() > 8 {
        return invalid("an EBML unsigned integer longer than 8 bytes");
    }
    let mut v = 0u64;
    while !r.is_empty() {
        v = v << 8 | r.u8()? as u64;
    }
    Ok(v)
}

fn text(r: Reader) -> String {
    let bytes = &r.data()[r.pos..r.end()];
    String::from_utf8_lossy(bytes).trim_end_matches('\0').to_string()
}

#[derive(Default)]
struct VideoTrack {
    number: u64,
    codec: Option<Codec>,
    width: u32,
    height: u32,
    default_duration_ns: u64,
    matrix: Option<MatrixTag>,
    range: Option<RangeTag>,
    private: Option<(u64, u64)>,
}

fn parse_track_entry(mut entry: Reader) -> Result<Option<VideoTrack>> {
    let mut t = VideoTrack::default();
    let mut kind = 0;
    let mut codec_id = String::new();
    let mut private: Option<Reader> = None;
    let mut encoded = false;
    while let Some((id, c)) = next_element(&mut entry)? {
        match id {
            0xD7 => t.number = uint(c)?,
            0x83 => kind = uint(c)?,
            0x86 => codec_id = text(c),
            0x63A2 => {
                t.private = Some((c.pos as u64, c.end() as u64));
                private = Some(c)
            }
            0x23E383 => t.default_duration_ns = uint(c)?,
            0x6D80 => encoded = true,
            0xE0 => {
                let mut video = c;
                while let Some((id, c)) = next_element(&mut video)? {
                    match id {
                        0xB0 => t.width = uint(c)?.min(u32::MAX as u64) as u32,
                        0xBA => t.height = uint(c)?.min(u32::MAX as u64) as u32,
                        0x55B0 => {
                            let mut colour = c;
                            while let Some((id, c)) = next_element(&mut colour)? {
                                match (id, uint(c)?) {
                                    (0x55B1, 1) => t.matrix = Some(MatrixTag::Bt709),
                                    (0x55B1, 5) | (0x55B1, 6) => t.matrix = Some(MatrixTag::Bt601),
                                    (0x55B9, 1) => t.range = Some(RangeTag::Limited),
                                    (0x55B9, 2) => t.range = Some(RangeTag::Full),
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if kind != 1 {
        return Ok(None);
    }
    let codec = match codec_id.as_str() {
        "V_MJPEG" => Codec::Mjpeg,
        "V_MPEG4/ISO/AVC" => Codec::Other("h264".into()),
        "V_MPEGH/ISO/HEVC" => Codec::Other("hevc".into()),
        "V_VP8" => Codec::Other("vp8".into()),
        "V_VP9" => Codec::Other("vp9".into()),
        "V_AV1" => Codec::Other("av1".into()),
        "V_MS/VFW/FOURCC" => match private {
            Some(mut p) if p.remaining() >= 20 => {
                p.skip(16)?;
                codec_of_fourcc(&p.fourcc()?)
            }
            _ => return invalid("a V_MS/VFW/FOURCC track without a BITMAPINFOHEADER"),
        },
        other => Codec::Other(format!("matroska codec {}", other)),
    };
    t.codec = Some(if encoded && codec != Codec::Mjpeg {
        codec
    } else if encoded {
        Codec::Other("mjpeg with matroska content encoding (compression)".into())
    } else {
        codec
    });
    Ok(Some(t))
}

struct Ctx<'a> {
    track: &'a VideoTrack,
    scale_ns: u64,
    frames: Vec<Frame>,
    max_frames: u64,
}

fn push(ctx: &mut Ctx, pts_ns: i64, keyframe: bool, offset: usize, size: usize) -> Result<()> {
    if ctx.frames.len() as u64 >= ctx.max_frames {
        return Err(MediaError::Limit(format!("more than {} frames", ctx.max_frames)));
    }
    let i = ctx.frames.len() as u32;
    ctx.frames.push(Frame { pts: pts_ns, dts: pts_ns, keyframe, offset: offset as u64, size: size as u64, decode_index: i });
    Ok(())
}

fn parse_block(ctx: &mut Ctx, mut b: Reader, cluster_tc: i64, simple: bool, has_reference: bool) -> Result<()> {
    let track = match read_size(&mut b)? {
        Some(t) => t,
        None => return invalid("a block with an unknown track number"),
    };
    if track != ctx.track.number {
        return Ok(());
    }
    let tc = b.be16()? as i16 as i64;
    let flags = b.u8()?;
    let keyframe = if simple { flags & 0x80 != 0 } else { !has_reference };
    let pts = (cluster_tc + tc).saturating_mul(ctx.scale_ns as i64);
    let lacing = (flags >> 1) & 3;
    if lacing == 0 {
        return push(ctx, pts, keyframe, b.pos, b.remaining());
    }
    let count = b.u8()? as usize + 1;
    let mut sizes = Vec::with_capacity(count);
    match lacing {
        1 => {
            for _ in 0..count - 1 {
                let mut size = 0usize;
                loop {
                    let v = b.u8()?;
                    size += v as usize;
                    if v != 255 {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
        3 => {
            let first = read_size(&mut b)?.ok_or_else(|| MediaError::InvalidData("EBML lace size unknown".into()))?;
            let mut size = first as i64;
            sizes.push(first as usize);
            for _ in 1..count - 1 {
                let start = b.pos;
                let raw = read_size(&mut b)?.ok_or_else(|| MediaError::InvalidData("EBML lace delta unknown".into()))? as i64;
                let len = (b.pos - start) as i64;
                size += raw - ((1i64 << (7 * len - 1)) - 1);
                if size < 0 {
                    return invalid("a negative EBML lace size");
                }
                sizes.push(size as usize);
            }
        }
        _ => {
            if b.remaining() % count != 0 {
                return invalid("fixed lacing that does not divide the block");
            }
            sizes = vec![b.remaining() / count; count - 1];
        }
    }
    let used: usize = sizes.iter().fold(0usize, |a, &s| a.saturating_add(s));
    if used > b.remaining() {
        return invalid("lace sizes exceed the block");
    }
    sizes.push(b.remaining() - used);
    let step = ctx.track.default_duration_ns as i64;
    for (k, size) in sizes.into_iter().enumerate() {
        push(ctx, pts.saturating_add(step.saturating_mul(k as i64)), keyframe, b.pos, size)?;
        b.skip(size)?;
    }
    Ok(())
}

/// Parses one cluster starting at its content; returns where the segment walk resumes.
fn parse_cluster(ctx: &mut Ctx, mut c: Reader, unknown_size: bool) -> Result<usize> {
    let mut cluster_tc = 0i64;
    loop {
        let before = c.pos;
        let mut peek = c.clone();
        if peek.remaining() < 2 {
            return Ok(c.end());
        }
        let id = read_id(&mut peek)?;
        if unknown_size && (TOP_LEVEL.contains(&id) || id == SEGMENT) {
            return Ok(before);
        }
        let (id, content) = match next_element(&mut c)? {
            Some(e) => e,
            None => return Ok(c.end()),
        };
        match id {
            0xE7 => cluster_tc = uint(content)?.min(i64::MAX as u64 / 2) as i64,
            0xA3 => parse_block(ctx, content, cluster_tc, true, false)?,
            0xA0 => {
                let mut group = content;
                let mut block = None;
                let mut has_reference = false;
                while let Some((id, c)) = next_element(&mut group)? {
                    match id {
                        0xA1 => block = Some(c),
                        0xFB => has_reference = true,
                        _ => {}
                    }
                }
                if let Some(b) = block {
                    parse_block(ctx, b, cluster_tc, false, has_reference)?;
                }
            }
            _ => {}
        }
    }
}

pub fn demux(data: &[u8], limits: &Limits) -> Result<Track> {
    let mut top = Reader::new(data);
    let (id, mut header) = next_element(&mut top)?.ok_or_else(|| MediaError::InvalidData("empty EBML file".into()))?;
    if id != 0x1A45_DFA3 {
        return invalid("no EBML header");
    }
    let mut doc_type = String::from("matroska");
    while let Some((id, c)) = next_element(&mut header)? {
        if id == 0x4282 {
            doc_type = text(c);
        }
    }
    let container: &'static str = if doc_type == "webm" { "webm" } else { "matroska" };
    let mut segment = loop {
        match next_element(&mut top)? {
            Some((SEGMENT, s)) => break s,
            Some(_) => continue,
            None => return invalid("no Segment"),
        }
    };
    let mut scale_ns = 1_000_000u64;
    let mut track: Option<VideoTrack> = None;
    let mut frames_ctx: Option<Ctx> = None;
    let mut pending: Vec<(Reader, bool)> = Vec::new();
    // One walk over the segment: Info and Tracks precede Clusters in every muxer we know; clusters seen before
    // Tracks are kept as (cheap) readers and parsed once the track is known.
    loop {
        let mut peek = segment.clone();
        if peek.remaining() < 2 {
            break;
        }
        let id = read_id(&mut peek)?;
        let size = read_size(&mut peek)?;
        if id == CLUSTER {
            let unknown = size.is_none();
            let content_end = match size {
                Some(s) => (peek.pos as u64).saturating_add(s).min(peek.end() as u64) as usize,
                None => peek.end(),
            };
            let content = Reader::range(data, peek.pos, content_end)?;
            pending.push((content, unknown));
            if unknown {
                // Find where it ends by walking it (top-level IDs stop the walk).
                let track = VideoTrack { number: u64::MAX, ..Default::default() };
                let mut probe = Ctx { track: &track, scale_ns, frames: Vec::new(), max_frames: limits.max_frames };
                segment.pos = parse_cluster(&mut probe, Reader::range(data, peek.pos, content_end)?, true)?;
            } else {
                segment.pos = content_end;
            }
            continue;
        }
        let (id, mut c) = match next_element(&mut segment)? {
            Some(e) => e,
            None => break,
        };
        match id {
            INFO => {
                while let Some((id, e)) = next_element(&mut c)? {
                    if id == 0x2AD7B1 {
                        scale_ns = uint(e)?.max(1).min(1 << 40);
                    }
                }
            }
            TRACKS if track.is_none() => {
                while let Some((id, e)) = next_element(&mut c)? {
                    if id == 0xAE {
                        if let Some(t) = parse_track_entry(e)? {
                            track = Some(t);
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let track = track.ok_or_else(|| MediaError::InvalidData("no video track in the Matroska Tracks".into()))?;
    let _ = &mut frames_ctx;
    let mut ctx = Ctx { track: &track, scale_ns, frames: Vec::new(), max_frames: limits.max_frames };
    for (content, unknown) in pending {
        parse_cluster(&mut ctx, content, unknown)?;
    }
    for f in &ctx.frames {
        if f.offset + f.size > data.len() as u64 {
            return invalid("a block lies past the end of the file");
        }
    }
    let frames = ctx.frames;
    let end_pts = match frames.iter().map(|f| f.pts).max() {
        Some(last) if track.default_duration_ns > 0 => last.saturating_add(track.default_duration_ns as i64),
        _ => i64::MIN,
    };
    Track {
        container,
        codec: track.codec.clone().unwrap_or_else(|| Codec::Other("none".into())),
        width: track.width,
        height: track.height,
        timescale: 1_000_000_000,
        frames,
        end_pts,
        matrix: track.matrix.unwrap_or(MatrixTag::Unspecified),
        range: track.range.unwrap_or(RangeTag::Unspecified),
        codec_config: track.private,
    }
    .finish(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element with a 1-byte (or 8-byte) size; `None` writes the unknown size.
    fn el(id: u32, body: &[u8]) -> Vec<u8> {
        let mut out = id_bytes(id);
        if body.len() < 127 {
            out.push(0x80 | body.len() as u8);
        } else {
            out.push(0x01);
            out.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
        }
        out.extend_from_slice(body);
        out
    }
    fn unknown(id: u32, body: &[u8]) -> Vec<u8> {
        let mut out = id_bytes(id);
        out.push(0xff);
        out.extend_from_slice(body);
        out
    }
    fn id_bytes(id: u32) -> Vec<u8> {
        id.to_be_bytes().iter().copied().skip_while(|&b| b == 0).collect()
    }
    fn uint(id: u32, v: u64) -> Vec<u8> {
        el(id, &v.to_be_bytes()[4..])
    }

    fn block(timecode: i16, flags: u8, lacing_and_frames: &[u8]) -> Vec<u8> {
        let mut b = vec![0x81]; // track 1
        b.extend_from_slice(&timecode.to_be_bytes());
        b.push(flags);
        b.extend_from_slice(lacing_and_frames);
        b
    }

    fn file(clusters: &[Vec<u8>], default_duration: u64) -> Vec<u8> {
        let header = el(0x1A45_DFA3, &el(0x4282, b"matroska"));
        let info = el(INFO, &uint(0x2AD7B1, 1_000_000));
        let video = [uint(0xB0, 16), uint(0xBA, 8)].concat();
        let entry = [uint(0xD7, 1), uint(0x83, 1), el(0x86, b"V_MJPEG"), uint(0x23E383, default_duration), el(0xE0, &video)].concat();
        let tracks = el(TRACKS, &el(0xAE, &entry));
        let mut segment = [info, tracks].concat();
        for c in clusters {
            segment.extend_from_slice(c);
        }
        [header, unknown(SEGMENT, &segment)].concat()
    }

    #[test]
    fn lacing_block_groups_and_unknown_size_clusters() {
        // Cluster 1 (unknown size): Xiph-laced SimpleBlock of 3 frames (sizes 2, 300, 1), then a BlockGroup with an
        // EBML-laced Block of 2 frames (sizes 5, 3) and a ReferenceBlock (so not a keyframe).
        let mut xiph = vec![0x02, 2, 255, 45]; // 3 frames: sizes 2, 255+45, rest
        xiph.extend(vec![0xAA; 2 + 300 + 1]);
        let mut ebml = vec![0x01, 0x85]; // 2 frames: first size 5 (vint)
        ebml.extend(vec![0xBB; 5 + 3]);
        let group = el(0xA0, &[el(0xA1, &block(100, 0x06, &ebml)), uint(0xFB, 1)].concat());
        let cluster1 = unknown(CLUSTER, &[uint(0xE7, 0), el(0xA3, &block(0, 0x80 | 0x02, &xiph)), group].concat());
        // Cluster 2 (known size): fixed lacing, 2 frames of 4 bytes, keyframe; then a plain SimpleBlock.
        let mut fixed = vec![0x01];
        fixed.extend(vec![0xCC; 8]);
        let cluster2 = el(CLUSTER, &[uint(0xE7, 1000), el(0xA3, &block(0, 0x80 | 0x04, &fixed)), el(0xA3, &block(80, 0x80, &[0xDD; 7]))].concat());
        let data = file(&[cluster1, cluster2], 40_000_000);
        let track = demux(&data, &Limits::default()).unwrap();
        let sizes: Vec<u64> = track.frames.iter().map(|f| f.size).collect();
        let pts_ms: Vec<i64> = track.frames.iter().map(|f| f.pts / 1_000_000).collect();
        let keys: Vec<bool> = track.frames.iter().map(|f| f.keyframe).collect();
        assert_eq!(sizes, vec![2, 300, 1, 5, 3, 4, 4, 7]);
        // Laced frames after the first are spaced by DefaultDuration (40 ms), as ffmpeg's demuxer does.
        assert_eq!(pts_ms, vec![0, 40, 80, 100, 140, 1000, 1040, 1080]);
        assert_eq!(keys, vec![true, true, true, false, false, true, true, true]);
        for f in &track.frames {
            let bytes = &data[f.offset as usize..(f.offset + f.size) as usize];
            assert!(bytes.iter().all(|&b| b == bytes[0]), "a frame's bytes span two laces");
        }
        assert_eq!(track.end_pts / 1_000_000, 1120);
    }

    #[test]
    fn laces_longer_than_the_block_are_invalid() {
        let xiph = vec![0x01, 200, 0xAA, 0xAA]; // claims a 200-byte first frame in a 2-byte body
        let cluster = el(CLUSTER, &[uint(0xE7, 0), el(0xA3, &block(0, 0x82, &xiph))].concat());
        assert!(matches!(demux(&file(&[cluster], 0), &Limits::default()), Err(MediaError::InvalidData(_))));
    }
}
