//! Frame preprocessing of the two PPLLaVA variants: RGB24 frame → normalised CHW f32 (spec §3.2 and §9).
//!
//! - Vicuna (CLIP ViT-L/14-336, spec §3.2): stretch straight to 336×336 with Pillow's BICUBIC (aspect ratio not
//!   kept), then x/255 and CLIP mean/std.
//! - Qwen (SigLIP-so400m-384, spec §9): aspect-preserving resize so the frame fits 384×384, sized as
//!   transformers' `get_patch_output_size` does (the side that limits becomes 384, the other is
//!   `min(ceil(side·scale), 384)` in f64), centred on a 384×384 canvas at `((384−w)/2, (384−h)/2)` rounded down
//!   (the odd leftover row/column goes to the bottom/right), then x/255 and mean = std = 0.5.
//!
//! What "zero-padding" means: the padding is pixel value 0 (black) *before* normalisation, so the padded area reads
//! (0/255 − 0.5)/0.5 = −1 in the tensor, not 0. Both references do it that way round: LLaVA-NeXT's
//! `resize_and_pad_image` pastes the resized image onto `Image.new("RGB", size, (0, 0, 0))`, and transformers'
//! llava-onevision processor pads the uint8 patch with `np.pad(constant_values=0)` in `get_image_patches`, before
//! `_preprocess` rescales and normalises it. (A 0 after normalisation would be mid-grey, a colour SigLIP saw nowhere
//! in training.)
//!
//! Normalisation follows transformers' float path exactly: `rescale` multiplies in f64 by 1/255 and casts to f32,
//! `normalize` subtracts and divides in f32 with f32 mean/std, so the output bits equal the Python pipeline's.

use crate::resize::{resize_rgb, rgb_len, ResampleRows};
use crate::MediaError;

/// CLIP's normalisation (OpenAI).
pub const CLIP_MEAN: [f32; 3] = [0.48145466, 0.4578275, 0.40821073];
pub const CLIP_STD: [f32; 3] = [0.26862954, 0.26130258, 0.27577711];
/// SigLIP's normalisation.
pub const SIGLIP_MEAN: [f32; 3] = [0.5, 0.5, 0.5];
pub const SIGLIP_STD: [f32; 3] = [0.5, 0.5, 0.5];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// PPLLaVA-Vicuna: CLIP-L/336, stretch to 336×336.
    Vicuna,
    /// PPLLaVA-Qwen: SigLIP-384, letterbox to 384×384.
    Qwen,
}

impl Variant {
    /// Side of the square output of the released checkpoints (a model's `vision_config.image_size` may differ:
    /// the functions below take the side as an argument).
    pub fn size(self) -> usize {
        match self {
            Variant::Vicuna => 336,
            Variant::Qwen => 384,
        }
    }

    pub fn mean_std(self) -> ([f32; 3], [f32; 3]) {
        match self {
            Variant::Vicuna => (CLIP_MEAN, CLIP_STD),
            Variant::Qwen => (SIGLIP_MEAN, SIGLIP_STD),
        }
    }
}

/// Size (width, height) a `width`×`height` frame is resized to inside a `target`×`target` letterbox, exactly as
/// transformers' `get_patch_output_size` computes it.
pub fn letterbox_size(width: usize, height: usize, target: usize) -> (usize, usize) {
    let t = target as f64;
    let scale_w = t / width as f64;
    let scale_h = t / height as f64;
    if scale_w < scale_h {
        (target, ((height as f64 * scale_w).ceil() as usize).min(target).max(1))
    } else {
        (((width as f64 * scale_h).ceil() as usize).min(target).max(1), target)
    }
}

