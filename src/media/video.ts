/**
 * Opening and decoding videos through the WASM media module (kernels-rs/kernels/src/media.rs).
 *
 * `openVideo` copies the bytes into module memory once and demuxes them (sniffed by content); the returned
 * `Video` describes the track and holds that copy until `close()`. `decodeFrames` decodes only the frames asked
 * for, forward in stream order. `decodeVideo` does open + sample + decode + close in one call.
 */
import { type Block, KernelError, loadKernels, type WasmKernels } from "../backend/wasm/loader.ts";
import { MediaError, type MediaErrorCode } from "./errors.ts";
import { sampleFrames, type SampleOptions } from "./sampling.ts";

export interface MediaLimits {
  maxInputBytes: number;
  maxPixelsPerFrame: number;
  maxFrames: number;
  maxDurationS: number;
  /** Decoded output of one call plus its working frames. */
  maxDecodedBytes: number;
}

export const DEFAULT_MEDIA_LIMITS: MediaLimits = {
  maxInputBytes: 1 << 30,
  maxPixelsPerFrame: 8192 * 8192,
  maxFrames: 1 << 20,
  maxDurationS: 24 * 3600,
  maxDecodedBytes: 1 << 30,
};

export type PixFmt = "rgb24" | "yuv420p";
export type ColourMatrix = "unspecified" | "bt601" | "bt709";
export type ColourRange = "unspecified" | "limited" | "full";

export interface VideoInfo {
  container: string;
  codec: string;
  /** false when the codec is recognised but this build cannot decode it (decodeFrames then throws unsupported). */
  decodable: boolean;
  width: number;
  height: number;
  /** Frames counted from the container's sample tables. */
  frameCount: number;
  fps: number;
  durationS: number;
  /** Presentation time of each frame, seconds, presentation order. */
  ptsS: Float64Array;
  dtsS: Float64Array;
  keyframes: number[];
  matrix: ColourMatrix;
  range: ColourRange;
}

export interface DecodedFrames {
  pixFmt: PixFmt;
  width: number;
  height: number;
  frameBytes: number;
  indices: number[];
  ptsS: number[];
  /** The frames back to back, `frameBytes` each, in the order of `indices`. */
  data: Uint8Array;
}

const STATUS: Record<number, MediaErrorCode> = { 2: "bad_argument", 5: "unsupported", 6: "invalid_data", 7: "limit" };
const INFO_FIELDS = 11;
const FRAME_FIELDS = 6;

export function frameBytes(pixFmt: PixFmt, width: number, height: number): number {
  return pixFmt === "rgb24" ? width * height * 3 : width * height + 2 * Math.ceil(width / 2) * Math.ceil(height / 2);
}

function lastError(kernels: WasmKernels, status: number, what: string): MediaError {
  const message = kernels.scope((arena) => {
    const buf = arena.output(Uint8Array, 1024);
    const n = kernels.callValue(what, "ppl_media_error", buf.ptr, 1024);
    return new TextDecoder().decode(arena.read(buf).subarray(0, Math.min(n, 1024)));
  });
  const code = STATUS[status];
  if (!code) return new MediaError("invalid_data", `${what}: the media module returned status ${status}: ${message}`);
  return new MediaError(code, `${what}: ${message}`);
}

/** An opened video: its description, and the module memory holding its bytes until `close()`. */
export class Video implements VideoInfo {
  container = "";
  codec = "";
  decodable = false;
  width = 0;
  height = 0;
  frameCount = 0;
  fps = 0;
  durationS = 0;
  ptsS: Float64Array = new Float64Array();
  dtsS: Float64Array = new Float64Array();
  keyframes: number[] = [];
  matrix: ColourMatrix = "unspecified";
  range: ColourRange = "unspecified";
  /** Per frame (presentation order): where its coded bytes lie in the input, and its place in decode order. */
  packetOffsets: Float64Array = new Float64Array();
  packetSizes: Float64Array = new Float64Array();
  decodeOrder: Uint32Array = new Uint32Array();
  /** The codec configuration record (MP4 avcC/hvcC/..., Matroska CodecPrivate), when the container has one. */
  codecConfig: Uint8Array | null = null;
  #handle: number;
  #input: Block<Uint8Array> | null;

