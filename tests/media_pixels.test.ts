/**
 * Pixel paths against their oracles: YUV→RGB against ffmpeg's swscale (full-chroma path, flags below), the BICUBIC
 * resize and `preprocess` against Pillow (tests/oracles/pillow_resize.py, run here on generated images).
 */
import { assert, assertEquals, assertRejects } from "./util/assert.ts";
import { KernelError, loadKernels } from "../src/backend/wasm/loader.ts";
import { chromaSize, type ColorMatrix, type ColorRange, type Subsampling, yuvToRgb } from "../src/media/pixels.ts";
import {
  frameSize,
  preprocess,
  preprocessCanvas,
  type PreprocessVariant,
  preprocessWith,
  resizeRgb,
  resizeRgbWith,
} from "../src/media/preprocess.ts";
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

/** Odd and even sizes, widths below and above the 16-pixel SIMD groups, in-gamut and full-range noise. */
const YUV_SIZES: [width: number, height: number, inGamut: boolean][] = [
  [37, 23, true],
  [36, 22, true],
  [1, 1, true],
  [37, 23, false],
  [95, 9, false],
  [640, 360, true],
];

for (const subsampling of ["420", "422", "444"] as const) {
  for (const matrix of ["bt601", "bt709"] as const) {
    for (const range of ["limited", "full"] as const) {
      Deno.test(`yuvToRgb ${subsampling} ${matrix} ${range}: equals ffmpeg (${SWS_FLAGS}), odd and even sizes`, async () => {
        const kernels = await loadKernels();
        const dir = await Deno.makeTempDir({ prefix: "ppl-yuv-" });
        try {
          for (const [width, height, inGamut] of YUV_SIZES) {
            const frame = randomYuv(width, height, subsampling, width * 31 + height, inGamut);
            const ours = await yuvToRgb(frame, { matrix, range, kernels });
            const theirs = await ffmpegRgb(dir, frame, matrix, range);
            assertEquals(await yuvToRgb(frame, { matrix, range, kernels, simd: false }), ours, "scalar twin ≠ SIMD");
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

// ---- BICUBIC resize and preprocess against Pillow (tests/oracles/pillow_resize.py) ----

const PYTHON = "/usr/bin/python3";
const ORACLE = new URL("./oracles/pillow_resize.py", import.meta.url).pathname;

/** Test images: seeded noise, or gradients with hard edges (ringing and clipping of the cubic's negative lobes). */
function image(width: number, height: number, kind: "noise" | "gradient", seed: number): Uint8Array {
  const next = rng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      if (kind === "noise") {
        data[i] = next() * 256;
        data[i + 1] = next() * 256;
        data[i + 2] = next() * 256;
      } else {
        data[i] = Math.floor((255 * x) / Math.max(1, width - 1));
        data[i + 1] = Math.floor((255 * y) / Math.max(1, height - 1));
        data[i + 2] = ((x >> 2) + (y >> 2)) % 2 === 0 ? 0 : 255;
      }
    }
  }
  return data;
}

interface ResizeCase {
  label: string;
  width: number;
  height: number;
  kind: "noise" | "gradient";
  op: "resize" | "vicuna" | "qwen";
  outWidth?: number;
  outHeight?: number;
  /** vicuna/qwen: the output side (default 336 / 384). */
  size?: number;
}

const RESIZE_CASES: ResizeCase[] = [
  {
    label: "upscale 37x23 → 336x336",
    width: 37,
    height: 23,
    kind: "noise",
    op: "resize",
    outWidth: 336,
    outHeight: 336,
  },
  {
    label: "downscale 1280x720 → 336x336",
    width: 1280,
    height: 720,
    kind: "gradient",
    op: "resize",
    outWidth: 336,
    outHeight: 336,
  },
  {
    label: "downscale noise 641x479 → 336x336",
    width: 641,
    height: 479,
    kind: "noise",
    op: "resize",
    outWidth: 336,
    outHeight: 336,
  },
  {
    label: "mixed 333x777 → 101x1001",
    width: 333,
    height: 777,
    kind: "noise",
    op: "resize",
    outWidth: 101,
    outHeight: 1001,
  },
  { label: "1xN 1x50 → 336x336", width: 1, height: 50, kind: "noise", op: "resize", outWidth: 336, outHeight: 336 },
  { label: "Nx1 50x1 → 7x3", width: 50, height: 1, kind: "noise", op: "resize", outWidth: 7, outHeight: 3 },
  {
    label: "extreme 1000x7 → 336x336",
    width: 1000,
    height: 7,
    kind: "gradient",
    op: "resize",
    outWidth: 336,
    outHeight: 336,
  },
  { label: "extreme 7x1000 → 3x384", width: 7, height: 1000, kind: "noise", op: "resize", outWidth: 3, outHeight: 384 },
  { label: "to 1x1 from 2x2", width: 2, height: 2, kind: "noise", op: "resize", outWidth: 1, outHeight: 1 },
  {
    label: "width only 401x50 → 17x50",
    width: 401,
    height: 50,
    kind: "noise",
    op: "resize",
    outWidth: 17,
    outHeight: 50,
  },
  {
    label: "height only 50x401 → 50x17",
    width: 50,
    height: 401,
    kind: "noise",
    op: "resize",
    outWidth: 50,
    outHeight: 17,
  },
  { label: "vicuna 1280x720", width: 1280, height: 720, kind: "noise", op: "vicuna" },
  { label: "vicuna 336x336 (identity)", width: 336, height: 336, kind: "noise", op: "vicuna" },
  { label: "vicuna 99x1001", width: 99, height: 1001, kind: "gradient", op: "vicuna" },
  { label: "qwen 1280x720 letterbox", width: 1280, height: 720, kind: "gradient", op: "qwen" },
  { label: "qwen 480x641 letterbox", width: 480, height: 641, kind: "noise", op: "qwen" },
  { label: "qwen 1000x7 letterbox", width: 1000, height: 7, kind: "noise", op: "qwen" },
  { label: "qwen 1x1000 letterbox", width: 1, height: 1000, kind: "gradient", op: "qwen" },
  { label: "qwen 100x100 upscale", width: 100, height: 100, kind: "noise", op: "qwen" },
  // A model's vision_config.image_size sets the side (the small checkpoints use 84).
  { label: "vicuna 320x240 at side 84", width: 320, height: 240, kind: "noise", op: "vicuna", size: 84 },
  { label: "qwen 320x240 at side 97", width: 320, height: 240, kind: "gradient", op: "qwen", size: 97 },
];

/** A seeded sweep: sides 1..300, up and down, an axis left unchanged now and then, and Qwen letterboxes. */
function addSweep(count: number, seed: number): void {
  const next = rng(seed);
  const side = () => 1 + Math.floor(next() * 300);
  for (let i = 0; i < count; i++) {
    const width = side(), height = side();
    const kind = i % 2 ? "noise" : "gradient";
    if (i % 5 === 4) {
      RESIZE_CASES.push({ label: `sweep ${i}: qwen ${width}x${height}`, width, height, kind, op: "qwen" });
      continue;
    }
    const outWidth = next() < 0.15 ? width : side();
    const outHeight = next() < 0.15 ? height : side();
    const label = `sweep ${i}: ${width}x${height} → ${outWidth}x${outHeight}`;
    RESIZE_CASES.push({ label, width, height, kind, op: "resize", outWidth, outHeight });
  }
}
addSweep(40, 4242);

interface OracleResult {
  input: Uint8Array;
  pixels: Uint8Array;
  normalized?: Float32Array;
}

let oracleRun: Promise<OracleResult[]> | null = null;

/** Runs Pillow once for every case (one Python process) and keeps its outputs in memory. */
function oracle(): Promise<OracleResult[]> {
  oracleRun ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "ppl-resize-" });
    try {
      const inputs = RESIZE_CASES.map((c, i) => image(c.width, c.height, c.kind, 100 + i));
      const jobs = RESIZE_CASES.map((c, i) => ({
        op: c.op,
        input: `in${i}.rgb`,
        width: c.width,
        height: c.height,
        outWidth: c.outWidth,
        outHeight: c.outHeight,
        size: c.size,
        output: `out${i}.rgb`,
        normalized: `norm${i}.f32`,
      }));
      for (const [i, data] of inputs.entries()) await Deno.writeFile(`${dir}/in${i}.rgb`, data);
      await Deno.writeTextFile(`${dir}/jobs.json`, JSON.stringify(jobs));
      await run(PYTHON, [ORACLE, "jobs", dir]);
      return await Promise.all(RESIZE_CASES.map(async (c, i) => ({
        input: inputs[i],
        pixels: await Deno.readFile(`${dir}/out${i}.rgb`),
        normalized: c.op === "resize"
          ? undefined
          : new Float32Array((await Deno.readFile(`${dir}/norm${i}.f32`)).buffer),
      })));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
  return oracleRun;
}

/** Bytes that differ from Pillow: [count off by exactly 1, count off by more]. */
function compareBytes(ours: Uint8Array, pillow: Uint8Array): [number, number] {
  assertEquals(ours.length, pillow.length);
  let one = 0, more = 0;
  for (let i = 0; i < ours.length; i++) {
    const d = Math.abs(ours[i] - pillow[i]);
    if (d === 1) one++;
    else if (d > 1) more++;
  }
  return [one, more];
}

for (const [index, c] of RESIZE_CASES.entries()) {
  Deno.test(`resize vs Pillow BICUBIC: ${c.label} (SIMD and scalar)`, async () => {
    const kernels = await loadKernels();
    const { input, pixels, normalized } = (await oracle())[index];
    const frame = { data: input, width: c.width, height: c.height };
    for (const simd of [true, false]) {
      const ours = c.op === "resize"
        ? resizeRgbWith(kernels, input, c.width, c.height, c.outWidth!, c.outHeight!, { simd })
        : await preprocessCanvas(frame, c.op, { simd, kernels, size: c.size });
      const [one, more] = compareBytes(ours, pixels);
      // Pillow-exact is the goal and what the kernel achieves; the bar is ±1, reported here.
      assertEquals(more, 0, `${more} bytes differ from Pillow by more than 1 (simd=${simd})`);
      assertEquals(one, 0, `${one} of ${ours.length} bytes differ from Pillow by 1 (simd=${simd})`);
      if (normalized) {
        const tensor = preprocessWith(kernels, [frame], { variant: c.op as PreprocessVariant, simd, size: c.size });
        const size = c.size ?? frameSize(c.op as PreprocessVariant);
        assertEquals(tensor.shape, [1, 3, size, size]);
        let worst = 0;
        for (let i = 0; i < normalized.length; i++) worst = Math.max(worst, Math.abs(tensor.data[i] - normalized[i]));
        assert(worst <= 1e-6, `normalised values differ from (pillow/255 − mean)/std by ${worst}`);
      }
    }
  });
}

Deno.test("preprocess: T frames of different sizes stack into (T, 3, S, S); Qwen padding is −1", async () => {
  const kernels = await loadKernels();
  const frames = [
    { data: image(64, 48, "noise", 1), width: 64, height: 48 },
    { data: image(30, 90, "gradient", 2), width: 30, height: 90 },
    { data: new Uint8Array(16 * 4 * 3).fill(255), width: 16, height: 4 },
  ];
  const vicuna = await preprocess(frames, { variant: "vicuna", kernels });
  assertEquals(vicuna.shape, [3, 3, 336, 336]);
  assertEquals(vicuna.data.length, 3 * 3 * 336 * 336);
  // Each frame's slice equals that frame preprocessed alone.
  const second = await preprocess([frames[1]], { variant: "vicuna", kernels });
  assertEquals(vicuna.data.subarray(3 * 336 * 336, 6 * 336 * 336), second.data);
  const qwen = await preprocess(frames, { variant: "qwen", kernels, simd: false });
  assertEquals(qwen.shape, [3, 3, 384, 384]);
  const plane = 384 * 384, third = 2 * 3 * plane;
  // 16x4 → 384x96 centred at rows 144..239: row 0 is black padding (−1), the centre is white (+1).
  assertEquals(qwen.data[third], -1);
  assertEquals(qwen.data[third + 192 * 384 + 192], 1);
  assertEquals(qwen.data[third + 143 * 384 + 10], -1);
  assertEquals(qwen.data[third + 144 * 384 + 10], 1);
});

Deno.test("resize and preprocess: bad sizes and lengths are typed errors", async () => {
  const kernels = await loadKernels();
  const rgb = new Uint8Array(12);
  const codes = async (fn: () => Promise<unknown>) => (await assertRejects(fn, KernelError)).code;
  assertEquals(await codes(() => resizeRgb(rgb, 2, 3, 4, 4, { kernels })), "bad_shape");
  assertEquals(await codes(() => resizeRgb(rgb, 2, 2, 0, 4, { kernels })), "bad_shape");
  assertEquals(await codes(() => resizeRgb(rgb, 2, 2, 4.5, 4, { kernels })), "bad_shape");
  assertEquals(await codes(() => preprocess([], { variant: "vicuna", kernels })), "bad_shape");
  assertEquals(
    await codes(() => preprocess([{ data: rgb, width: 5, height: 1 }], { variant: "qwen", kernels })),
    "bad_shape",
  );
  assertEquals(
    await codes(() =>
      preprocess([{ data: rgb, width: 2, height: 2 }], { variant: "other" as PreprocessVariant, kernels })
    ),
    "bad_argument",
  );
  // Past the TS checks, the kernel's own limits: a side over 65536, and an intermediate over 256 MiB.
  const tall = new Uint8Array(70000 * 3);
  assertEquals(await codes(() => resizeRgb(tall, 1, 70000, 1, 1, { kernels })), "limit");
  const column = new Uint8Array(60000 * 3);
  assertEquals(await codes(() => resizeRgb(column, 1, 60000, 2000, 2, { kernels })), "limit");
});
