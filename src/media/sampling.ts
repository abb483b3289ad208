/**
 * The frame-sampling plan (spec §3.1): PPLLaVA's segment midpoints, an fps mode with a maximum count, an optional
 * [start, end] in seconds, and a keyframe snap. Pure functions of the video description; nothing is decoded here.
 */
import { MediaError } from "./errors.ts";

/** What sampling needs to know about a video. */
export interface SamplingInfo {
  frameCount: number;
  fps: number;
  /** Presentation-order indices of keyframes (ascending). */
  keyframes?: readonly number[];
  /** Presentation time of each frame in seconds (for the fps mode on variable-rate video). */
  ptsS?: ArrayLike<number>;
}

export interface SampleOptions {
  /** Segment-midpoint mode: this many frames (default 32, PPLLaVA's default). */
  numFrames?: number;
  /** fps mode: one frame every 1/fps seconds of the range, at most `maxFrames` (then midpoints of maxFrames). */
  fps?: number;
  maxFrames?: number;
  /** Range bound in seconds (the spec's `bound`). */
  start?: number;
  end?: number;
  /** Replace each index by the nearest keyframe (ties go to the earlier one). */
  keyframes?: boolean;
}

/** NumPy's np.round: half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : r;
}

function checkNumber(name: string, value: number | undefined, min: number) {
  if (value !== undefined && !(Number.isFinite(value) && value >= min)) {
    throw new MediaError("bad_argument", `${name} must be a finite number >= ${min}, got ${value}`);
  }
}

/** The [start, end] frame range of the spec: bound → round(sec · fps), clamped to [0, frameCount - 1]. */
export function frameRange(info: SamplingInfo, start?: number, end?: number): [number, number] {
  const maxFrame = info.frameCount - 1;
  const first = start === undefined ? 0 : Math.max(0, roundHalfEven(start * info.fps));
  const last = end === undefined ? maxFrame : Math.min(roundHalfEven(end * info.fps), maxFrame);
  return [first, last];
}

/** int(start + seg/2 + round_half_even(seg · i)) for i in 0..n-1, seg = (end - start) / n. */
export function segmentMidpoints(start: number, end: number, n: number): number[] {
  const seg = (end - start) / n;
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.trunc(start + seg / 2 + roundHalfEven(seg * i)));
  return out;
}

function nearestKeyframe(index: number, keyframes: readonly number[]): number {
  let lo = 0, hi = keyframes.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keyframes[mid] < index) lo = mid + 1;
    else hi = mid;
  }
  const after = keyframes[lo];
  const before = lo > 0 ? keyframes[lo - 1] : after;
  return index - before <= after - index ? before : after;
}

/** The presentation-order indices of the frames to decode. */
export function sampleFrames(info: SamplingInfo, options: SampleOptions = {}): number[] {
  if (!(info.frameCount >= 1)) throw new MediaError("bad_argument", "the video has no frames to sample");
  checkNumber("numFrames", options.numFrames, 1);
  checkNumber("maxFrames", options.maxFrames, 1);
  checkNumber("start", options.start, 0);
  checkNumber("end", options.end, 0);
  if (options.fps !== undefined && !(options.fps > 0 && Number.isFinite(options.fps))) {
    throw new MediaError("bad_argument", `fps must be a positive number, got ${options.fps}`);
  }
  const [start, end] = frameRange(info, options.start, options.end);
  if (end < start) {
    throw new MediaError("bad_argument", `the range [${options.start}, ${options.end}] s holds no frames`);
  }
  let indices: number[];
  if (options.fps !== undefined) {
    const maxFrames = options.maxFrames ?? 32;
    const pts = info.ptsS;
    const t0 = pts ? pts[start] : start / info.fps;
    const t1 = pts ? pts[end] : end / info.fps;
    const count = Math.floor((t1 - t0) * options.fps + 1e-9) + 1;
    if (count > maxFrames) {
      indices = segmentMidpoints(start, end, maxFrames);
    } else {
      indices = [];
      let j = start;
      for (let k = 0; k < count; k++) {
        const t = t0 + k / options.fps;
        if (pts) {
          // The last frame shown at time t (presentation time <= t).
          while (j < end && pts[j + 1] <= t + 1e-9) j++;
          indices.push(j);
        } else {
          indices.push(Math.min(end, start + Math.floor(k * info.fps / options.fps + 1e-9)));
        }
      }
    }
  } else {
    indices = segmentMidpoints(start, end, options.numFrames ?? 32);
  }
  if (options.keyframes) {
    const keyframes = info.keyframes ?? [];
    if (keyframes.length === 0) {
      throw new MediaError("invalid_data", "keyframe snap asked for, but the video lists no keyframes");
    }
    indices = indices.map((i) => nearestKeyframe(i, keyframes));
  }
  return indices;
}