  constructor(readonly kernels: WasmKernels, handle: number, input: Block<Uint8Array>, bytes: Uint8Array) {
    this.#handle = handle;
    this.#input = input;
    kernels.scope((arena) => {
      const info = arena.output(Float64Array, INFO_FIELDS);
      kernels.callValue("media info", "ppl_media_info", handle, info.ptr);
      const [width, height, frameCount, timescale, durationS, fps, , matrix, range, , decodable] = arena.read(info);
      Object.assign(this, { width, height, frameCount, durationS, fps, decodable: decodable === 1 });
      this.matrix = (["unspecified", "bt601", "bt709"] as const)[matrix] ?? "unspecified";
      this.range = (["unspecified", "limited", "full"] as const)[range] ?? "unspecified";
      const text = (which: number) => {
        const buf = arena.output(Uint8Array, 256);
        const n = kernels.callValue("media text", "ppl_media_text", handle, which, buf.ptr, 256);
        return new TextDecoder().decode(arena.read(buf).subarray(0, Math.min(n, 256)));
      };
      this.container = text(0);
      this.codec = text(1);
      const table = arena.output(Float64Array, frameCount * FRAME_FIELDS);
      kernels.callValue("media frames", "ppl_media_frames", handle, table.ptr);
      const rows = arena.read(table);
      this.ptsS = new Float64Array(frameCount);
      this.dtsS = new Float64Array(frameCount);
      this.packetOffsets = new Float64Array(frameCount);
      this.packetSizes = new Float64Array(frameCount);
      this.decodeOrder = new Uint32Array(frameCount);
      for (let i = 0; i < frameCount; i++) {
        const row = rows.subarray(i * FRAME_FIELDS, (i + 1) * FRAME_FIELDS);
        this.ptsS[i] = row[0] / timescale;
        this.dtsS[i] = row[1] / timescale;
        if (row[2] === 1) this.keyframes.push(i);
        this.packetOffsets[i] = row[3];
        this.packetSizes[i] = row[4];
        this.decodeOrder[i] = row[5];
      }
      const config = arena.output(Float64Array, 2);
      kernels.callValue("media codec config", "ppl_media_codec_config", handle, config.ptr);
      const [start, end] = arena.read(config);
      if (start >= 0) this.codecConfig = bytes.slice(start, end);
    });
  }

  get closed(): boolean {
    return this.#input === null;
  }

  /** A plain copy of the description (no module handles), e.g. for JSON. */
  describe(): VideoInfo {
    const {
      container,
      codec,
      decodable,
      width,
      height,
      frameCount,
      fps,
      durationS,
      ptsS,
      dtsS,
      keyframes,
      matrix,
      range,
    } = this;
    return {
      container,
      codec,
      decodable,
      width,
      height,
      frameCount,
      fps,
      durationS,
      ptsS,
      dtsS,
      keyframes,
      matrix,
      range,
    };
  }

