//! ISO-BMFF (MP4/MOV) demuxer: the first video track's sample tables (stts, ctts, stss, stsz/stz2, stsc,
//! stco/co64), its edit list, and fragments (moof/traf/tfhd/tfdt/trun), giving presentation times as ffmpeg does.

use crate::reader::{check_count, fourcc_text, invalid, Reader, Result};
use crate::track::{Codec, Frame, Limits, MatrixTag, RangeTag, Track};
use crate::MediaError;

/// Reads the next box header: (type, content reader, box start offset). None at the end.
fn next_box<'a>(r: &mut Reader<'a>) -> Result<Option<([u8; 4], Reader<'a>, usize)>> {
    if r.remaining() < 8 {
        return Ok(None);
    }
    let start = r.pos;
    let size32 = r.be32()? as u64;
    let kind = r.fourcc()?;
    let size = match size32 {
        1 => r.be64()?,
        0 => (r.end() - start) as u64,
        s => s,
    };
    let header = (r.pos - start) as u64;
    if size < header || size > (r.end() - start) as u64 {
        return Err(MediaError::InvalidData(format!("box '{}' of {} bytes extends past its parent", fourcc_text(&kind), size)));
    }
    let end = start + size as usize;
    let content = Reader::range(r.data(), r.pos, end)?;
    r.pos = end;
    Ok(Some((kind, content, start)))
}

fn find<'a>(parent: &Reader<'a>, kind: &[u8; 4]) -> Result<Option<Reader<'a>>> {
    let mut r = parent.clone();
    while let Some((k, content, _)) = next_box(&mut r)? {
        if &k == kind {
            return Ok(Some(content));
        }
    }
    Ok(None)
}

#[derive(Default, Clone, Copy)]
struct TrexDefaults {
    duration: u32,
    size: u32,
    flags: u32,
}

#[derive(Default)]
struct TrackBoxes<'a> {
    id: u32,
    timescale: u32,
    width: u32,
    height: u32,
    codec: Option<Codec>,
    matrix: Option<(MatrixTag, RangeTag)>,
    config: Option<(u64, u64)>,
    stbl: Option<Reader<'a>>,
    /// (segment duration in movie timescale, media time) of each edit.
    edits: Vec<(u64, i64)>,
}

fn codec_of(format: &[u8; 4]) -> Codec {
    match format {
        b"jpeg" | b"mjpa" | b"AVDJ" | b"dmb1" => Codec::Mjpeg,
        b"png " => Codec::Png,
        b"avc1" | b"avc3" => Codec::Other("h264".into()),
        b"hvc1" | b"hev1" => Codec::Other("hevc".into()),
        b"vp08" => Codec::Other("vp8".into()),
        b"vp09" => Codec::Other("vp9".into()),
        b"av01" => Codec::Other("av1".into()),
        b"mp4v" => Codec::Other("mpeg4".into()),
        other => Codec::Other(format!("'{}'", fourcc_text(other))),
    }
}

