/**
 * Decode of a 1-minute 1280×720 MJPEG clip (testsrc2, 25 fps, 1500 frames), 32 frames sampled as PPLLaVA does,
 * to RGB24: ours (open + demux + decode of the 32 frames, WASM, one thread) against ffmpeg with -threads 1
 * decoding the same 32 JPEG frames to rgb24 (its own -benchmark rtime, start-up excluded), and against the
 * decode-everything pipeline a plain ffmpeg command runs (select filter over all 1500 frames).
 * The clip is made once into the temp folder.
 */
import { runBench } from "./harness.ts";
import { loadKernels } from "../src/backend/wasm/loader.ts";
import { decodeVideo, openVideo } from "../src/media/video.ts";
import { sampleFrames } from "../src/media/sampling.ts";

const FRAMES = 32;

async function sh(args: string[]): Promise<string> {
  const result = await new Deno.Command(args[0], { args: args.slice(1), stdout: "piped", stderr: "piped" }).output();
  if (!result.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(result.stderr)}`);
  return new TextDecoder().decode(result.stderr);
}

/** ffmpeg's own wall time (-benchmark rtime) for one run. */
async function ffmpegRtime(args: string[]): Promise<{ seconds: number }> {
  const log = await sh(["ffmpeg", "-hide_banner", "-nostdin", "-benchmark", "-threads", "1", ...args]);
  const match = log.match(/rtime=([\d.]+)s/);
  if (!match) throw new Error(`no rtime in ffmpeg's output:\n${log}`);
  return { seconds: Number(match[1]) };
}

export async function main(): Promise<void> {
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/ppllava-bench-decode`;
  const clip = `${dir}/720p-60s-mjpeg.avi`;
  await Deno.mkdir(dir, { recursive: true });
  try {
    await Deno.stat(clip);
  } catch {
    await sh([
      "ffmpeg",
      "-v",
      "error",
      "-f",
      "lavfi",
      "-i",
      "testsrc2=size=1280x720:rate=25:duration=60",
      "-c:v",
      "mjpeg",
      "-q:v",
      "4",
      "-pix_fmt",
      "yuvj420p",
      "-y",
      clip,
    ]);
  }
  const bytes = await Deno.readFile(clip);
  const kernels = await loadKernels();
  const video = await openVideo(bytes, {}, kernels);
  const indices = sampleFrames(video, { numFrames: FRAMES });
  const frameCount = video.frameCount;
  video.close();

  // The same 32 coded frames as one MJPEG elementary stream, for ffmpeg to decode and nothing else.
  const frames = `${dir}/frames`;
  await Deno.mkdir(frames, { recursive: true });
  await sh(["ffmpeg", "-v", "error", "-i", clip, "-c:v", "copy", "-f", "image2", "-y", `${frames}/%05d.jpg`]);
  const chosen = await Promise.all(
    indices.map((i) => Deno.readFile(`${frames}/${String(i + 1).padStart(5, "0")}.jpg`)),
  );
  const stream = new Uint8Array(chosen.reduce((n, c) => n + c.length, 0));
  chosen.reduce((at, c) => (stream.set(c, at), at + c.length), 0);
  await Deno.writeFile(`${dir}/sampled.mjpeg`, stream);
  await Deno.remove(frames, { recursive: true });
  const select = indices.map((i) => `eq(n\\,${i})`).join("+");

  await runBench({
    name: "decode",
    cases: [
      {
        label: "ours: open + demux + decode 32 frames (wasm)",
        run: async () => {
          const out = await decodeVideo(bytes, { numFrames: FRAMES, kernels });
          if (out.indices.length !== FRAMES) throw new Error("wrong frame count");
        },
      },
      {
        label: "ffmpeg -threads 1: the same 32 JPEG frames to rgb24",
        run: () =>
          ffmpegRtime([
            "-f",
            "mjpeg",
            "-i",
            `${dir}/sampled.mjpeg`,
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-y",
            "/dev/null",
          ]),
      },
      {
        label: "ffmpeg -threads 1: select filter over the whole clip",
        run: () =>
          ffmpegRtime([
            "-i",
            clip,
            "-vf",
            `select=${select}`,
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-y",
            "/dev/null",
          ]),
      },
    ],
    reps: 3,
    warmup: 1,
    work: { amount: FRAMES, unit: "frame" },
    notes: { clip: "testsrc2 1280x720 25 fps 60 s, mjpeg q 4 yuvj420p, avi", frameCount, bytes: bytes.length, indices },
  });
}

if (import.meta.main) await main();