  /** Decodes frames `indices` (presentation order; any order, repeats allowed). */
  decodeFrames(indices: readonly number[], options: { pixFmt?: PixFmt } = {}): DecodedFrames {
    const input = this.#input;
    if (!input) throw new MediaError("bad_argument", "decodeFrames on a closed video");
    const pixFmt = options.pixFmt ?? "rgb24";
    if (pixFmt !== "rgb24" && pixFmt !== "yuv420p") {
      throw new MediaError("bad_argument", `pixFmt must be rgb24 or yuv420p, got ${pixFmt}`);
    }
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= this.frameCount) {
        throw new MediaError("bad_argument", `frame index ${i} is outside 0..${this.frameCount - 1}`);
      }
    }
    const size = frameBytes(pixFmt, this.width, this.height);
    const kernels = this.kernels;
    const data = kernels.scope((arena) => {
      const idx = arena.input(Uint32Array.from(indices));
      const out = arena.output(Uint8Array, size * indices.length);
      const status = kernels.callValue(
        "decode frames",
        "ppl_media_decode",
        this.#handle,
        idx.ptr,
        indices.length,
        pixFmt === "rgb24" ? 0 : 1,
        out.ptr,
        size * indices.length,
      );
      if (status !== 0) throw lastError(kernels, status, `decoding ${this.codec} frames from ${this.container}`);
      return arena.read(out);
    });
    return {
      pixFmt,
      width: this.width,
      height: this.height,
      frameBytes: size,
      indices: [...indices],
      ptsS: indices.map((i) => this.ptsS[i]),
      data,
    };
  }

  /** Frees the module memory of this video; further decodes throw. */
  close(): void {
    if (!this.#input) return;
    const input = this.#input;
    this.#input = null;
    release(this.kernels, () => {
      this.kernels.callValue("media close", "ppl_media_close", this.#handle);
      this.kernels.callValue("free", "ppl_free", input.ptr, input.length);
    });
  }
}

/** Frees module memory unless the instance trapped (then its memory is gone with it). */
function release(_kernels: WasmKernels, free: () => void) {
  try {
    free();
  } catch (error) {
    if (!(error instanceof KernelError && error.code === "trap")) throw error;
  }
}

function limitsArray(limits: Partial<MediaLimits>): Float64Array {
  const l = { ...DEFAULT_MEDIA_LIMITS, ...limits };
  return Float64Array.from([l.maxInputBytes, l.maxPixelsPerFrame, l.maxFrames, l.maxDurationS, l.maxDecodedBytes]);
}

/** Sniffs and demuxes `bytes`; the result must be `close()`d (decodeVideo does it for you). */
export async function openVideo(
  bytes: Uint8Array,
  limits: Partial<MediaLimits> = {},
  kernels?: WasmKernels,
): Promise<Video> {
  const k = kernels ?? await loadKernels();
  return openVideoWith(k, bytes, limits);
}

/** The synchronous form of `openVideo` for an already loaded module. */
export function openVideoWith(kernels: WasmKernels, bytes: Uint8Array, limits: Partial<MediaLimits> = {}): Video {
  const caps = limitsArray(limits);
  if (bytes.length > caps[0]) {
    throw new MediaError("limit", `${bytes.length} input bytes, above the limit of ${caps[0]}`);
  }
  const ptr = kernels.callValue("alloc", "ppl_alloc", Math.max(1, bytes.length));
  if (ptr === 0) throw new MediaError("limit", `cannot hold ${bytes.length} input bytes in module memory`);
  const input: Block<Uint8Array> = { ptr, length: Math.max(1, bytes.length), type: Uint8Array };
  let handle = 0;
  try {
    kernels.scope((arena) => {
      arena.view(input).set(bytes);
      const l = arena.input(caps);
      const out = arena.output(Uint32Array, 1);
      const status = kernels.callValue("open video", "ppl_media_open", ptr, bytes.length, l.ptr, out.ptr);
      if (status !== 0) throw lastError(kernels, status, "opening the video");
      handle = arena.read(out)[0];
    });
    return new Video(kernels, handle, input, bytes);
  } catch (error) {
    release(kernels, () => {
      if (handle !== 0) kernels.callValue("media close", "ppl_media_close", handle);
      kernels.callValue("free", "ppl_free", ptr, input.length);
    });
    throw error;
  }
}

export interface DecodeVideoOptions extends SampleOptions {
  /** Decode every frame in presentation order instead of sampling. */
  all?: boolean;
  pixFmt?: PixFmt;
  limits?: Partial<MediaLimits>;
  kernels?: WasmKernels;
}

export interface DecodedVideo extends DecodedFrames {
  info: VideoInfo;
}

/** Opens `bytes`, picks frames (PPLLaVA's 32 segment midpoints by default), decodes them, closes. */
export async function decodeVideo(bytes: Uint8Array, options: DecodeVideoOptions = {}): Promise<DecodedVideo> {
  const video = await openVideo(bytes, options.limits, options.kernels);
  try {
    const indices = options.all ? Array.from({ length: video.frameCount }, (_, i) => i) : sampleFrames(video, options);
    return { info: video.describe(), ...video.decodeFrames(indices, { pixFmt: options.pixFmt }) };
  } finally {
    video.close();
  }
}

/**
 * A list of images (JPEG, PNG, GIF; e.g. frames uploaded one by one) as a video at `fps` (default 1): all must
 * have the same size. Sampling works as for a video; only the chosen images are decoded.
 */
export async function decodeImageSequence(
  images: readonly Uint8Array[],
  options: DecodeVideoOptions & { sequenceFps?: number } = {},
): Promise<DecodedVideo> {
  if (images.length === 0) throw new MediaError("bad_argument", "an image sequence needs at least one image");
  const fps = options.sequenceFps ?? 1;
  if (!(fps > 0)) throw new MediaError("bad_argument", `sequenceFps must be positive, got ${fps}`);
  const kernels = options.kernels ?? await loadKernels();
  const first = openVideoWith(kernels, images[0], options.limits);
  const { width, height, codec } = first;
  first.close();
  const n = images.length;
  const ptsS = Float64Array.from({ length: n }, (_, i) => i / fps);
  const info: VideoInfo = {
    container: "image-sequence",
    codec,
    decodable: true,
    width,
    height,
    frameCount: n,
    fps,
    durationS: n / fps,
    ptsS,
    dtsS: ptsS,
    keyframes: Array.from({ length: n }, (_, i) => i),
    matrix: "unspecified",
    range: "unspecified",
  };
  const indices = options.all ? info.keyframes.slice() : sampleFrames(info, options);
  const pixFmt = options.pixFmt ?? "rgb24";
  const size = frameBytes(pixFmt, width, height);
  const data = new Uint8Array(size * indices.length);
  indices.forEach((index, k) => {
    const image = openVideoWith(kernels, images[index], options.limits);
    try {
      if (image.width !== width || image.height !== height) {
        throw new MediaError(
          "bad_argument",
          `image ${index} is ${image.width}x${image.height}, not ${width}x${height}`,
        );
      }
      data.set(image.decodeFrames([0], { pixFmt }).data, k * size);
    } finally {
      image.close();
    }
  });
  return { info, pixFmt, width, height, frameBytes: size, indices, ptsS: indices.map((i) => ptsS[i]), data };
}
