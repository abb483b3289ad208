//! What a demuxer yields: one video track's description and its frame table in presentation order.

use crate::MediaError;

/// Caps passed in from TypeScript; exceeding any one is `MediaError::Limit`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_input_bytes: u64,
    pub max_pixels: u64,
    pub max_frames: u64,
    pub max_duration_s: f64,
    /// Bytes of decoded output plus working frames one decode call may hold.
    pub max_decoded_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 2 << 30,
            max_pixels: 8192 * 8192,
            max_frames: 1 << 20,
            max_duration_s: 24.0 * 3600.0,
            max_decoded_bytes: 1 << 30,
        }
    }
}

/// The codec of the track. Only `Mjpeg`, `Png`, `Apng`, `Gif` and `RawYuv` decode; the others are named in errors.
#[derive(Debug, Clone, PartialEq)]
pub enum Codec {
    Mjpeg,
    Png,
    Apng,
    Gif,
    RawYuv(YuvLayout),
    /// A codec recognised by name but not decodable here (h264, hevc, vp8, vp9, av1, ...).
    Other(String),
}

pub const SUPPORTED_CODECS: &str = "mjpeg, png, apng, gif, rawvideo (y4m 8-bit 4:2:0/4:2:2/4:4:4)";

impl Codec {
    pub fn name(&self) -> String {
        match self {
            Codec::Mjpeg => "mjpeg".into(),
            Codec::Png => "png".into(),
            Codec::Apng => "apng".into(),
            Codec::Gif => "gif".into(),
            Codec::RawYuv(_) => "rawvideo".into(),
            Codec::Other(name) => name.clone(),
        }
    }
}

/// Chroma layout of raw 8-bit planar YUV (Y4M).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum YuvLayout {
    Yuv420,
    Yuv422,
    Yuv444,
    Gray,
}

/// Colour matrix and range the stream declares; `Unspecified` decodes as BT.601 limited, as ffmpeg does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MatrixTag {
    Unspecified = 0,
    Bt601 = 1,
    Bt709 = 2,
}
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeTag {
    Unspecified = 0,
    Limited = 1,
    Full = 2,
}

/// One frame (one sample / packet) of the track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Presentation and decode time in `Track::timescale` units.
    pub pts: i64,
    pub dts: i64,
    pub keyframe: bool,
    /// Where the coded bytes lie in the input (for GIF: the image descriptor; for APNG: the fcTL chunk).
    pub offset: u64,
    pub size: u64,
    /// Position in stream (decode) order.
    pub decode_index: u32,
}

#[derive(Debug, Clone)]
pub struct Track {
    pub container: &'static str,
    pub codec: Codec,
    pub width: u32,
    pub height: u32,
    pub timescale: u64,
    /// Frames in presentation order.
    pub frames: Vec<Frame>,
    /// Presentation end of the last frame, in timescale units (pts of last + its duration).
    pub end_pts: i64,
    pub matrix: MatrixTag,
    pub range: RangeTag,
    /// Byte range (start, end) in the input of the codec's configuration record, for decoders that need one
    /// (MP4 avcC/hvcC/av1C/vpcC/esds contents, Matroska CodecPrivate, AVI bytes after the BITMAPINFOHEADER).
    pub codec_config: Option<(u64, u64)>,
}

impl Track {
    pub fn duration_s(&self) -> f64 {
        match self.frames.first() {
            Some(first) if self.timescale > 0 => (self.end_pts - first.pts) as f64 / self.timescale as f64,
            _ => 0.0,
        }
    }
    /// Average frame rate: frames / duration, what decord and ffprobe's avg_frame_rate report.
    pub fn fps(&self) -> f64 {
        let d = self.duration_s();
        if d > 0.0 {
            self.frames.len() as f64 / d
        } else {
            0.0
        }
    }
    pub fn pts_s(&self, i: usize) -> f64 {
        if self.timescale == 0 {
            return 0.0;
        }
        self.frames[i].pts as f64 / self.timescale as f64
    }

    /// Sorts frames into presentation order (stable: equal pts keep decode order) and checks the limits.
    pub fn finish(mut self, limits: &Limits) -> Result<Track, MediaError> {
        if self.width == 0 || self.height == 0 {
            return Err(MediaError::InvalidData(format!("{} declares a {}x{} frame", self.container, self.width, self.height)));
        }
        let pixels = self.width as u64 * self.height as u64;
        if pixels > limits.max_pixels {
            return Err(MediaError::Limit(format!(
                "{}x{} is {} pixels per frame, above the limit of {}", self.width, self.height, pixels, limits.max_pixels
            )));
        }
        if self.frames.is_empty() {
            return Err(MediaError::InvalidData(format!("the {} track has no frames", self.container)));
        }
        if self.frames.len() as u64 > limits.max_frames {
            return Err(MediaError::Limit(format!(
                "{} frames, above the limit of {}", self.frames.len(), limits.max_frames
            )));
        }
        if self.timescale == 0 {
            return Err(MediaError::InvalidData("the track's timescale is 0".into()));
        }
        self.frames.sort_by_key(|f| (f.pts, f.decode_index));
        let last = self.frames[self.frames.len() - 1].pts;
        if self.end_pts <= last {
            // No usable duration for the last frame: extend by the average spacing (or one tick).
            let first = self.frames[0].pts;
            let n = self.frames.len() as i64;
            let step = if n > 1 { ((last - first) / (n - 1)).max(1) } else { self.timescale as i64 / 25 };
            self.end_pts = last.saturating_add(step.max(1));
        }
        let duration = self.duration_s();
        if !(duration <= limits.max_duration_s) {
            return Err(MediaError::Limit(format!(
                "{:.3} s of video, above the limit of {} s", duration, limits.max_duration_s
            )));
        }
        Ok(self)
    }
}
