/**
 * Pixel paths against their oracles: YUV→RGB against ffmpeg's swscale (full-chroma path, flags below), the BICUBIC
 * resize and `preprocess` against Pillow (tests/oracles/pillow_resize.py, run here on generated images).
 */
import { assert, assertEquals, assertRejects } from "./util/assert.ts";
import { KernelError, loadKernels } from "../src/backend/wasm/loader.ts";
import { chromaSize, type ColorMatrix, type ColorRange, type Subsampling, yuvToRgb } from "../src/media/pixels.ts";
import { rng } from "./util/random.ts";

/** The swscale flags that make ffmpeg's YUV→RGB well defined: nearest chroma (replication), the full-chroma output
 * path with accurate rounding, and the C code (bitexact) rather than the table-driven fast path. */
const SWS_FLAGS = "neighbor+full_chroma_int+accurate_rnd+bitexact";

async function run(cmd: string, args: string[]): Promise<void> {
  const result = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!result.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(result.stderr)}`);
}

/** Random planes; `inGamut` keeps Y in 16..235 and chroma in 16..240 (what encoders of RGB sources emit). */
function randomYuv(width: number, height: number, subsampling: Subsampling, seed: number, inGamut: boolean) {
  const next = rng(seed);
  const [cw, ch] = chromaSize(width, height, subsampling);
  const fill = (n: number, lo: number, hi: number) =>
    Uint8Array.from({ length: n }, (_, i) =>
      // Half noise, half a smooth ramp, so both edges and flat areas are covered.
      i % 2 === 0 ? lo + Math.floor(next() * (hi - lo + 1)) : lo + ((i * 7) % (hi - lo + 1)));
  return {
    y: fill(width * height, inGamut ? 16 : 0, inGamut ? 235 : 255),
    u: fill(cw * ch, inGamut ? 16 : 0, inGamut ? 240 : 255),
    v: fill(cw * ch, inGamut ? 16 : 0, inGamut ? 240 : 255),
    width,
    height,
    subsampling,
  };
}

/**
 * ffmpeg's RGB24 for a frame. For odd sizes swscale resamples the ceil(w/2) chroma columns over w pixels instead of
 * replicating them, so the oracle is made on the frame padded to even size (last luma column/row repeated; the
 * chroma planes already cover it) and cropped back: every output pixel then sees exactly its own chroma sample.
 */
async function ffmpegRgb(
  dir: string,
  frame: ReturnType<typeof randomYuv>,
  matrix: ColorMatrix,
  range: ColorRange,
): Promise<Uint8Array> {
  const { width, height, subsampling } = frame;
  const pw = width + (width % 2), ph = height + (height % 2);
  const [cw, ch] = chromaSize(width, height, subsampling);
  const y = new Uint8Array(pw * ph);
  for (let r = 0; r < ph; r++) {
    for (let c = 0; c < pw; c++) y[r * pw + c] = frame.y[Math.min(r, height - 1) * width + Math.min(c, width - 1)];
  }
  // 4:4:4 chroma must be padded like luma; 4:2:x chroma has ceil sizes and already matches the even frame.
  const padChroma = (plane: Uint8Array) => {
    const [ew, eh] = chromaSize(pw, ph, subsampling);
    const out = new Uint8Array(ew * eh);
    for (let r = 0; r < eh; r++) {
      for (let c = 0; c < ew; c++) out[r * ew + c] = plane[Math.min(r, ch - 1) * cw + Math.min(c, cw - 1)];
    }
    return out;
  };
  const input = `${dir}/in.yuv`, output = `${dir}/out.rgb`;
  const u = padChroma(frame.u), v = padChroma(frame.v);
  const bytes = new Uint8Array(y.length + u.length + v.length);
  bytes.set(y);
  bytes.set(u, y.length);
  bytes.set(v, y.length + u.length);
  await Deno.writeFile(input, bytes);
  await run("ffmpeg", [
    ...["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", `yuv${subsampling}p`, "-s", `${pw}x${ph}`, "-i", input],
    ...["-vf", `scale=in_color_matrix=${matrix}:in_range=${range}:flags=${SWS_FLAGS}`],
    ...["-pix_fmt", "rgb24", "-f", "rawvideo", output],
  ]);
  const padded = await Deno.readFile(output);
  const out = new Uint8Array(width * height * 3);
  for (let r = 0; r < height; r++) out.set(padded.subarray(r * pw * 3, (r * pw + width) * 3), r * width * 3);
  return out;
}

for (const subsampling of ["420", "422", "444"] as const) {
  for (const matrix of ["bt601", "bt709"] as const) {
    for (const range of ["limited", "full"] as const) {
      Deno.test(`yuvToRgb ${subsampling} ${matrix} ${range}: equals ffmpeg (${SWS_FLAGS}), odd and even sizes`, async () => {
        const kernels = await loadKernels();
        const dir = await Deno.makeTempDir({ prefix: "ppl-yuv-" });
        try {
          for (
            const [width, height, inGamut] of [[37, 23, true], [36, 22, true], [1, 1, true], [37, 23, false]] as const
          ) {
            const frame = randomYuv(width, height, subsampling, width * 31 + height, inGamut);
            const ours = await yuvToRgb(frame, { matrix, range, kernels });
            const theirs = await ffmpegRgb(dir, frame, matrix, range);
            let wraps = 0;
            for (let i = 0; i < ours.length; i++) {
              if (ours[i] === theirs[i]) continue;
              // swscale's one deviation: its 32-bit sum wraps for out-of-gamut limited-range input and writes 0
              // where the colour saturates (kernels-rs/media/src/yuv.rs); anything else is a failure.
              const wrap = !inGamut && range === "limited" && ours[i] === 255 && theirs[i] === 0;
              assert(wrap, `${width}x${height} byte ${i}: ours ${ours[i]}, ffmpeg ${theirs[i]}`);
              wraps++;
            }
            assert(wraps <= ours.length / 50, `${wraps} wrapped channels is more than out-of-gamut noise explains`);
            if (inGamut || range === "full") assertEquals(wraps, 0);
          }
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      });
    }
  }
}

Deno.test("yuvToRgb: default is BT.601 limited; short planes and bad sizes are typed errors", async () => {
  const kernels = await loadKernels();
  const frame = randomYuv(5, 3, "420", 7, true);
  assertEquals(
    await yuvToRgb(frame, { kernels }),
    await yuvToRgb(frame, { kernels, matrix: "bt601", range: "limited" }),
  );
  const short = { ...frame, u: frame.u.subarray(1) };
  const error = await assertRejects(() => yuvToRgb(short, { kernels }), KernelError, "U plane");
  assertEquals(error.code, "bad_shape");
  assertEquals(
    (await assertRejects(() => yuvToRgb({ ...frame, width: 0 }, { kernels }), KernelError)).code,
    "bad_shape",
  );
  assertEquals(
    (await assertRejects(() => yuvToRgb({ ...frame, yStride: 2 }, { kernels }), KernelError)).code,
    "bad_argument",
  );
  const bad = { ...frame, subsampling: "411" as Subsampling };
  assertEquals((await assertRejects(() => yuvToRgb(bad, { kernels }), KernelError)).code, "bad_argument");
});