/// The uint8 S×S×3 canvas (S = `size`) a frame becomes before normalisation: the Pillow-exact resize,
/// letterboxed for Qwen.
pub fn canvas<R: ResampleRows>(
    src: &[u8],
    width: usize,
    height: usize,
    variant: Variant,
    size: usize,
    out: &mut [u8],
) -> Result<(), MediaError> {
    if size == 0 {
        return Err(MediaError::BadArgument("preprocess: the output side must be at least 1".into()));
    }
    let need = size * size * 3;
    if out.len() != need {
        return Err(MediaError::BadArgument(format!("preprocess: canvas has {} bytes, expected {}", out.len(), need)));
    }
    rgb_len("input", width, height)?;
    match variant {
        Variant::Vicuna => resize_rgb::<R>(src, width, height, out, size, size),
        Variant::Qwen => {
            let (w, h) = letterbox_size(width, height, size);
            let mut resized = vec![0u8; w * h * 3];
            resize_rgb::<R>(src, width, height, &mut resized, w, h)?;
            let (x0, y0) = ((size - w) / 2, (size - h) / 2);
            for v in out.iter_mut() {
                *v = 0;
            }
            for row in 0..h {
                let at = ((y0 + row) * size + x0) * 3;
                out[at..at + w * 3].copy_from_slice(&resized[row * w * 3..(row + 1) * w * 3]);
            }
            Ok(())
        }
    }
}

/// The f32 value of each byte per channel: `(f32(byte · (1/255 in f64)) − mean) / std`, in transformers' order.
pub fn normalize_table(mean: [f32; 3], std: [f32; 3]) -> [[f32; 256]; 3] {
    let mut table = [[0f32; 256]; 3];
    for c in 0..3 {
        for x in 0..256 {
            let rescaled = (x as f64 * (1.0 / 255.0)) as f32;
            table[c][x] = (rescaled - mean[c]) / std[c];
        }
    }
    table
}

/// HWC uint8 canvas (S×S×3) → CHW f32 (3×S×S) through `table`.
pub fn normalize_chw(canvas: &[u8], table: &[[f32; 256]; 3], out: &mut [f32]) -> Result<(), MediaError> {
    let pixels = canvas.len() / 3;
    if canvas.len() % 3 != 0 || out.len() != canvas.len() {
        return Err(MediaError::BadArgument(format!(
            "preprocess: {} canvas bytes and {} output values do not form one 3-channel image",
            canvas.len(),
            out.len()
        )));
    }
    let (r, rest) = out.split_at_mut(pixels);
    let (g, b) = rest.split_at_mut(pixels);
    for (i, px) in canvas.chunks_exact(3).enumerate() {
        r[i] = table[0][px[0] as usize];
        g[i] = table[1][px[1] as usize];
        b[i] = table[2][px[2] as usize];
    }
    Ok(())
}

/// One RGB24 frame → its 3×S×S normalised tensor in `out` (S = `size`).
pub fn preprocess_frame<R: ResampleRows>(
    src: &[u8],
    width: usize,
    height: usize,
    variant: Variant,
    size: usize,
    out: &mut [f32],
) -> Result<(), MediaError> {
    if size == 0 || out.len() != 3 * size * size {
        return Err(MediaError::BadArgument(format!("preprocess: {} output values do not hold 3×{}×{}", out.len(), size, size)));
    }
    let mut pixels = vec![0u8; size * size * 3];
    canvas::<R>(src, width, height, variant, size, &mut pixels)?;
    let (mean, std) = variant.mean_std();
    normalize_chw(&pixels, &normalize_table(mean, std), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resize::Scalar;

    #[test]
    fn letterbox_sizes() {
        assert_eq!(letterbox_size(1280, 720, 384), (384, 216));
        assert_eq!(letterbox_size(720, 1280, 384), (216, 384));
        assert_eq!(letterbox_size(1000, 7, 384), (384, 3));
        assert_eq!(letterbox_size(1, 10000, 384), (1, 384));
        assert_eq!(letterbox_size(500, 500, 384), (384, 384));
        assert_eq!(letterbox_size(641, 480, 384), (384, 288));
    }

    #[test]
    fn qwen_padding_is_black_then_minus_one() {
        let src = vec![255u8; 100 * 10 * 3];
        let mut out = vec![0f32; 3 * 384 * 384];
        preprocess_frame::<Scalar>(&src, 100, 10, Variant::Qwen, 384, &mut out).unwrap();
        assert_eq!(out[0], -1.0, "top-left is padding");
        assert_eq!(out[192 * 384 + 192], 1.0, "centre is the white frame");
    }
}
