//! Export of the media crate: open (sniff + demux) a video held in module memory, read its description and
//! frame table, decode chosen frames, close.
//!
//! Protocol (all statuses as in `abi.rs`; after a non-zero status `ppl_media_error` gives the message):
//! 1. The host copies the file into a `ppl_alloc` block and keeps it alive until `ppl_media_close`.
//! 2. `ppl_media_open(data, len, limits, handle_out)`; limits = 5 f64: max input bytes, max pixels per frame,
//!    max frames, max duration (s), max decoded bytes. `handle_out` (u32) receives the handle.
//! 3. `ppl_media_info(handle, out)` writes INFO_FIELDS f64 (see below); `ppl_media_text(handle, 0|1, buf, cap)`
//!    writes the container (0) or codec (1) name and returns its length.
//! 4. `ppl_media_frames(handle, out)` writes 6 f64 per frame in presentation order:
//!    pts, dts (timescale units), keyframe (0/1), byte offset, byte size, decode index.
//! 5. `ppl_media_decode(handle, indices, n, pix_fmt, out, out_len)` decodes frames (u32 presentation indices) into
//!    `out`, back to back; pix_fmt 0 = rgb24, 1 = yuv420p.
//! 6. `ppl_media_close(handle)`.
//! `ppl_media_codec_config(handle, out)` gives the byte range of the codec's configuration record (2 f64).

use crate::abi::{slice, slice_mut, STATUS_BAD_ARGUMENT, STATUS_INVALID_DATA, STATUS_LIMIT, STATUS_OK, STATUS_UNSUPPORTED};
use media::decode::{decode_frames, PixFmt};
use media::{Limits, MediaError, Track};
use std::cell::RefCell;

pub const INFO_FIELDS: usize = 11;

struct Video {
    data: *const u8,
    len: usize,
    track: Track,
    limits: Limits,
}

thread_local! {
    static LAST_ERROR: RefCell<String> = RefCell::new(String::new());
}

fn fail(error: MediaError) -> i32 {
    let status = match &error {
        MediaError::Unsupported(_) => STATUS_UNSUPPORTED,
        MediaError::InvalidData(_) => STATUS_INVALID_DATA,
        MediaError::Limit(_) => STATUS_LIMIT,
        MediaError::BadArgument(_) => STATUS_BAD_ARGUMENT,
    };
    let text = match error {
        MediaError::Unsupported(m) | MediaError::InvalidData(m) | MediaError::Limit(m) | MediaError::BadArgument(m) => m,
    };
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
    status
}

fn bad(message: &str) -> i32 {
    fail(MediaError::BadArgument(message.to_string()))
}

/// Copies the last error message into `buf` (up to `cap` bytes); returns its full length.
///
/// # Safety
/// `buf` must hold `cap` bytes from `ppl_alloc` (or be null with cap 0 to ask the length).
#[no_mangle]
pub unsafe extern "C" fn ppl_media_error(buf: *mut u8, cap: usize) -> usize {
    LAST_ERROR.with(|e| copy_text(&e.borrow(), buf, cap))
}

unsafe fn copy_text(text: &str, buf: *mut u8, cap: usize) -> usize {
    let bytes = text.as_bytes();
    if cap > 0 {
        if let Some(out) = slice_mut(buf, cap) {
            let n = bytes.len().min(cap);
            out[..n].copy_from_slice(&bytes[..n]);
        }
    }
    bytes.len()
}

unsafe fn video<'a>(handle: usize) -> Option<&'a Video> {
    if handle == 0 || handle % std::mem::align_of::<Video>() != 0 {
        return None;
    }
    Some(&*(handle as *const Video))
}

/// # Safety
/// `data` must hold `len` bytes and stay allocated until `ppl_media_close`; `limits` 5 f64; `handle_out` a u32 slot.
#[no_mangle]
pub unsafe extern "C" fn ppl_media_open(data: *const u8, len: usize, limits: *const f64, handle_out: *mut u32) -> i32 {
    let (bytes, caps, out) = match (slice(data, len), slice(limits, 5), slice_mut(handle_out, 1)) {
        (Some(b), Some(c), Some(o)) => (b, c, o),
        _ => return bad("null or misaligned pointer"),
    };
    let cap = |v: f64| if v.is_finite() && v >= 0.0 { v as u64 } else { u64::MAX };
    let limits = Limits {
        max_input_bytes: cap(caps[0]),
        max_pixels: cap(caps[1]),
        max_frames: cap(caps[2]),
        max_duration_s: if caps[3].is_nan() { f64::INFINITY } else { caps[3] },
        max_decoded_bytes: cap(caps[4]),
    };
    match media::open(bytes, &limits) {
        Ok(track) => {
            let boxed = Box::new(Video { data, len, track, limits });
            out[0] = Box::into_raw(boxed) as usize as u32;
            STATUS_OK
        }
        Err(e) => fail(e),
    }
}