fn parse_trak<'a>(trak: Reader<'a>) -> Result<Option<TrackBoxes<'a>>> {
    let mut t = TrackBoxes::default();
    if let Some(mut tkhd) = find(&trak, b"tkhd")? {
        let version = tkhd.u8()?;
        tkhd.skip(3 + if version == 1 { 16 } else { 8 })?;
        t.id = tkhd.be32()?;
    }
    if let Some(edts) = find(&trak, b"edts")? {
        if let Some(mut elst) = find(&edts, b"elst")? {
            let version = elst.u8()?;
            elst.skip(3)?;
            let count = elst.be32()? as u64;
            let count = check_count(count, if version == 1 { 20 } else { 12 }, elst.remaining(), "elst")?;
            for _ in 0..count {
                let (duration, media_time) = if version == 1 {
                    (elst.be64()?, elst.be64()? as i64)
                } else {
                    (elst.be32()? as u64, elst.be32()? as i32 as i64)
                };
                elst.skip(4)?;
                t.edits.push((duration, media_time));
            }
        }
    }
    let mdia = match find(&trak, b"mdia")? {
        Some(m) => m,
        None => return Ok(None),
    };
    let mut hdlr = match find(&mdia, b"hdlr")? {
        Some(h) => h,
        None => return Ok(None),
    };
    hdlr.skip(8)?;
    if &hdlr.fourcc()? != b"vide" {
        return Ok(None);
    }
    if let Some(mut mdhd) = find(&mdia, b"mdhd")? {
        let version = mdhd.u8()?;
        mdhd.skip(3 + if version == 1 { 16 } else { 8 })?;
        t.timescale = mdhd.be32()?;
    }
    let minf = find(&mdia, b"minf")?.ok_or_else(|| MediaError::InvalidData("video track without minf".into()))?;
    let stbl = find(&minf, b"stbl")?.ok_or_else(|| MediaError::InvalidData("video track without stbl".into()))?;
    if let Some(mut stsd) = find(&stbl, b"stsd")? {
        stsd.skip(8)?;
        if let Some((format, mut entry, _)) = next_box(&mut stsd)? {
            t.codec = Some(codec_of(&format));
            let children = Reader::range(entry.data(), (entry.pos + 78).min(entry.end()), entry.end())?;
            for kind in [b"avcC", b"hvcC", b"av1C", b"vpcC", b"esds"] {
                if let Some(config) = find(&children, kind).unwrap_or(None) {
                    t.config = Some((config.pos as u64, config.end() as u64));
                    break;
                }
            }
            if &format == b"mp4v" {
                // MPEG-4 part 2 sample entry carrying another codec, named by the esds objectTypeIndication.
                if let Some(esds) = find(&children, b"esds").unwrap_or(None) {
                    if let Ok(oti) = esds_object_type(esds) {
                        t.codec = Some(match oti {
                            0x6C => Codec::Mjpeg,
                            0x6D => Codec::Png,
                            0x20 => Codec::Other("mpeg4".into()),
                            0x21 => Codec::Other("h264".into()),
                            other => Codec::Other(format!("mp4v object type 0x{:02x}", other)),
                        });
                    }
                }
            }
            entry.skip(24)?;
            t.width = entry.be16()? as u32;
            t.height = entry.be16()? as u32;
            entry.skip(50)?;
            // Children of the visual sample entry: the declared colour (colr nclx / nclc).
            if let Some(mut colr) = find(&entry, b"colr").unwrap_or(None) {
                let kind = colr.fourcc()?;
                if &kind == b"nclx" || &kind == b"nclc" {
                    colr.skip(4)?;
                    let matrix = colr.be16()?;
                    let full = if &kind == b"nclx" { colr.u8()? & 0x80 != 0 } else { false };
                    let m = match matrix {
                        1 => MatrixTag::Bt709,
                        5 | 6 => MatrixTag::Bt601,
                        _ => MatrixTag::Unspecified,
                    };
                    let range = if &kind == b"nclx" { if full { RangeTag::Full } else { RangeTag::Limited } } else { RangeTag::Unspecified };
                    t.matrix = Some((m, range));
                }
            }
        }
    }
    t.stbl = Some(stbl);
    Ok(Some(t))
}

fn descriptor(r: &mut Reader) -> Result<(u8, usize)> {
    let tag = r.u8()?;
    let mut size = 0usize;
    for _ in 0..4 {
        let b = r.u8()?;
        size = size << 7 | (b & 0x7f) as usize;
        if b & 0x80 == 0 {
            break;
        }
    }
    Ok((tag, size))
}

fn esds_object_type(mut esds: Reader) -> Result<u8> {
    esds.skip(4)?;
    let (tag, _) = descriptor(&mut esds)?;
    if tag != 0x03 {
        return invalid("esds without an ES descriptor");
    }
    esds.skip(2)?;
    let flags = esds.u8()?;
    if flags & 0x80 != 0 {
        esds.skip(2)?;
    }
    if flags & 0x40 != 0 {
        let n = esds.u8()? as usize;
        esds.skip(n)?;
    }
    if flags & 0x20 != 0 {
        esds.skip(2)?;
    }
    let (tag, _) = descriptor(&mut esds)?;
    if tag != 0x04 {
        return invalid("esds without a decoder config descriptor");
    }
    esds.u8()
}

/// One sample before edits, in decode order: (dts, composition offset, duration, size, offset, keyframe).
#[derive(Clone, Copy)]
struct Sample {
    dts: i64,
    cts: i64,
    duration: u32,
    size: u64,
    offset: u64,
    keyframe: bool,
}

fn full_box(r: &mut Reader) -> Result<(u8, u32)> {
    let v = r.be32()?;
    Ok(((v >> 24) as u8, v & 0xff_ffff))
}

