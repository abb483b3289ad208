/**
 * Fuzzing the demuxers and decoders: real inputs of every container (tests/oracles/make_media.sh), mutated by bit
 * flips, byte stores, truncation, length-field corruption and splices. Every case must end in frames or a typed
 * MediaError: no trap, no other exception, no case slower than the time limit, memory under the cap.
 * FUZZ_CASES (default 20,000) sets the count; bench/ runs it longer.
 */
import { assert } from "./util/assert.ts";
import { mediaFiles } from "./util/media_fixtures.ts";
import { rng } from "./util/random.ts";
import { KernelError, WasmKernels } from "../src/backend/wasm/loader.ts";
import { readPackageFile } from "../src/util/files.ts";
import { MediaError } from "../src/media/errors.ts";
import { openVideoWith } from "../src/media/video.ts";
import { sampleFrames } from "../src/media/sampling.ts";

const CASES = Number(Deno.env.get("FUZZ_CASES") ?? 20_000);
const CASE_TIME_LIMIT_MS = 2_000;
/** FUZZ_TRACE=FILE appends each case's name before it runs, to find a case that hangs. */
const TRACE = Deno.env.get("FUZZ_TRACE");
const MEMORY_CAP_BYTES = 512 << 20;
const LIMITS = { maxPixelsPerFrame: 4096 * 4096, maxFrames: 100_000, maxDecodedBytes: 64 << 20, maxDurationS: 1e6 };

type Mutation = (data: Uint8Array, random: () => number) => Uint8Array;

const int = (random: () => number, n: number) => Math.floor(random() * n);

const MUTATIONS: Record<string, Mutation> = {
  bitflips: (data, random) => {
    const out = data.slice();
    for (let k = 1 + int(random, 8); k > 0; k--) out[int(random, out.length)] ^= 1 << int(random, 8);
    return out;
  },
  bytes: (data, random) => {
    const out = data.slice();
    const values = [0, 0xff, 0x7f, 0x80, 1];
    for (let k = 1 + int(random, 4); k > 0; k--) out[int(random, out.length)] = values[int(random, values.length)];
    return out;
  },
  truncate: (data, random) => data.slice(0, int(random, data.length)),
  // A 32-bit length or count field (box size, chunk size, table count) set to an extreme, mostly in the headers.
  length: (data, random) => {
    const out = data.slice();
    const head = random() < 0.7 ? Math.min(out.length, 4096) : out.length;
    const at = int(random, Math.max(1, head - 4));
    const values = [0xffffffff, 0x7fffffff, 0x80000000, 0, 1, 8, 0x10000, int(random, 2 ** 32)];
    const view = new DataView(out.buffer);
    if (at + 4 <= out.length) view.setUint32(at, values[int(random, values.length)], random() < 0.5);
    return out;
  },
  splice: (data, random) => {
    const a = int(random, data.length), b = int(random, data.length);
    const [from, to] = a < b ? [a, b] : [b, a];
    return random() < 0.5
      ? new Uint8Array([...data.subarray(0, from), ...data.subarray(to)]) // delete a span
      : new Uint8Array([...data.subarray(0, to), ...data.subarray(from, to), ...data.subarray(to)]); // repeat it
  },
};

Deno.test(`media fuzz: ${CASES} mutated inputs of every container end in frames or a typed error`, async () => {
  const files = await mediaFiles();
  const inputs = await Promise.all(files.map((f) => Deno.readFile(f)));
  const wasm = await readPackageFile("wasm/ppllava_kernels.wasm");
  let kernels = await WasmKernels.instantiate(wasm);
  const names = Object.keys(MUTATIONS);
  const outcomes: Record<string, number> = {};
  const failures: string[] = [];
  let slowest = 0;
  const started = performance.now();
  for (let c = 0; c < CASES; c++) {
    const random = rng(1000 + c);
    const file = c % inputs.length;
    const mutation = names[int(random, names.length)];
    const data = MUTATIONS[mutation](inputs[file], random);
    const where = `case ${c} (${files[file].split("/").pop()}, ${mutation})`;
    const t0 = performance.now();
    if (TRACE) Deno.writeTextFileSync(TRACE, `${where}\n`, { append: true });
    let outcome: string;
    try {
      const video = openVideoWith(kernels, data, LIMITS);
      try {
        if (video.decodable) {
          const indices = sampleFrames(video, { numFrames: 2 });
          const frames = video.decodeFrames(indices);
          assert(frames.data.length === frames.frameBytes * 2);
        }
        outcome = "frames";
      } finally {
        video.close();
      }
    } catch (error) {
      if (error instanceof MediaError) {
        outcome = error.code;
      } else {
        outcome = error instanceof KernelError ? `kernel:${error.code}` : "exception";
        failures.push(`${where}: ${String(error)}`);
        if (error instanceof KernelError && error.code === "trap") kernels = await WasmKernels.instantiate(wasm);
      }
    }
    const ms = performance.now() - t0;
    slowest = Math.max(slowest, ms);
    if (ms > CASE_TIME_LIMIT_MS) failures.push(`${where}: took ${ms.toFixed(0)} ms`);
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `  ${CASES} cases in ${seconds.toFixed(1)} s, slowest ${slowest.toFixed(1)} ms, memory ${
      (kernels.memoryBytes / 2 ** 20).toFixed(1)
    } MiB; outcomes ${JSON.stringify(outcomes)}`,
  );
  assert(failures.length === 0, `${failures.length} failures:\n${failures.slice(0, 20).join("\n")}`);
  assert(kernels.memoryBytes <= MEMORY_CAP_BYTES, `module memory grew to ${kernels.memoryBytes} bytes`);
  // No leak: after the fuzz run, opening, decoding and closing a valid input many times must not grow memory.
  const before = kernels.memoryBytes;
  for (let k = 0; k < 300; k++) {
    const video = openVideoWith(kernels, inputs[k % inputs.length], LIMITS);
    if (video.decodable) video.decodeFrames([0, video.frameCount - 1]);
    video.close();
  }
  assert(kernels.memoryBytes === before, `memory grew from ${before} to ${kernels.memoryBytes} bytes on valid inputs`);
  assert((outcomes.frames ?? 0) > CASES / 20, "too few cases decoded: the mutations are not exercising the decoders");
});
