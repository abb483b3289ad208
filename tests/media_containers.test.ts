/**
 * Containers and codecs against ffmpeg: every container × codec pair made by tests/oracles/make_media.sh is
 * demuxed (frame count, size, presentation times vs ffprobe) and decoded (vs ffmpeg: PNG, GIF, APNG, Y4M exact;
 * MJPEG ≥ 40 dB), sampling indices are checked against PPLLaVA's NumPy formula, and limits and unsupported codecs
 * are typed errors.
 */
import { assert, assertEquals, assertRejects } from "./util/assert.ts";
import { ffmpegDecode, ffprobe, mediaDir, psnr, run } from "./util/media_fixtures.ts";
import { fancyYcbcrToRgb } from "./reference/jpeg_color.ts";
import { MediaError } from "../src/media/errors.ts";
import { decodeVideo, openVideo } from "../src/media/video.ts";

const CONTAINER: Record<string, string> = {
  "mjpeg.mp4": "mp4",
  "mjpeg.mov": "mov",
  "mjpeg_frag.mp4": "mp4",
  "mjpeg_elst.mp4": "mp4",
  "mjpeg_vfr.mp4": "mp4",
  "mjpeg.mkv": "matroska",
  "mjpeg.avi": "avi",
  "audio_first.mov": "mov",
  "audio_first.avi": "avi",
  "audio_first.mkv": "matroska",
  "png.mov": "mov",
  "anim.gif": "gif",
  "anim.apng": "apng",
  "yuv420.y4m": "y4m",
  "yuv422.y4m": "y4m",
  "yuv444.y4m": "y4m",
  "yuv444_full.y4m": "y4m",
  "still.png": "png",
  "still.jpg": "jpeg",
  "still.gif": "gif",
  "still_pal8.png": "png",
  "still_gray.png": "png",
  "still_rgb48.png": "png",
  "still_gray.jpg": "jpeg",
  "still_progressive.jpg": "jpeg",
  "dispose.gif": "gif",
  "dispose.apng": "apng",
  "h264.mp4": "mp4",
  "h264_frag.mp4": "mp4",
  "h264.mkv": "matroska",
  "vp8.webm": "webm",
};
const EXACT = [
  "png.mov",
  "anim.gif",
  "anim.apng",
  "dispose.gif",
  "still.png",
  "still.gif",
  "still_pal8.png",
  "still_gray.png",
  "still_rgb48.png",
  "yuv420.y4m",
  "yuv422.y4m",
  "yuv444.y4m",
  "yuv444_full.y4m",
];
const JPEG = [
  "mjpeg.mp4",
  "mjpeg.mov",
  "mjpeg_frag.mp4",
  "mjpeg_elst.mp4",
  "mjpeg_vfr.mp4",
  "mjpeg.mkv",
  "mjpeg.avi",
  "still.jpg",
  "still_gray.jpg",
  "still_progressive.jpg",
  "audio_first.mov",
  "audio_first.avi",
  "audio_first.mkv",
];
const UNSUPPORTED: Record<string, string> = {
  "h264.mp4": "h264",
  "h264_frag.mp4": "h264",
  "h264.mkv": "h264",
  "vp8.webm": "vp8",
};
// swscale's exact path for planar YUV (see kernels-rs/media/src/yuv.rs); other inputs use ffmpeg's defaults.
const Y4M_FLAGS = ["-sws_flags", "neighbor+full_chroma_int+accurate_rnd+bitexact"];

const read = async (name: string) => Deno.readFile(`${await mediaDir()}/${name}`);

for (const name of Object.keys(CONTAINER)) {
  Deno.test(`demux ${name}: container, size, frame count and presentation times match ffprobe`, async () => {
    const path = `${await mediaDir()}/${name}`;
    const probe = await ffprobe(path);
    const video = await openVideo(await Deno.readFile(path));
    try {
      assertEquals(video.container, CONTAINER[name]);
      assertEquals([video.width, video.height], [probe.width, probe.height]);
      assertEquals(video.frameCount, probe.ptsS.length, "frame count");
      for (let i = 0; i < video.frameCount; i++) {
        assert(
          Math.abs(video.ptsS[i] - probe.ptsS[i]) <= 2e-6,
          `${name} frame ${i}: pts ${video.ptsS[i]} vs ffprobe ${probe.ptsS[i]}`,
        );
      }
    } finally {
      video.close();
    }
  });
}

