/**
 * Frame preprocessing (spec §3.2 Vicuna, §9 Qwen): RGB24 frames → one normalised (T, 3, S, S) float32 tensor, and
 * the Pillow-exact BICUBIC resize under it. The work is in Rust (kernels-rs/media/src/preprocess.rs, resize.rs);
 * see preprocess.rs for the sizing rules and why the Qwen letterbox pads with black pixels (−1 after
 * normalisation), not with zeros after normalisation.
 */
import { KernelError, loadKernels, type WasmKernels } from "../backend/wasm/loader.ts";
import { checkSize } from "./pixels.ts";

/** One packed RGB24 frame, `width·height·3` bytes, rows top to bottom. */
export interface RgbFrame {
  data: Uint8Array;
  width: number;
  height: number;
}

/** "vicuna": stretch to 336×336, CLIP mean/std. "qwen": letterbox to 384×384, mean = std = 0.5. */
export type PreprocessVariant = "vicuna" | "qwen";

export interface PixelOptions {
  /** false runs the scalar twin of the SIMD resize (tests and benchmarks compare them). */
  simd?: boolean;
  kernels?: WasmKernels;
}

export interface PreprocessOptions extends PixelOptions {
  variant: PreprocessVariant;
  /** Side of the square output: the model's `vision_config.image_size` (default the variant's, 336 or 384). */
  size?: number;
}

export interface PixelTensor {
  data: Float32Array;
  shape: [number, 3, number, number];
}

const VARIANTS: Record<PreprocessVariant, { code: number; size: number }> = {
  vicuna: { code: 0, size: 336 },
  qwen: { code: 1, size: 384 },
};

/** Side of the square frame a variant produces. */
export function frameSize(variant: PreprocessVariant): number {
  return variantOf(variant).size;
}

function variantOf(variant: PreprocessVariant) {
  const found = VARIANTS[variant];
  if (!found) throw new KernelError("bad_argument", `preprocess: variant ${variant} is not "vicuna" or "qwen"`);
  return found;
}

function sideOf(variant: PreprocessVariant, size: number | undefined): number {
  if (size === undefined) return variantOf(variant).size;
  if (!Number.isInteger(size) || size < 1 || size > 4096) {
    throw new KernelError("bad_argument", `preprocess: the output side must be an integer in [1, 4096], got ${size}`);
  }
  return size;
}

function checkFrame(what: string, frame: RgbFrame): void {
  checkSize(what, frame.width, frame.height);
  if (frame.data.length !== frame.width * frame.height * 3) {
    throw new KernelError(
      "bad_shape",
      `${what}: ${frame.data.length} bytes is not ${frame.width}x${frame.height} RGB24 (${
        frame.width * frame.height * 3
      })`,
    );
  }
}

/** Frames → normalised CHW float32 tensor (T, 3, S, S). Frames may differ in size. */
export async function preprocess(frames: RgbFrame[], options: PreprocessOptions): Promise<PixelTensor> {
  return preprocessWith(options.kernels ?? await loadKernels(), frames, options);
}

/** `preprocess` on an instance the caller already holds (synchronous). */
export function preprocessWith(kernels: WasmKernels, frames: RgbFrame[], options: PreprocessOptions): PixelTensor {
  const { code } = variantOf(options.variant);
  const size = sideOf(options.variant, options.size);
  if (frames.length === 0) throw new KernelError("bad_shape", "preprocess: no frames given (need at least 1)");
  frames.forEach((frame, t) => checkFrame(`preprocess frame ${t}`, frame));
  const perFrame = 3 * size * size;
  const simd = options.simd === false ? 0 : 1;
  return kernels.scope((arena) => {
    const out = arena.output(Float32Array, frames.length * perFrame);
    frames.forEach((frame, t) => {
      // One frame in the module at a time: memory holds T outputs but only one input frame.
      kernels.scope((inner) => {
        const src = inner.input(frame.data);
        kernels.call(
          `preprocess frame ${t}`,
          "ppl_pixels_preprocess",
          src.ptr,
          src.length,
          frame.width,
          frame.height,
          code,
          size,
          out.ptr + t * perFrame * 4,
          perFrame,
          simd,
        );
      });
    });
    return { data: arena.read(out), shape: [frames.length, 3, size, size] as [number, 3, number, number] };
  });
}

/** The uint8 S×S×3 image `preprocess` normalises: the resize (and, for Qwen, the black letterbox) only. */
export async function preprocessCanvas(
  frame: RgbFrame,
  variant: PreprocessVariant,
  options: PixelOptions & { size?: number } = {},
): Promise<Uint8Array> {
  const kernels = options.kernels ?? await loadKernels();
  const { code } = variantOf(variant);
  const size = sideOf(variant, options.size);
  checkFrame("preprocessCanvas", frame);
  return kernels.scope((arena) => {
    const src = arena.input(frame.data);
    const out = arena.output(Uint8Array, size * size * 3);
    kernels.call(
      "preprocessCanvas",
      "ppl_pixels_canvas",
      src.ptr,
      src.length,
      frame.width,
      frame.height,
      code,
      size,
      out.ptr,
      out.length,
      options.simd === false ? 0 : 1,
    );
    return arena.read(out);
  });
}

/** Pillow-exact `Image.resize((outWidth, outHeight), Image.BICUBIC)` of a packed RGB24 image. */
export async function resizeRgb(
  rgb: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  options: PixelOptions = {},
): Promise<Uint8Array> {
  return resizeRgbWith(options.kernels ?? await loadKernels(), rgb, width, height, outWidth, outHeight, options);
}

/** `resizeRgb` on an instance the caller already holds (synchronous; what the benchmark times). */
export function resizeRgbWith(
  kernels: WasmKernels,
  rgb: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  options: PixelOptions = {},
): Uint8Array {
  checkFrame("resizeRgb input", { data: rgb, width, height });
  checkSize("resizeRgb output", outWidth, outHeight);
  return kernels.scope((arena) => {
    const src = arena.input(rgb);
    const out = arena.output(Uint8Array, outWidth * outHeight * 3);
    kernels.call(
      "resizeRgb",
      "ppl_pixels_resize_rgb",
      src.ptr,
      src.length,
      width,
      height,
      out.ptr,
      out.length,
      outWidth,
      outHeight,
      options.simd === false ? 0 : 1,
    );
    return arena.read(out);
  });
}
