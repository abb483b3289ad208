/**
 * The memory plan (src/model/memory_plan.ts) against what loading and running actually allocate:
 * - weights: the plan's bytes per instance = `backend.stats().bytes` after `loadModel` (main instance) and each
 *   worker's own stats (shards), exactly: the loader keeps matrices in their stored dtype and widens the rest, and
 *   the plan counts the same tensors;
 * - KV cache: the plan's bytes = what opening a session adds, exactly;
 * - vision activations: the plan's estimate is an upper bound of the measured peak of live tensor bytes while the
 *   tower runs T frames, and within 4× of it (the stated tolerance of an estimate);
 * - refusal: a model over `maxBytes` or over one instance (workers: 0) is `ModelError("too_large")` naming the
 *   numbers, and nothing was allocated on the backend; "auto" shards when the LLM does not fit one instance.
 */
import { assert, assertEquals, assertRejects } from "./util/assert.ts";
import { smallCheckpoints } from "./util/checkpoints.ts";
import { loadModel } from "../src/model/model.ts";
import { ModelError } from "../src/model/errors.ts";
import { LlamaSession } from "../src/model/llama.ts";
import type { ShardedLlama } from "../src/model/sharded_llama.ts";
import { planMemory } from "../src/model/memory_plan.ts";
import { openCheckpoint } from "../src/model/weights.ts";
import { WasmBackend } from "../src/backend/wasm/backend.ts";
import { loadKernels } from "../src/backend/wasm/loader.ts";

/** Records the peak of live storage bytes. */
class PeakBackend extends WasmBackend {
  peak = 0;
  protected override allocate(bytes: number, zero: boolean) {
    const storage = super.allocate(bytes, zero);
    this.peak = Math.max(this.peak, this.stats().bytes + bytes);
    return storage;
  }
}

const MiB = 2 ** 20;

for (
  const [variant, quantize] of [["f32", undefined], ["bf16-sharded", undefined], ["tiny", undefined], ["f16", "q4"], [
    "tiny",
    "q8",
  ]] as const
) {
  Deno.test(`memory plan (${variant}${quantize ? `, ${quantize}` : ""}): weight bytes and KV-cache bytes are what the backend holds`, async () => {
    const dir = variant === "tiny" ? "models/ppllava-tiny" : `${await smallCheckpoints()}/${variant}`;
    const backend = new PeakBackend(await loadKernels());
    const model = await loadModel(dir, { backend, featuresCacheBytes: 0, quantize });
    try {
      const plan = model.plan!;
      assertEquals(plan.workers, 0);
      const main = plan.instances[0];
      assertEquals(main.weightBytes, backend.stats().bytes, "weights: plan vs backend");
      const capacity = 300;
      const contextPlan = planMemory(model.config, (await openCheckpoint(dir)).store, {
        request: { contextPositions: capacity },
        featuresCacheBytes: 0,
        quantize,
      });
      const before = backend.stats().bytes;
      const session = new LlamaSession(backend, model.llm as never, capacity);
      assertEquals(backend.stats().bytes - before, contextPlan.instances[0].kvCacheBytes, "KV cache: plan vs backend");
      session.dispose();
    } finally {
      model.dispose();
    }
  });
}

for (const [workers, quantize] of [[3, undefined], [2, "q4"]] as const) {
  Deno.test(`memory plan: every shard's weights and KV cache are what its worker holds (${workers} workers${quantize ? `, ${quantize}` : ""})`, async () => {
    const dir = `${await smallCheckpoints()}/f16`;
    const model = await loadModel(dir, {
      workers,
      quantize,
      featuresCacheBytes: 0,
      memory: { request: { contextPositions: 64 } },
    });
    try {
      const plan = model.plan!;
      assertEquals(plan.workers, workers);
      const llm = model.llm as ShardedLlama;
      const stats = await llm.stats();
      assertEquals(stats.map((s) => s.bytes), plan.instances.slice(1).map((i) => i.weightBytes));
      assertEquals(plan.instances[0].weightBytes, model.backend.stats().bytes);
      const opened = await llm.all((w) => w.call<{ bytes: number }>("open", { id: 99, capacity: 64 }));
      assertEquals(
        opened.map((s, i) => s.bytes - stats[i].bytes),
        plan.instances.slice(1).map((i) => i.kvCacheBytes),
      );
    } finally {
      model.dispose();
    }
  });
}

for (const visionWorkers of [0, 1]) {
  Deno.test(`memory plan: the vision-activation estimate bounds the measured peak, within 4× (${visionWorkers} vision workers)`, async () => {
    // With a vision worker the main instance runs half the frames' CLIP layers but holds every frame's x at the BT
    // layers (its own and the workers' joined): the BT layer still sets the peak.
    const backend = new PeakBackend(await loadKernels());
    const model = await loadModel("models/ppllava-tiny", { backend, featuresCacheBytes: 0, visionWorkers });
    try {
      const size = model.vision.config.imageSize;
      for (const frames of [2, 8]) {
        const base = backend.stats().bytes;
        backend.peak = base;
        const pixels = new Float32Array(frames * 3 * size * size).map((_, i) => Math.cos(i * 0.01));
        const features = await model.features({ pixels });
        features.dispose();
        const measured = backend.peak - base;
        const plan = planMemory(model.config, (await openCheckpoint("models/ppllava-tiny")).store, {
          request: { frames },
        });
        const estimate = plan.request.visionActivationBytes;
        console.log(`  T=${frames}: vision activations measured ${measured} B, estimated ${estimate} B`);
        assert(estimate >= measured, `estimate ${estimate} below the measured peak ${measured}`);
        assert(estimate <= 4 * measured, `estimate ${estimate} over 4× the measured peak ${measured}`);
      }
    } finally {
      model.dispose();
    }
  });
}