for (const name of EXACT) {
  Deno.test(`decode ${name}: every frame equals ffmpeg's rgb24 decode exactly`, async () => {
    const path = `${await mediaDir()}/${name}`;
    const ours = await decodeVideo(await Deno.readFile(path), { all: true });
    const theirs = await ffmpegDecode(path, "rgb24", name.endsWith(".y4m") ? Y4M_FLAGS : []);
    assertEquals(ours.data.length, theirs.length, "decoded bytes");
    const firstDiff = ours.data.findIndex((v, i) => v !== theirs[i]);
    assertEquals(firstDiff, -1, `first differing byte ${firstDiff} (frame ${Math.floor(firstDiff / ours.frameBytes)})`);
  });
}

Deno.test("decode dispose.apng: dispose none/background/previous and blend over composite as Pillow does", async () => {
  // ffmpeg 5.1's APNG decoder clears a frame's region before drawing it when that frame's own dispose_op is
  // BACKGROUND (the spec applies dispose_op after the frame is shown), so for disposal the oracle is Pillow.
  const dir = await mediaDir();
  const ours = await decodeVideo(await Deno.readFile(`${dir}/dispose.apng`), { all: true });
  await run("/usr/bin/python3", ["tests/oracles/pillow_frames.py", `${dir}/dispose.apng`, `${dir}/dispose.rgba`]);
  const pillow = await Deno.readFile(`${dir}/dispose.rgba`);
  const pixels = ours.width * ours.height * ours.indices.length;
  assertEquals(pillow.length, pixels * 4);
  let differing = 0;
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) if (ours.data[p * 3 + c] !== pillow[p * 4 + c]) differing++;
  }
  assertEquals(differing, 0, "bytes differing from Pillow's composite");
});

for (const name of JPEG) {
  Deno.test(`decode ${name}: MJPEG frames within 40 dB of ffmpeg's decode`, async () => {
    const dir = await mediaDir();
    const path = `${dir}/${name}`;
    const probe = await ffprobe(path);
    const ours = await decodeVideo(await Deno.readFile(path), { all: true });
    const n = ours.indices.length;
    const frame = (data: Uint8Array, i: number, size: number) => data.subarray(i * size, (i + 1) * size);
    let worst = Infinity;
    if (probe.pixFmt === "yuvj444p" || probe.pixFmt === "gray") {
      const theirs = await ffmpegDecode(path, "rgb24");
      assertEquals(theirs.length, ours.data.length);
      for (let i = 0; i < n; i++) {
        worst = Math.min(worst, psnr(frame(ours.data, i, ours.frameBytes), frame(theirs, i, ours.frameBytes)));
      }
    } else {
      // Subsampled chroma: ffmpeg's default rgb24 conversion upsamples chroma differently from libjpeg, so take
      // ffmpeg's decoded planes and convert them as libjpeg does (tests/reference/jpeg_color.ts).
      const planes = await ffmpegDecode(path, probe.pixFmt);
      const size = ours.width * ours.height;
      const planeBytes = size +
        2 * Math.ceil(ours.width / 2) * (probe.pixFmt === "yuvj420p" ? Math.ceil(ours.height / 2) : ours.height);
      assertEquals(planes.length, planeBytes * n);
      for (let i = 0; i < n; i++) {
        const rgb = fancyYcbcrToRgb(frame(planes, i, planeBytes), ours.width, ours.height, probe.pixFmt === "yuvj420p");
        worst = Math.min(worst, psnr(frame(ours.data, i, ours.frameBytes), rgb));
      }
    }
    console.log(`  ${name} (${probe.pixFmt}): worst frame ${worst.toFixed(2)} dB`);
    assert(worst >= 40, `${name}: worst frame PSNR ${worst.toFixed(2)} dB < 40`);
  });
}

for (const [name, codec] of Object.entries(UNSUPPORTED)) {
  Deno.test(`decode ${name}: ${codec} is a typed unsupported error naming the codec and the supported list`, async () => {
    const bytes = await read(name);
    const error = await assertRejects(() => decodeVideo(bytes), MediaError);
    assertEquals(error.code, "unsupported");
    assert(error.message.includes(codec) && error.message.includes("mjpeg"), error.message);
  });
}
