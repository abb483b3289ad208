/**
 * Frame sampling (spec §3.1) against PPLLaVA's own NumPy get_index (tests/oracles/sample_indices.py), the fps and
 * keyframe modes, sampled decoding end to end, pixel formats, image sequences, limits and sniffing errors.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "./util/assert.ts";
import { ffmpegDecode, ffprobeKeyframes, mediaDir, run } from "./util/media_fixtures.ts";
import { rng } from "./util/random.ts";
import { MediaError } from "../src/media/errors.ts";
import { decodeImageSequence, decodeVideo, openVideo } from "../src/media/video.ts";
import { roundHalfEven, sampleFrames } from "../src/media/sampling.ts";

interface Case {
  frameCount: number;
  fps: number;
  numFrames: number;
  start?: number;
  end?: number;
}

async function oracle(cases: Case[]): Promise<number[][]> {
  const out = await run("/usr/bin/python3", ["tests/oracles/sample_indices.py"], JSON.stringify(cases));
  return JSON.parse(new TextDecoder().decode(out));
}

Deno.test("sampleFrames: segment midpoints equal PPLLaVA's NumPy get_index on 400 cases, with and without bounds", async () => {
  const random = rng(31);
  const cases: Case[] = [
    { frameCount: 30, fps: 25, numFrames: 32 },
    { frameCount: 64, fps: 30, numFrames: 32 },
    { frameCount: 65, fps: 30, numFrames: 32 }, // seg·i lands on halves: half-to-even matters
    { frameCount: 97, fps: 24, numFrames: 64 },
    { frameCount: 1, fps: 25, numFrames: 8 },
  ];
  for (let k = 0; k < 395; k++) {
    const frameCount = 1 + Math.floor(random() * 2000);
    const fps = [25, 30, 24, 30000 / 1001, 12.5, 60][Math.floor(random() * 6)];
    const numFrames = [1, 8, 16, 32, 64, 96][Math.floor(random() * 6)];
    const c: Case = { frameCount, fps, numFrames };
    if (k % 2 === 0) {
      const duration = frameCount / fps;
      c.start = Math.round(random() * duration * 50) / 100;
      c.end = c.start + Math.round(random() * duration * 100) / 100 + 0.02;
    }
    cases.push(c);
  }
  const expected = await oracle(cases);
  cases.forEach((c, i) => {
    const ours = sampleFrames({ frameCount: c.frameCount, fps: c.fps }, {
      numFrames: c.numFrames,
      start: c.start,
      end: c.end,
    });
    assertEquals(ours, expected[i], `case ${JSON.stringify(c)}`);
  });
});

Deno.test("roundHalfEven: NumPy's rounding of halves", () => {
  assertEquals([0.5, 1.5, 2.5, 3.5, 2.4, 2.6, 7].map(roundHalfEven), [0, 2, 2, 4, 2, 3, 7]);
});

Deno.test("sampleFrames: fps mode takes the frame shown at each tick, and falls back to maxFrames midpoints", () => {
  const info = { frameCount: 30, fps: 25 };
  assertEquals(sampleFrames(info, { fps: 5 }), [0, 5, 10, 15, 20, 25]);
  assertEquals(sampleFrames(info, { fps: 5, maxFrames: 4 }), sampleFrames(info, { numFrames: 4 }));
  // Variable frame rate: ticks follow presentation times, not indices.
  const ptsS = [0, 0.04, 0.16, 0.36, 0.64, 1.0];
  assertEquals(sampleFrames({ frameCount: 6, fps: 6, ptsS }, { fps: 4 }), [0, 2, 3, 4, 5]);
});

Deno.test("sampleFrames: keyframe snap picks the nearest keyframe (earlier on ties), from real stss keyframes", async () => {
  const path = `${await mediaDir()}/h264.mp4`;
  const video = await openVideo(await Deno.readFile(path));
  try {
    assertEquals(video.keyframes, await ffprobeKeyframes(path));
    const plain = sampleFrames(video, { numFrames: 6 });
    const snapped = sampleFrames(video, { numFrames: 6, keyframes: true });
    plain.forEach((index, k) => {
      const best = Math.min(...video.keyframes.map((key) => Math.abs(key - index)));
      const nearest = video.keyframes.find((key) => Math.abs(key - index) === best);
      assertEquals(snapped[k], nearest);
    });
  } finally {
    video.close();
  }
});

Deno.test("sampleFrames: bad options are bad_argument errors", () => {
  const info = { frameCount: 10, fps: 25 };
  for (const options of [{ numFrames: 0 }, { fps: -1 }, { start: -2 }, { start: 5, end: 1 }, { numFrames: NaN }]) {
    assertEquals(assertThrows(() => sampleFrames(info, options), MediaError).code, "bad_argument");
  }
});

Deno.test("decodeVideo: 8 sampled frames are the oracle's indices and equal those frames of a full decode", async () => {
  const bytes = await Deno.readFile(`${await mediaDir()}/mjpeg.avi`);
  const all = await decodeVideo(bytes, { all: true });
  const [expected] = await oracle([{
    frameCount: all.info.frameCount,
    fps: all.info.fps,
    numFrames: 8,
    start: 0.1,
    end: 0.9,
  }]);
  const sampled = await decodeVideo(bytes, { numFrames: 8, start: 0.1, end: 0.9 });
  assertEquals(sampled.indices, expected);
  assertEquals(sampled.ptsS, expected.map((i) => all.info.ptsS[i]));
  expected.forEach((index, k) => {
    const a = sampled.data.subarray(k * sampled.frameBytes, (k + 1) * sampled.frameBytes);
    const b = all.data.subarray(index * all.frameBytes, (index + 1) * all.frameBytes);
    assert(a.every((v, i) => v === b[i]), `frame ${index} differs from the full decode`);
  });
});

Deno.test("decodeVideo: yuv420p from 4:2:0 Y4M is ffmpeg's planes byte for byte", async () => {
  const path = `${await mediaDir()}/yuv420.y4m`;
  const ours = await decodeVideo(await Deno.readFile(path), { all: true, pixFmt: "yuv420p" });
  const theirs = await ffmpegDecode(path, "yuv420p");
  assertEquals(ours.data.length, theirs.length);
  assert(ours.data.every((v, i) => v === theirs[i]));
});

Deno.test("decodeImageSequence: a list of stills is a video; a size mismatch is a bad_argument", async () => {
  const dir = await mediaDir();
  const png = await Deno.readFile(`${dir}/still.png`);
  const jpg = await Deno.readFile(`${dir}/still.jpg`);
  const gif = await Deno.readFile(`${dir}/still.gif`);
  const sequence = await decodeImageSequence([png, jpg, gif, png], { numFrames: 2, sequenceFps: 2 });
  assertEquals(sequence.indices, sampleFrames({ frameCount: 4, fps: 2 }, { numFrames: 2 }));
  const single = await decodeVideo(sequence.indices[0] === 0 ? png : jpg, { all: true });
  assert(sequence.data.subarray(0, sequence.frameBytes).every((v, i) => v === single.data[i]));
  const other = await Deno.readFile(`${dir}/yuv420.y4m`);
  const error = await assertRejects(() => decodeImageSequence([png, other], { all: true }), MediaError);
  assertEquals(error.code, "bad_argument");
});

Deno.test("limits: bytes, pixels, frames, duration and decoded memory are typed limit errors", async () => {
  const bytes = await Deno.readFile(`${await mediaDir()}/mjpeg.mp4`);
  const cases = [
    { maxInputBytes: 1000 },
    { maxPixelsPerFrame: 97 * 55 - 1 },
    { maxFrames: 29 },
    { maxDurationS: 1 },
    { maxDecodedBytes: 97 * 55 * 3 * 2 },
  ];
  for (const limits of cases) {
    const error = await assertRejects(() => decodeVideo(bytes, { limits, numFrames: 4 }), MediaError);
    assertEquals(error.code, "limit", `${JSON.stringify(limits)}: ${error.message}`);
  }
  const ok = await decodeVideo(bytes, { limits: { maxFrames: 30, maxDurationS: 1.2 }, numFrames: 4 });
  assertEquals(ok.indices.length, 4);
});

Deno.test("sniffing is by content: unknown bytes are invalid_data, known foreign containers unsupported", async () => {
  const garbage = await assertRejects(() => openVideo(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])), MediaError);
  assertEquals(garbage.code, "invalid_data");
  const ts = new Uint8Array(188 * 3);
  ts[0] = ts[188] = ts[376] = 0x47;
  const unsupported = await assertRejects(() => openVideo(ts), MediaError);
  assertEquals(unsupported.code, "unsupported");
  assert(unsupported.message.includes("MPEG transport stream"), unsupported.message);
  const empty = await assertRejects(() => openVideo(new Uint8Array()), MediaError);
  assertEquals(empty.code, "invalid_data");
});

Deno.test("refused cleanly: decompression bombs and sample tables pointing past the end", async () => {
  // A PNG and a GIF that declare 100000×100000 and 65535×65535 pixels in a few bytes.
  const png = await Deno.readFile(`${await mediaDir()}/still.png`);
  const bigPng = png.slice();
  new DataView(bigPng.buffer).setUint32(16, 100_000);
  new DataView(bigPng.buffer).setUint32(20, 100_000);
  const gif = (await Deno.readFile(`${await mediaDir()}/still.gif`)).slice();
  gif.set([0xff, 0xff, 0xff, 0xff], 6);
  for (const bytes of [bigPng, gif]) {
    const error = await assertRejects(() => decodeVideo(bytes, { all: true }), MediaError);
    assertEquals(error.code, "limit", error.message);
  }
  // The first chunk offset of mjpeg.mp4's stco moved past the end of the file.
  const mp4 = (await Deno.readFile(`${await mediaDir()}/mjpeg.mp4`)).slice();
  const stco = mp4.findIndex((_, i) => String.fromCharCode(...mp4.subarray(i, i + 4)) === "stco");
  assert(stco > 0);
  new DataView(mp4.buffer).setUint32(stco + 12, mp4.length);
  const error = await assertRejects(() => openVideo(mp4), MediaError);
  assertEquals(error.code, "invalid_data");
  assert(error.message.includes("past the end"), error.message);
});

Deno.test("Y4M XCOLORRANGE=FULL is read as the declared range", async () => {
  const video = await openVideo(await Deno.readFile(`${await mediaDir()}/yuv444_full.y4m`));
  assertEquals([video.matrix, video.range], ["unspecified", "full"]);
  video.close();
});

Deno.test("packet table and codec configuration: avcC from MP4, CodecPrivate from Matroska, offsets of real packets", async () => {
  const dir = await mediaDir();
  for (const name of ["h264.mp4", "h264.mkv"]) {
    const bytes = await Deno.readFile(`${dir}/${name}`);
    const video = await openVideo(bytes);
    try {
      // An AVCDecoderConfigurationRecord starts with version 1 and the SPS's profile (High = 100 for libx264).
      assert(video.codecConfig !== null && video.codecConfig[0] === 1 && video.codecConfig[1] === 100, name);
      // Each packet is length-prefixed NAL units that exactly fill it (4-byte lengths, as libx264 writes).
      for (let i = 0; i < video.frameCount; i++) {
        let at = video.packetOffsets[i];
        const end = at + video.packetSizes[i];
        while (at < end) at += 4 + new DataView(bytes.buffer, at, 4).getUint32(0);
        assertEquals(at, end, `${name} packet ${i}`);
      }
      assertEquals([...video.decodeOrder].sort((a, b) => a - b), [...video.decodeOrder.keys()]);
    } finally {
      video.close();
    }
  }
});