Deno.test("memory plan: too large is refused before anything is allocated, naming the numbers", async () => {
  const dir = `${await smallCheckpoints()}/f32`;
  const backend = new PeakBackend(await loadKernels());
  const host = await assertRejects(
    () => loadModel(dir, { backend, memory: { maxBytes: 50 * MiB } }),
    ModelError,
    "maxBytes limit 50.0 MiB",
  );
  assertEquals(host.code, "too_large");
  const instance = await assertRejects(
    () =>
      loadModel(dir, {
        backend,
        workers: 0,
        featuresCacheBytes: 0,
        memory: { instanceBytes: 8 * MiB, headroomBytes: 0 },
      }),
    ModelError,
    "over one WASM instance's 8.0 MiB",
  );
  assertEquals(instance.code, "too_large");
  assertEquals(backend.peak, 0, "nothing was allocated");
  assertEquals(backend.stats(), { tensors: 0, bytes: 0 });
  // "auto": the LLM moves to workers when it does not fit the main instance with everything else.
  const store = (await openCheckpoint(dir)).store;
  const config = (await openCheckpoint(dir)).config;
  const one = planMemory(config, store, { featuresCacheBytes: 0 });
  assertEquals(one.workers, 0);
  const tight = one.instances[0].totalBytes - 1;
  const auto = planMemory(config, store, { featuresCacheBytes: 0, instanceBytes: tight, headroomBytes: 0 });
  assert(auto.workers >= 2 && auto.fits, `auto sharding: ${auto.workers} workers, ${auto.problems}`);
});

Deno.test("memory plan of the Vicuna-7B shapes (headers only): q4 in 2 workers, q8 in 3, f16 needs 5 and ~20 GiB; a vision worker", async () => {
  const { syntheticCheckpoint, VICUNA_7B_CONFIG } = await import("../src/model/synthetic_checkpoint.ts");
  const weights = await openCheckpoint(syntheticCheckpoint(VICUNA_7B_CONFIG));
  const plan = (quantize?: "q8" | "q4", visionWorkers: number | "auto" = 0, cores = 2) =>
    planMemory(weights.config, weights.store, { quantize, hostBytes: 24 * 2 ** 30, visionWorkers, cores });
  const q4 = plan("q4");
  const q8 = plan("q8");
  const f16 = plan();
  assertEquals([q4.workers, q8.workers, f16.workers], [2, 3, 5]);
  assert(q4.fits && q8.fits, `${q4.problems} ${q8.problems}`);
  // q4 LLM layers: 32 · (4·4096² + 3·4096·11008) weights at 20 bytes per 32, + f32 norms.
  const layers = q4.groups.find((g) => g.name === "llm.layers")!;
  assertEquals(layers.bytes, 32 * ((4 * 4096 * 4096 + 3 * 4096 * 11008) / 32 * 20 + 2 * 4096 * 4));
  assert(f16.hostTotalBytes > 20 * 2 ** 30 && f16.hostTotalBytes < 21 * 2 ** 30, `f16 host ${f16.hostTotalBytes}`);
  // "auto" gives CLIP-L a frame worker on a host with a second core: a second copy of the per-frame weights and the
  // activations of its 16 of the 32 frames; none on one core. Weights: CLIP layers 0..22, each 4·D² + 2·D·I f16 and
  // 9·D + I f32 (biases, LayerNorms), plus the f16 patch kernel (D·3·14²) and the f32 class, position and pre-LN rows.
  const auto = plan("q4", "auto");
  const worker = auto.instances.find((i) => i.name === "vision 0")!;
  const layer = (4 * 1024 * 1024 + 2 * 1024 * 4096) * 2 + (9 * 1024 + 4096) * 4;
  const embeddings = 1024 * 588 * 2 + (1024 + 577 * 1024 + 2 * 1024) * 4;
  assertEquals([auto.visionWorkers, auto.visionFrames, worker.weightBytes], [1, [16, 16], 23 * layer + embeddings]);
  assertEquals(worker.weightBytes, auto.groups.find((g) => g.name === "vision")!.bytes);
  assertEquals(auto.hostTotalBytes - q4.hostTotalBytes, worker.totalBytes + 64 * 2 ** 20, "the worker and its thread");
  assertEquals(plan("q4", "auto", 1).visionWorkers, 0);
  await weights.close();
});

Deno.test("ppllava plan: prints the plan and exits 1 when it does not fit", async () => {
  const { main } = await import("../src/cli/main.ts");
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => void lines.push(args.join(" "));
  try {
    assertEquals(await main(["plan", "models/ppllava-tiny"]), 0);
    assert(
      lines.join("\n").includes("LLM on the main instance") && lines.join("\n").endsWith("\nfits"),
      lines.join("\n"),
    );
    lines.length = 0;
    assertEquals(await main(["plan", "--synthetic-7b", "--quant", "q4", "--max-bytes", String(4 * 2 ** 30)]), 1);
    const text = lines.join("\n");
    assert(text.includes("LLM in 2 workers") && text.includes("maxBytes limit 4.00 GiB"), text);
  } finally {
    console.log = log;
  }
});
