/**
 * Experiment for issue 6 (decode speed), not a runtime path: is relaxed SIMD's 8-bit dot worth a kernel? Assembles
 * bench/relaxed_simd/q4_dot.wat (binaryen's wasm-as, from scripts/setup's packages) and times one 4096 × 4096 q4
 * matrix–vector product (8 MiB of codes): the runtime's own decode product (`linear` of the WASM backend on q4
 * weights: kernels-rs dot4_decode, 4 rows per pass, activation quantisation included); the same 4-row form written with
 * `i32x4.relaxed_dot_i8x16_i7x16_add_s`; and a 1-row pair (relaxed, and the SIMD128 dot_i16x8 form) called per row.
 * Every hand-written kernel must match a float64 sum of the same integer products.
 * Debian's binaryen (108) writes the pre-standard opcode 0x114 for this instruction; the standard one is 0x113, which
 * the bytes get before validation. A runtime without relaxed SIMD (Node 20 without a flag) reports that and stops.
 */
import { runBench } from "./harness.ts";
import { createWasmBackend } from "../src/backend/wasm/backend.ts";
import { gaussian } from "../tests/util/random.ts";

const K = 4096;
const GROUPS = K / 32;
const ROWS = 4096;

async function assemble(): Promise<Uint8Array<ArrayBuffer>> {
  const wat = new URL("./relaxed_simd/q4_dot.wat", import.meta.url).pathname;
  const out = await Deno.makeTempFile({ suffix: ".wasm" });
  const command = new Deno.Command("wasm-as", { args: ["--enable-simd", "--enable-relaxed-simd", wat, "-o", out] });
  const run = await command.output().catch((e) => {
    throw new Error(`relaxed_simd: wasm-as (binaryen, which scripts/setup installs) could not run: ${e}`);
  });
  if (!run.success) throw new Error(`wasm-as failed: ${new TextDecoder().decode(run.stderr)}`);
  const bytes = await Deno.readFile(out);
  await Deno.remove(out);
  for (let i = 0; i + 2 < bytes.length; i++) {
    if (bytes[i] === 0xfd && bytes[i + 1] === 0x94 && bytes[i + 2] === 0x02) bytes[i + 1] = 0x93;
  }
  return bytes;
}

export async function main(): Promise<void> {
  const bytes = await assemble();
  if (!WebAssembly.validate(bytes)) {
    console.log("relaxed_simd: this runtime does not validate relaxed SIMD; nothing to time");
    return;
  }
  const { instance } = await WebAssembly.instantiate(bytes);
  const { memory, relaxed, classic, relaxed_matvec } = instance.exports as {
    memory: WebAssembly.Memory;
    relaxed: (codes: number, x8: number, sx: number, dw: number, groups: number) => number;
    classic: (codes: number, x16: number, dw: number, groups: number) => number;
    relaxed_matvec: (
      x8: number,
      sx: number,
      dx: number,
      codes: number,
      dw: number,
      n: number,
      g: number,
      out: number,
    ) => void;
  };
  const CODES = 0, X8 = ROWS * GROUPS * 16, X16 = X8 + K, SX = X16 + 2 * K, DX = SX + 4 * GROUPS, DW = DX + 4 * GROUPS;
  const OUT = DW + ROWS * GROUPS * 4;
  const need = OUT + ROWS * 4;
  if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
  const u8 = new Uint8Array(memory.buffer), i8 = new Int8Array(memory.buffer), i16 = new Int16Array(memory.buffer);
  const i32 = new Int32Array(memory.buffer), f32 = new Float32Array(memory.buffer);
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < ROWS * GROUPS * 16; i++) u8[CODES + i] = (random() * 256) | 0;
  for (let g = 0; g < GROUPS; g++) {
    let sum = 0;
    for (let j = 0; j < 32; j++) {
      const v = Math.round((random() * 2 - 1) * 127);
      i8[X8 + g * 32 + j] = v;
      i16[X16 / 2 + g * 32 + j] = v;
      sum += v;
    }
    i32[SX / 4 + g] = sum;
    f32[DX / 4 + g] = 1;
  }
  for (let i = 0; i < ROWS * GROUPS; i++) f32[DW / 4 + i] = random();
  // Both kernels against a float64 sum of the exact integer group dots (f32 accumulation: ~1e-6 relative).
  let worst = 0;
  for (let r = 0; r < 32; r++) {
    let exact = 0;
    for (let g = 0; g < GROUPS; g++) {
      let dot = 0;
      for (let j = 0; j < 16; j++) {
        const b = u8[CODES + (r * GROUPS + g) * 16 + j];
        dot += i8[X8 + g * 32 + j] * ((b & 15) - 8) + i8[X8 + g * 32 + 16 + j] * ((b >> 4) - 8);
      }
      exact += dot * f32[DW / 4 + r * GROUPS + g];
    }
    const a = relaxed(CODES + r * GROUPS * 16, X8, SX, DW + r * GROUPS * 4, GROUPS);
    const c = classic(CODES + r * GROUPS * 16, X16, DW + r * GROUPS * 4, GROUPS);
    relaxed_matvec(X8, SX, DX, CODES + (r & ~3) * GROUPS * 16, DW + (r & ~3) * GROUPS * 4, 4, GROUPS, OUT);
    const m = f32[OUT / 4 + (r & 3)];
    for (const got of [a, c, m]) worst = Math.max(worst, Math.abs(got - exact) / Math.abs(exact));
  }
  if (!(worst < 1e-4)) throw new Error(`relaxed_simd: a kernel disagrees with float64 (relative ${worst})`);
  const matvec = (kernel: "relaxed" | "classic") => () => {
    let total = 0;
    for (let r = 0; r < ROWS; r++) {
      total += kernel === "relaxed"
        ? relaxed(CODES + r * GROUPS * 16, X8, SX, DW + r * GROUPS * 4, GROUPS)
        : classic(CODES + r * GROUPS * 16, X16, DW + r * GROUPS * 4, GROUPS);
    }
    return total;
  };
  const ours = await createWasmBackend({ simd: true });
  const weights = ours.quantize(ours.upload(gaussian(ROWS * K, ROWS, 0.02), [ROWS, K]), "q4");
  const x = ours.upload(gaussian(K, 7), [1, K]);
  await runBench({
    name: "relaxed_simd",
    cases: [
      {
        label: "q4 matvec, 4 rows a pass, relaxed SIMD (relaxed_matvec)",
        run: () => relaxed_matvec(X8, SX, DX, CODES, DW, ROWS, GROUPS, OUT),
      },
      {
        label: "q4 matvec, the runtime's WASM backend (kernels-rs dot4_decode)",
        run: () => ours.linear(x, weights).dispose(),
      },
      { label: "q4 dot, relaxed SIMD (i32x4.relaxed_dot_i8x16_i7x16_add_s)", run: matvec("relaxed") },
      { label: "q4 dot, SIMD128 as kernels-rs (i32x4.dot_i16x8_s)", run: matvec("classic") },
    ],
    reps: 15,
    warmup: 3,
    work: { amount: ROWS * K, unit: "weight" },
    notes: { rows: ROWS, k: K, bytesOfCodes: ROWS * K / 2, worstRelativeErrorVsFloat64: worst },
  });
}

if (import.meta.main) await main();