fn sample_table(stbl: &Reader, data_len: usize, max_frames: u64) -> Result<Vec<Sample>> {
    // Sizes first: they fix the sample count every other table is read against.
    let mut sizes: Vec<u64> = Vec::new();
    if let Some(mut stsz) = find(stbl, b"stsz")? {
        full_box(&mut stsz)?;
        let fixed = stsz.be32()?;
        let count = stsz.be32()? as u64;
        if fixed != 0 {
            // Fixed-size samples: the count is bounded by what the file can hold, not by the box.
            let count = check_count(count, fixed as u64, data_len, "stsz")?;
            if count as u64 > max_frames {
                return Err(MediaError::Limit(format!("{} frames, above the limit of {}", count, max_frames)));
            }
            sizes = vec![fixed as u64; count];
        } else {
            let count = check_count(count, 4, stsz.remaining(), "stsz")?;
            sizes.reserve(count);
            for _ in 0..count {
                sizes.push(stsz.be32()? as u64);
            }
        }
    } else if let Some(mut stz2) = find(stbl, b"stz2")? {
        full_box(&mut stz2)?;
        stz2.skip(3)?;
        let field = stz2.u8()?;
        let count = stz2.be32()? as u64;
        if !matches!(field, 4 | 8 | 16) {
            return invalid("stz2 field size is not 4, 8 or 16");
        }
        let count = check_count(count, field as u64, stz2.remaining() * 8, "stz2")?;
        let mut nibble = 0u8;
        for i in 0..count {
            sizes.push(match field {
                4 => {
                    if i % 2 == 0 {
                        nibble = stz2.u8()?;
                        (nibble >> 4) as u64
                    } else {
                        (nibble & 15) as u64
                    }
                }
                8 => stz2.u8()? as u64,
                _ => stz2.be16()? as u64,
            });
        }
    }
    let n = sizes.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut samples: Vec<Sample> =
        sizes.iter().map(|&size| Sample { dts: 0, cts: 0, duration: 0, size, offset: 0, keyframe: true }).collect();

    let mut stts = find(stbl, b"stts")?.ok_or_else(|| MediaError::InvalidData("stbl without stts".into()))?;
    full_box(&mut stts)?;
    let entries = check_count(stts.be32()? as u64, 8, stts.remaining(), "stts")?;
    let (mut i, mut dts, mut last_delta) = (0usize, 0i64, 0u32);
    for _ in 0..entries {
        let count = stts.be32()?;
        let delta = stts.be32()?;
        last_delta = delta;
        for _ in 0..count {
            if i >= n {
                break;
            }
            samples[i].dts = dts;
            samples[i].duration = delta;
            dts += delta as i64;
            i += 1;
        }
    }
    while i < n {
        samples[i].dts = dts;
        samples[i].duration = last_delta;
        dts += last_delta as i64;
        i += 1;
    }

    if let Some(mut ctts) = find(stbl, b"ctts")? {
        full_box(&mut ctts)?;
        let entries = check_count(ctts.be32()? as u64, 8, ctts.remaining(), "ctts")?;
        let mut i = 0usize;
        for _ in 0..entries {
            let count = ctts.be32()?;
            // Signed in version 1; ffmpeg reads version 0 as signed too.
            let offset = ctts.be32()? as i32 as i64;
            for _ in 0..count {
                if i >= n {
                    break;
                }
                samples[i].cts = offset;
                i += 1;
            }
        }
    }

    if let Some(mut stss) = find(stbl, b"stss")? {
        full_box(&mut stss)?;
        let entries = check_count(stss.be32()? as u64, 4, stss.remaining(), "stss")?;
        for s in samples.iter_mut() {
            s.keyframe = false;
        }
        for _ in 0..entries {
            let k = stss.be32()? as usize;
            if k >= 1 && k <= n {
                samples[k - 1].keyframe = true;
            }
        }
    }

    // Chunk offsets, then samples-per-chunk runs.
    let mut chunks: Vec<u64> = Vec::new();
    if let Some(mut stco) = find(stbl, b"stco")? {
        full_box(&mut stco)?;
        let count = check_count(stco.be32()? as u64, 4, stco.remaining(), "stco")?;
        for _ in 0..count {
            chunks.push(stco.be32()? as u64);
        }
    } else if let Some(mut co64) = find(stbl, b"co64")? {
        full_box(&mut co64)?;
        let count = check_count(co64.be32()? as u64, 8, co64.remaining(), "co64")?;
        for _ in 0..count {
            chunks.push(co64.be64()?);
        }
    } else {
        return invalid("stbl without stco or co64");
    }
    let mut stsc = find(stbl, b"stsc")?.ok_or_else(|| MediaError::InvalidData("stbl without stsc".into()))?;
    full_box(&mut stsc)?;
    let runs = check_count(stsc.be32()? as u64, 12, stsc.remaining(), "stsc")?;
    let mut table = Vec::with_capacity(runs);
    for _ in 0..runs {
        let first = stsc.be32()? as u64;
        let per_chunk = stsc.be32()? as u64;
        stsc.skip(4)?;
        table.push((first, per_chunk));
    }
    let mut s = 0usize;
    for (r, &(first, per_chunk)) in table.iter().enumerate() {
        let next_first = table.get(r + 1).map(|t| t.0).unwrap_or(chunks.len() as u64 + 1);
        if first == 0 || next_first < first {
            return invalid("stsc chunk runs are not increasing");
        }
        let mut chunk = first;
        while chunk < next_first && s < n {
            let mut offset = *chunks.get(chunk as usize - 1).ok_or_else(|| MediaError::InvalidData("stsc names a chunk past stco".into()))?;
            let mut k = 0u64;
            while k < per_chunk && s < n {
                samples[s].offset = offset;
                offset = offset.saturating_add(samples[s].size);
                s += 1;
                k += 1;
            }
            chunk += 1;
        }
    }
    if s < n {
        return invalid("stsc/stco place fewer samples than stsz declares");
    }
    Ok(samples)
}

