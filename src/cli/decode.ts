/**
 * `ppllava decode INPUT [--num-frames N | --fps F [--max-frames M]] [--start S] [--end S] [--keyframes]
 *  [--pix-fmt rgb24|yuv420p] [--all] [--sequence-fps F] --out FILE`
 *
 * Decodes the sampled frames (PPLLaVA's 32 segment midpoints by default; --all for every frame), writes them raw
 * and back to back to FILE, and prints one JSON object: {container, codec, width, height, frameCount, fps,
 * durationS, indices, ptsS}. Several INPUTs are an image sequence (one frame each, --sequence-fps, default 1).
 */
import { readFile, writeFile } from "node:fs/promises";
import { numberFlag, parseArgs, UsageError } from "./args.ts";
import { decodeImageSequence, decodeVideo, type DecodeVideoOptions, type PixFmt } from "../media/video.ts";

const FLAGS = {
  "num-frames": "string",
  fps: "string",
  "max-frames": "string",
  start: "string",
  end: "string",
  keyframes: "boolean",
  "pix-fmt": "string",
  all: "boolean",
  "sequence-fps": "string",
  out: "string",
} as const;

export async function decodeCommand(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, { ...FLAGS });
  if (positional.length === 0) throw new UsageError("needs an INPUT file (several make an image sequence)");
  const out = flags.out;
  if (typeof out !== "string") throw new UsageError("needs --out FILE for the raw frames");
  const pixFmt = (flags["pix-fmt"] ?? "rgb24") as PixFmt;
  if (pixFmt !== "rgb24" && pixFmt !== "yuv420p") {
    throw new UsageError(`--pix-fmt must be rgb24 or yuv420p, got ${pixFmt}`);
  }
  if (flags["num-frames"] !== undefined && flags.fps !== undefined) {
    throw new UsageError("--num-frames and --fps are two sampling modes: give one");
  }
  if (flags.all && (flags["num-frames"] !== undefined || flags.fps !== undefined || flags.keyframes)) {
    throw new UsageError("--all decodes every frame: it takes no sampling options");
  }
  const integer = (name: string) => {
    const value = numberFlag(flags, name);
    if (value !== undefined && !(Number.isInteger(value) && value >= 1)) {
      throw new UsageError(`--${name} must be a positive integer, got ${value}`);
    }
    return value;
  };
  const options: DecodeVideoOptions = {
    numFrames: integer("num-frames"),
    fps: numberFlag(flags, "fps"),
    maxFrames: integer("max-frames"),
    start: numberFlag(flags, "start"),
    end: numberFlag(flags, "end"),
    keyframes: flags.keyframes === true,
    all: flags.all === true,
    pixFmt,
  };
  const inputs = await Promise.all(positional.map((path) => readFile(path).then((b) => new Uint8Array(b))));
  const result = inputs.length === 1
    ? await decodeVideo(inputs[0], options)
    : await decodeImageSequence(inputs, { ...options, sequenceFps: numberFlag(flags, "sequence-fps") });
  await writeFile(out, result.data);
  const { container, codec, width, height, frameCount, fps, durationS } = result.info;
  console.log(JSON.stringify({
    container,
    codec,
    width,
    height,
    frameCount,
    fps,
    durationS,
    indices: result.indices,
    ptsS: result.ptsS,
  }));
  return 0;
}
