/**
 * Prompt relevance over one 32-frame video (18432 tokens × 768): WASM SIMD against its scalar twin and a plain
 * TypeScript loop (the float64 reference), and WebGPU when this host has an adapter.
 */
import { type BenchCase, runBench } from "./harness.ts";
import { loadKernels } from "../src/backend/wasm/loader.ts";
import { relevanceWasm } from "../src/backend/wasm/relevance.ts";
import { relevanceReference } from "../tests/reference/relevance.ts";
import { gaussian } from "../tests/util/random.ts";
import { GpuRelevance } from "../src/backend/webgpu/relevance.ts";
import { requestGpu } from "../src/backend/webgpu/device.ts";

export async function main(): Promise<void> {
  const tokens = 32 * 576;
  const dim = 768;
  const visual = gaussian(tokens * dim, 1);
  const text = gaussian(dim, 2);
  const kernels = await loadKernels();
  const cases: BenchCase[] = [
    { label: "wasm simd", run: () => relevanceWasm(kernels, visual, text) },
    { label: "wasm scalar", run: () => relevanceWasm(kernels, visual, text, { simd: false }) },
    { label: "plain typescript", run: () => relevanceReference(visual, text) },
  ];
  const gpu = await requestGpu().catch(() => null);
  if (gpu) {
    const relevance = await GpuRelevance.create(gpu.device);
    cases.push({ label: `webgpu (${gpu.info.description})`, run: () => relevance.run(visual, text) });
  }
  await runBench({
    name: "relevance",
    cases,
    reps: 7,
    work: { amount: 2 * 2 * tokens * dim, unit: "FLOP" },
    notes: { tokens, dim, simd: kernels.hasSimd },
  });
  gpu?.device.destroy();
}