/// Writes INFO_FIELDS f64: width, height, frame count, timescale, duration (s), fps, end pts, matrix (0 unspecified,
/// 1 BT.601, 2 BT.709), range (0 unspecified, 1 limited, 2 full), keyframe count, decodable (1 when the codec is).
///
/// # Safety
/// `handle` from `ppl_media_open`; `out` INFO_FIELDS f64.
#[no_mangle]
pub unsafe extern "C" fn ppl_media_info(handle: usize, out: *mut f64) -> i32 {
    let (v, out) = match (video(handle), slice_mut(out, INFO_FIELDS)) {
        (Some(v), Some(o)) => (v, o),
        _ => return bad("bad handle or output pointer"),
    };
    let t = &v.track;
    let decodable = !matches!(t.codec, media::Codec::Other(_));
    let values = [
        t.width as f64,
        t.height as f64,
        t.frames.len() as f64,
        t.timescale as f64,
        t.duration_s(),
        t.fps(),
        t.end_pts as f64,
        t.matrix as i32 as f64,
        t.range as i32 as f64,
        t.frames.iter().filter(|f| f.keyframe).count() as f64,
        decodable as i32 as f64,
    ];
    out.copy_from_slice(&values);
    STATUS_OK
}

/// Writes the container (which = 0) or codec (1) name into `buf`; returns the full length.
///
/// # Safety
/// `handle` from `ppl_media_open`; `buf` `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn ppl_media_text(handle: usize, which: i32, buf: *mut u8, cap: usize) -> usize {
    match video(handle) {
        Some(v) if which == 0 => copy_text(v.track.container, buf, cap),
        Some(v) => copy_text(&v.track.codec.name(), buf, cap),
        None => 0,
    }
}

/// # Safety
/// `handle` from `ppl_media_open`; `out` 6 × frame count f64.
#[no_mangle]
pub unsafe extern "C" fn ppl_media_frames(handle: usize, out: *mut f64) -> i32 {
    let v = match video(handle) {
        Some(v) => v,
        None => return bad("bad handle"),
    };
    let out = match slice_mut(out, v.track.frames.len() * 6) {
        Some(o) => o,
        None => return bad("bad output pointer"),
    };
    for (f, row) in v.track.frames.iter().zip(out.chunks_exact_mut(6)) {
        row.copy_from_slice(&[f.pts as f64, f.dts as f64, f.keyframe as i32 as f64, f.offset as f64, f.size as f64, f.decode_index as f64]);
    }
    STATUS_OK
}

/// Writes the byte range [start, end) of the codec configuration record (avcC, CodecPrivate, ...) into `out`
/// (2 f64), or [-1, -1] when the container has none.
///
/// # Safety
/// `handle` from `ppl_media_open`; `out` 2 f64.
#[no_mangle]
pub unsafe extern "C" fn ppl_media_codec_config(handle: usize, out: *mut f64) -> i32 {
    match (video(handle), slice_mut(out, 2)) {
        (Some(v), Some(out)) => {
            let (start, end) = v.track.codec_config.map(|(s, e)| (s as f64, e as f64)).unwrap_or((-1.0, -1.0));
            out.copy_from_slice(&[start, end]);
            STATUS_OK
        }
        _ => bad("bad handle or output pointer"),
    }
}

/// # Safety
/// `handle` from `ppl_media_open`; `indices` n u32; `out` `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ppl_media_decode(handle: usize, indices: *const u32, n: usize, pix_fmt: i32, out: *mut u8, out_len: usize) -> i32 {
    let v = match video(handle) {
        Some(v) => v,
        None => return bad("bad handle"),
    };
    let pix_fmt = match pix_fmt {
        0 => PixFmt::Rgb24,
        1 => PixFmt::Yuv420p,
        _ => return bad("pix_fmt must be 0 (rgb24) or 1 (yuv420p)"),
    };
    let (indices, out, data) = match (slice(indices, n), slice_mut(out, out_len), slice(v.data, v.len)) {
        (Some(i), Some(o), Some(d)) => (i, o, d),
        _ => return bad("null or misaligned pointer"),
    };
    match decode_frames(data, &v.track, indices, pix_fmt, out, &v.limits) {
        Ok(()) => STATUS_OK,
        Err(e) => fail(e),
    }
}

/// # Safety
/// `handle` from `ppl_media_open`, closed once.
#[no_mangle]
pub unsafe extern "C" fn ppl_media_close(handle: usize) {
    if video(handle).is_some() {
        drop(Box::from_raw(handle as *mut Video));
    }
}