fn trun_samples(
    traf: &Reader,
    moof_start: usize,
    track_id: u32,
    trex: TrexDefaults,
    next_dts: &mut i64,
    out: &mut Vec<Sample>,
    data_len: usize,
    max_frames: u64,
) -> Result<()> {
    let mut tfhd = match find(traf, b"tfhd")? {
        Some(t) => t,
        None => return invalid("traf without tfhd"),
    };
    let (_, flags) = full_box(&mut tfhd)?;
    if tfhd.be32()? != track_id {
        return Ok(());
    }
    let mut base = moof_start as u64;
    if flags & 0x1 != 0 {
        base = tfhd.be64()?;
    }
    if flags & 0x2 != 0 {
        tfhd.skip(4)?;
    }
    let duration = if flags & 0x8 != 0 { tfhd.be32()? } else { trex.duration };
    let size = if flags & 0x10 != 0 { tfhd.be32()? } else { trex.size };
    let default_flags = if flags & 0x20 != 0 { tfhd.be32()? } else { trex.flags };
    if let Some(mut tfdt) = find(traf, b"tfdt")? {
        let (version, _) = full_box(&mut tfdt)?;
        *next_dts = if version == 1 { tfdt.be64()? as i64 } else { tfdt.be32()? as i64 };
    }
    let mut r = traf.clone();
    let mut data_pos = base;
    while let Some((kind, mut trun, _)) = next_box(&mut r)? {
        if &kind != b"trun" {
            continue;
        }
        let (version, tflags) = full_box(&mut trun)?;
        let count = trun.be32()? as u64;
        if tflags & 0x1 != 0 {
            data_pos = base.wrapping_add(trun.be32()? as i32 as i64 as u64);
        }
        let first_flags = if tflags & 0x4 != 0 { Some(trun.be32()?) } else { None };
        let per = [0x100, 0x200, 0x400, 0x800].iter().filter(|&&b| tflags & b != 0).count() as u64 * 4;
        let count = if per > 0 { check_count(count, per, trun.remaining(), "trun")? } else { check_count(count, 1, data_len, "trun")? };
        if (out.len() + count) as u64 > max_frames {
            return Err(MediaError::Limit(format!("more than {} frames", max_frames)));
        }
        for i in 0..count {
            let d = if tflags & 0x100 != 0 { trun.be32()? } else { duration };
            let sz = if tflags & 0x200 != 0 { trun.be32()? } else { size };
            let mut f = if tflags & 0x400 != 0 { trun.be32()? } else { default_flags };
            if i == 0 {
                if let Some(ff) = first_flags {
                    f = ff;
                }
            }
            let cts = if tflags & 0x800 != 0 {
                let v = trun.be32()?;
                if version == 0 { v as i64 } else { v as i32 as i64 }
            } else {
                0
            };
            out.push(Sample { dts: *next_dts, cts, duration: d, size: sz as u64, offset: data_pos, keyframe: f & 0x1_0000 == 0 });
            data_pos = data_pos.saturating_add(sz as u64);
            *next_dts += d as i64;
        }
    }
    Ok(())
}

