/**
 * Resize of 32 frames of 1280×720 RGB24 to 336×336 with BICUBIC (the Vicuna frame path before normalisation):
 * WASM SIMD against its scalar twin and Pillow (Debian's, one Python process timing its own loop, start-up and
 * frame generation excluded). Outputs are byte-identical to Pillow (tests/media_pixels.test.ts).
 */
import { runBench } from "./harness.ts";
import { loadKernels } from "../src/backend/wasm/loader.ts";
import { preprocessWith, resizeRgbWith } from "../src/media/preprocess.ts";
import { rng } from "../tests/util/random.ts";

const FRAMES = 32, WIDTH = 1280, HEIGHT = 720, SIZE = 336;
const ORACLE = new URL("../tests/oracles/pillow_resize.py", import.meta.url).pathname;

async function pillow(): Promise<{ seconds: number }> {
  const args = [ORACLE, "bench", String(WIDTH), String(HEIGHT), String(SIZE), String(SIZE), String(FRAMES)];
  const result = await new Deno.Command("/usr/bin/python3", { args, stdout: "piped", stderr: "piped" }).output();
  if (!result.success) throw new Error(`pillow bench failed: ${new TextDecoder().decode(result.stderr)}`);
  return JSON.parse(new TextDecoder().decode(result.stdout));
}

export async function main(): Promise<void> {
  const kernels = await loadKernels();
  const next = rng(7);
  const frames = Array.from({ length: FRAMES }, () => {
    const data = new Uint8Array(WIDTH * HEIGHT * 3);
    for (let i = 0; i < data.length; i++) data[i] = next() * 256;
    return data;
  });
  const rgbFrames = frames.map((data) => ({ data, width: WIDTH, height: HEIGHT }));
  const resizeAll = (simd: boolean) => () => {
    for (const frame of frames) resizeRgbWith(kernels, frame, WIDTH, HEIGHT, SIZE, SIZE, { simd });
  };
  await runBench({
    name: "resize",
    cases: [
      { label: "wasm simd", run: resizeAll(true) },
      { label: "wasm scalar", run: resizeAll(false) },
      {
        label: "wasm simd, whole vicuna preprocess (+ /255, mean/std, CHW f32)",
        run: () => preprocessWith(kernels, rgbFrames, { variant: "vicuna" }),
      },
      { label: "pillow 9.4 (python, internal timing)", run: pillow },
    ],
    reps: 5,
    work: { amount: FRAMES, unit: "frame" },
    notes: {
      frames: FRAMES,
      from: `${WIDTH}x${HEIGHT}`,
      to: `${SIZE}x${SIZE}`,
      filter: "BICUBIC",
      simd: kernels.hasSimd,
    },
  });
}

if (import.meta.main) await main();
