/**
 * Typed wrappers of the pixel kernels (kernels-rs/media/src/yuv.rs, resize.rs; exported by kernels-rs/kernels/src/
 * pixels.rs): planar YUV → RGB24 bit-exact with ffmpeg's swscale full-chroma path, and the Pillow-exact BICUBIC
 * resize of RGB24 frames.
 */
import { KernelError, loadKernels, type WasmKernels } from "../backend/wasm/loader.ts";

export type Subsampling = "420" | "422" | "444";
export type ColorMatrix = "bt601" | "bt709";
export type ColorRange = "limited" | "full";

/** One 8-bit planar frame. Strides default to the plane widths (tightly packed). */
export interface YuvFrame {
  y: Uint8Array;
  u: Uint8Array;
  v: Uint8Array;
  width: number;
  height: number;
  subsampling: Subsampling;
  yStride?: number;
  uvStride?: number;
}

export interface YuvToRgbOptions {
  /** Default BT.601, as ffmpeg assumes when a stream declares nothing. */
  matrix?: ColorMatrix;
  /** Default limited ("tv") range. */
  range?: ColorRange;
  /** false runs the scalar twin of the SIMD rows (tests and benchmarks compare them). */
  simd?: boolean;
  kernels?: WasmKernels;
}

const SUBSAMPLING_CODE: Record<Subsampling, number> = { "420": 0, "422": 1, "444": 2 };
const MATRIX_CODE: Record<ColorMatrix, number> = { bt601: 0, bt709: 1 };
const RANGE_CODE: Record<ColorRange, number> = { limited: 0, full: 1 };

/** Chroma plane size of a `width` × `height` frame: ceil(w/2) wide for 4:2:x, ceil(h/2) high for 4:2:0. */
export function chromaSize(width: number, height: number, subsampling: Subsampling): [number, number] {
  const cw = subsampling === "444" ? width : Math.ceil(width / 2);
  const ch = subsampling === "420" ? Math.ceil(height / 2) : height;
  return [cw, ch];
}

export function checkSize(what: string, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new KernelError("bad_shape", `${what}: size ${width}x${height} must be positive integers`);
  }
}

/** Converts one planar YUV frame to packed RGB24 (width·height·3 bytes). */
export async function yuvToRgb(frame: YuvFrame, options: YuvToRgbOptions = {}): Promise<Uint8Array> {
  const kernels = options.kernels ?? await loadKernels();
  return yuvToRgbWith(kernels, frame, options);
}

/** `yuvToRgb` on an instance the caller already holds (synchronous). */
export function yuvToRgbWith(kernels: WasmKernels, frame: YuvFrame, options: YuvToRgbOptions = {}): Uint8Array {
  const { width, height, subsampling } = frame;
  checkSize("yuvToRgb", width, height);
  if (!(subsampling in SUBSAMPLING_CODE)) {
    throw new KernelError("bad_argument", `yuvToRgb: subsampling ${subsampling} is not one of 420, 422, 444`);
  }
  const matrix = options.matrix ?? "bt601";
  const range = options.range ?? "limited";
  if (!(matrix in MATRIX_CODE)) {
    throw new KernelError("bad_argument", `yuvToRgb: matrix ${matrix} is not bt601 or bt709`);
  }
  if (!(range in RANGE_CODE)) throw new KernelError("bad_argument", `yuvToRgb: range ${range} is not limited or full`);
  const [cw, ch] = chromaSize(width, height, subsampling);
  const yStride = frame.yStride ?? width;
  const uvStride = frame.uvStride ?? cw;
  const needY = (height - 1) * yStride + width;
  const needUv = (ch - 1) * uvStride + cw;
  for (const [name, plane, need] of [["Y", frame.y, needY], ["U", frame.u, needUv], ["V", frame.v, needUv]] as const) {
    if (plane.length < need) {
      throw new KernelError(
        "bad_shape",
        `yuvToRgb: the ${name} plane has ${plane.length} bytes; a ${width}x${height} ${subsampling} frame needs ${need}`,
      );
    }
  }
  return kernels.scope((arena) => {
    const y = arena.input(frame.y);
    const u = arena.input(frame.u);
    const v = arena.input(frame.v);
    const out = arena.output(Uint8Array, width * height * 3);
    kernels.call(
      "yuvToRgb",
      "ppl_pixels_yuv_to_rgb",
      y.ptr,
      y.length,
      u.ptr,
      u.length,
      v.ptr,
      v.length,
      width,
      height,
      yStride,
      uvStride,
      SUBSAMPLING_CODE[subsampling],
      MATRIX_CODE[matrix],
      RANGE_CODE[range],
      out.ptr,
      out.length,
      options.simd === false ? 0 : 1,
    );
    return arena.read(out);
  });
}