pub fn demux(data: &[u8], limits: &Limits, container: &'static str) -> Result<Track> {
    let mut top = Reader::new(data);
    let mut moov: Option<Reader> = None;
    let mut moofs: Vec<(usize, Reader)> = Vec::new();
    while let Some((kind, content, start)) = next_box(&mut top)? {
        match &kind {
            b"moov" => moov = Some(content),
            b"moof" => moofs.push((start, content)),
            _ => {}
        }
    }
    let moov = moov.ok_or_else(|| MediaError::InvalidData("no moov box".into()))?;
    let mut movie_timescale = 0u32;
    if let Some(mut mvhd) = find(&moov, b"mvhd")? {
        let version = mvhd.u8()?;
        mvhd.skip(3 + if version == 1 { 16 } else { 8 })?;
        movie_timescale = mvhd.be32()?;
    }
    let mut r = moov.clone();
    let mut track: Option<TrackBoxes> = None;
    while let Some((kind, content, _)) = next_box(&mut r)? {
        if &kind == b"trak" {
            if let Some(t) = parse_trak(content)? {
                track = Some(t);
                break;
            }
        }
    }
    let t = track.ok_or_else(|| MediaError::InvalidData("no video track".into()))?;
    let mut samples = match &t.stbl {
        Some(stbl) => sample_table(stbl, data.len(), limits.max_frames)?,
        None => Vec::new(),
    };
    if !moofs.is_empty() {
        let mut trex = TrexDefaults::default();
        if let Some(mvex) = find(&moov, b"mvex")? {
            let mut r = mvex.clone();
            while let Some((kind, mut content, _)) = next_box(&mut r)? {
                if &kind == b"trex" {
                    full_box(&mut content)?;
                    if content.be32()? == t.id {
                        content.skip(4)?;
                        trex = TrexDefaults { duration: content.be32()?, size: content.be32()?, flags: content.be32()? };
                    }
                }
            }
        }
        let mut next_dts = samples.last().map(|s| s.dts + s.duration as i64).unwrap_or(0);
        for (start, moof) in &moofs {
            let mut r = moof.clone();
            while let Some((kind, traf, _)) = next_box(&mut r)? {
                if &kind == b"traf" {
                    trun_samples(&traf, *start, t.id, trex, &mut next_dts, &mut samples, data.len(), limits.max_frames)?;
                }
            }
            if samples.len() as u64 > limits.max_frames {
                return Err(MediaError::Limit(format!("more than {} frames", limits.max_frames)));
            }
        }
    }
    for s in &samples {
        if s.offset.checked_add(s.size).map_or(true, |end| end > data.len() as u64) {
            return Err(MediaError::InvalidData(format!(
                "a sample at byte {} of {} bytes lies past the end of the {}-byte file", s.offset, s.size, data.len()
            )));
        }
    }
    // Edit list, as ffmpeg applies it: leading empty edits delay the track; the first media edit's start is
    // subtracted (its samples before that time still decode, with negative times).
    let mut shift: i64 = 0;
    for &(duration, media_time) in &t.edits {
        if media_time == -1 {
            if movie_timescale > 0 {
                shift += (duration as i128 * t.timescale as i128 / movie_timescale as i128) as i64;
            }
        } else {
            shift -= media_time;
            break;
        }
    }
    let mut frames = Vec::with_capacity(samples.len());
    let mut end_pts = i64::MIN;
    for (i, s) in samples.iter().enumerate() {
        let pts = s.dts.saturating_add(s.cts).saturating_add(shift);
        end_pts = end_pts.max(pts.saturating_add(s.duration as i64));
        frames.push(Frame { pts, dts: s.dts.saturating_add(shift), keyframe: s.keyframe, offset: s.offset, size: s.size, decode_index: i as u32 });
    }
    let (matrix, range) = t.matrix.unwrap_or((MatrixTag::Unspecified, RangeTag::Unspecified));
    Track {
        container,
        codec: t.codec.unwrap_or_else(|| Codec::Other("none (no sample description)".into())),
        width: t.width,
        height: t.height,
        timescale: t.timescale as u64,
        frames,
        end_pts,
        matrix,
        range,
        codec_config: t.config,
    }
    .finish(limits)
}
