/**
 * The vision tower's CLIP layers split by frames over the main thread and workers (src/model/vision_split.ts,
 * loadModel's `visionWorkers`) against the tower on the main thread alone:
 * - parity, to the bit: every traced intermediate (vision.embeddings, every vision.hs.k, vision.bt.j.*, the
 *   feature) and the greedy tokens, on the small checkpoints of tests/util/checkpoints.ts (f32, f16 sharded, bf16)
 *   with 1 and 2 workers, for the golden video, the odd frame count (5) and anyres tiles (B = 3, T = 1). Exact because
 *   each frame's rows meet the same kernels in the same order wherever they run (the BLIS-blocked matmul sums each
 *   row in k order whatever the row count; attention and LayerNorm are per frame), and the BT-Adapter runs on the
 *   main thread on the same values;
 * - memory: each worker holds exactly the plan's "vision i" weight bytes, and the plan says where the tower runs;
 * - failure: a worker that dies in the middle of a forward fails it with `WorkerError("crashed")` (no hang, nothing
 *   left on the main instance) and every later one too; one that goes silent is stopped as "stalled"; `dispose()`
 *   ends the workers.
 */
import { assert, assertEquals, assertRejects } from "./util/assert.ts";
import { qwenCheckpoints, smallCheckpoints } from "./util/checkpoints.ts";
import { loadGolden } from "./util/golden.ts";
import type { Tensor } from "../src/backend/backend.ts";
import { loadModel, type ModelRequest, type PPLLaVAModel, type VisualInput } from "../src/model/model.ts";
import { formatPlan } from "../src/model/memory_plan.ts";
import type { VisionTower } from "../src/model/vision.ts";
import { frameCounts, type VisionWorkers } from "../src/model/vision_split.ts";
import { WorkerError } from "../src/util/workers.ts";
import type { ShardedLlama } from "../src/model/sharded_llama.ts";
import type { WasmBackend } from "../src/backend/wasm/backend.ts";
import { ModelError } from "../src/model/errors.ts";

async function goldenInputs(dir: string) {
  const g = await loadGolden(`${dir}/golden.safetensors`);
  const pixels = async (name: string) => Float32Array.from(await g.f64(name));
  const request: ModelRequest = {
    visuals: [{ pixels: await pixels("input.pixel_values") }],
    ids: await g.ints("input.ids"),
    clipIds: await g.ints("input.clip_ids"),
    clipMask: await g.ints("input.clip_mask"),
  };
  const visuals: [string, VisualInput][] = [
    ["video", request.visuals[0]],
    ["odd T = 5", { pixels: await pixels("odd.input.pixel_values") }],
    ["tiles B = 3", { pixels: await pixels("tiles.input.pixel_values"), kind: "tiles" }],
  ];
  return { request, visuals };
}

function workersOf(model: PPLLaVAModel): VisionWorkers {
  const workers = (model.vision as VisionTower).workers;
  assert(workers, "the model runs its vision tower on the main thread only");
  return workers as VisionWorkers;
}

/** Every traced vision intermediate and the returned feature, on the host. */
async function visionRun(model: PPLLaVAModel, visual: VisualInput): Promise<Map<string, Float32Array>> {
  const b = model.backend;
  const got = new Map<string, Float32Array>();
  const pending: Promise<unknown>[] = [];
  const trace = (name: string, t: Tensor) => void pending.push(b.download(t).then((v) => got.set(name, v)));
  const feature = await model.features(visual, trace);
  got.set("returned feature", await b.download(feature));
  feature.dispose();
  await Promise.all(pending);
  return got;
}

Deno.test("frame split: the main thread keeps the smaller share (it also runs the BT-Adapter), workers the rest in order", () => {
  assertEquals(frameCounts(32, 1), [16, 16]);
  assertEquals(frameCounts(5, 1), [2, 3]);
  assertEquals(frameCounts(5, 2), [1, 2, 2]);
  assertEquals(frameCounts(2, 3), [1, 1, 0, 0]);
  assertEquals(frameCounts(1, 1), [1, 0]);
  assertEquals(frameCounts(7, 0), [7]);
});

for (const [variant, workers] of [["f32", 1], ["f16-sharded", 2], ["bf16", 1]] as const) {
  Deno.test(`vision in ${workers} worker(s), ${variant}: every vision intermediate and the tokens equal one thread's, to the bit`, async () => {
    const dir = await smallCheckpoints();
    const { request, visuals } = await goldenInputs(dir);
    const single = await loadModel(`${dir}/${variant}`, { visionWorkers: 0, featuresCacheBytes: 0 });
    const split = await loadModel(`${dir}/${variant}`, { visionWorkers: workers, featuresCacheBytes: 0 });
    try {
      assertEquals([single.plan!.visionWorkers, split.plan!.visionWorkers], [0, workers]);
      const baseline = split.backend.stats();
      for (const [label, visual] of visuals) {
        const want = await visionRun(single, visual);
        const got = await visionRun(split, visual);
        assert(want.has("vision.bt.0.out") && want.has("vision.hs.1"), [...want.keys()].join(", "));
        assertEquals([...got.keys()].sort(), [...want.keys()].sort(), label);
        for (const [name, values] of want) assertEquals(got.get(name), values, `${label}: ${name}`);
      }
      assertEquals(split.backend.stats(), baseline, "no tensors left on the main instance");
      assert((await workersOf(split).stats()).every((s) => s.busySeconds > 0), "every worker ran frames");
      const greedy = { ...request, maxNewTokens: 6, eosTokenIds: [] as number[] };
      assertEquals((await split.generateAll(greedy)).tokens, (await single.generateAll(greedy)).tokens);
    } finally {
      single.dispose();
      split.dispose();
    }
  });
}

Deno.test("quantizeVision q8: a vision worker gives one thread's bits and holds the plan's bytes; features stay near f16's", async () => {
  const dir = await smallCheckpoints();
  const { visuals } = await goldenInputs(dir);
  const options = { featuresCacheBytes: 0, quantizeVision: "q8" as const, memory: { request: { frames: 5 } } };
  const single = await loadModel(`${dir}/f16`, { ...options, visionWorkers: 0 });
  const split = await loadModel(`${dir}/f16`, { ...options, visionWorkers: 1 });
  const stored = await loadModel(`${dir}/f16`, { featuresCacheBytes: 0, visionWorkers: 0 });
  try {
    const groups = single.plan!.groups;
    assert(groups.find((g) => g.name === "vision")!.precision.includes("F16 → q8"), formatPlan(single.plan!));
    assert(!groups.find((g) => g.name === "llm.layers")!.precision.includes("q"), formatPlan(single.plan!));
    assertEquals(single.plan!.instances[0].weightBytes, single.backend.stats().bytes, "main instance: plan vs backend");
    const worker = split.plan!.instances.find((i) => i.name === "vision 0")!;
    assertEquals((await workersOf(split).stats()).map((s) => s.bytes), [worker.weightBytes], "worker: plan vs held");
    for (const [label, visual] of visuals) {
      const want = await visionRun(single, visual);
      const got = await visionRun(split, visual);
      for (const [name, values] of want) assertEquals(got.get(name), values, `${label}: ${name}`);
      // Group-wise q8 weights and int8 activations: the feature within a few percent of the stored weights' feature.
      const a = (await visionRun(stored, visual)).get("returned feature")!;
      const b = want.get("returned feature")!;
      let err = 0, norm = 0;
      for (let i = 0; i < a.length; i++) err += (a[i] - b[i]) ** 2, norm += a[i] ** 2;
      const relative = Math.sqrt(err / norm);
      assert(relative > 0 && relative < 0.05, `${label}: q8 vision feature off by ${relative} (relative L2)`);
    }
  } finally {
    single.dispose();
    split.dispose();
    stored.dispose();
  }
});

Deno.test("vision workers: each holds exactly the plan's per-frame weights; the plan says where the tower runs", async () => {
  const dir = `${await smallCheckpoints()}/f16`;
  const model = await loadModel(dir, { visionWorkers: 2, featuresCacheBytes: 0, memory: { request: { frames: 5 } } });
  try {
    const plan = model.plan!;
    assertEquals(plan.visionFrames, [1, 2, 2]);
    const planned = plan.instances.filter((i) => i.name.startsWith("vision "));
    assertEquals(planned.map((i) => i.name), ["vision 0", "vision 1"]);
    const vision = plan.groups.find((g) => g.name === "vision")!;
    assertEquals(planned.map((i) => i.weightBytes), [vision.bytes, vision.bytes]);
    assertEquals((await workersOf(model).stats()).map((s) => s.bytes), planned.map((i) => i.weightBytes));
    assertEquals(plan.instances[0].weightBytes, model.backend.stats().bytes, "the main instance keeps its copy");
    const text = formatPlan(plan);
    assert(text.includes("over the main instance and 2 worker(s) (1 + 2 + 2 frames), BT-Adapter on the main"), text);
    // "auto" leaves these small towers on the main thread: a worker would cost more than their 10–15 MFLOP per frame.
    const auto = await loadModel(dir, { featuresCacheBytes: 0 });
    assertEquals([auto.plan!.visionWorkers, (auto.vision as VisionTower).workers], [0, undefined]);
    assert(formatPlan(auto.plan!).includes("vision tower on the main instance"));
    auto.dispose();
  } finally {
    model.dispose();
  }
});

Deno.test("vision workers: a worker that dies mid-forward is WorkerError('crashed'), now and later; dispose ends them", async () => {
  const dir = await smallCheckpoints();
  const { request, visuals } = await goldenInputs(dir);
  const model = await loadModel(`${dir}/f32`, { visionWorkers: 2, featuresCacheBytes: 0 });
  const split = workersOf(model);
  const baseline = model.backend.stats();
  // An error inside a worker's handler comes back typed, and the worker lives on.
  const remote = await assertRejects(
    () => split.workers[0].call("advance", { id: 999, to: 1, last: true }),
    WorkerError,
  );
  assertEquals(remote.code, "remote");
  assert(remote.message.includes("no run 999"), remote.message);
  // Worker 1 dies of an uncaught error while it owes a reply, with the forward's requests queued behind it.
  const dying = split.workers[1].call("crash").catch((error) => error);
  const crashed = await assertRejects(() => model.features(visuals[1][1]), WorkerError);
  assertEquals(crashed.code, "crashed");
  assertEquals(((await dying) as WorkerError).code, "crashed");
  assertEquals(split.workers[0].failed?.code, "terminated", "the other worker is ended with it");
  assertEquals(model.backend.stats(), baseline, "the failed forward left nothing on the main instance");
  assertEquals(
    (await assertRejects(() => model.generateAll({ ...request, maxNewTokens: 2 }), WorkerError)).code,
    "crashed",
  );
  model.dispose();
  const clean = await loadModel(`${dir}/f32`, { visionWorkers: 2 });
  const cleanWorkers = workersOf(clean);
  clean.dispose();
  assert(cleanWorkers.workers.every((w) => w.failed?.code === "terminated"));
});

Deno.test("vision workers: a worker that goes silent is stopped as stalled, and the forward fails typed", async () => {
  const dir = await smallCheckpoints();
  const { visuals } = await goldenInputs(dir);
  const model = await loadModel(`${dir}/f32`, { visionWorkers: 1, workerStallMs: 500, featuresCacheBytes: 0 });
  try {
    // A worker reports progress after every layer, so a healthy forward never trips the watchdog.
    (await model.features(visuals[0][1])).dispose();
    const hung = workersOf(model).workers[0].call("hang").catch((error) => error);
    const stalled = await assertRejects(() => model.features(visuals[1][1]), WorkerError);
    assertEquals([stalled.code, ((await hung) as WorkerError).code], ["stalled", "stalled"]);
  } finally {
    model.dispose();
  }
});

Deno.test("visionWorkers: a bad count and a SigLIP tower (which runs on the main instance only) are typed errors", async () => {
  const dir = await smallCheckpoints();
  for (const visionWorkers of [-1, 1.5]) {
    const error = await assertRejects(() => loadModel(`${dir}/f32`, { visionWorkers }), ModelError);
    assertEquals(error.code, "bad_input");
  }
  const qwen = await qwenCheckpoints("small");
  const error = await assertRejects(() => loadModel(`${qwen}/f32`, { visionWorkers: 1 }), ModelError, "SigLIP");
  assertEquals(error.code, "bad_input");
  const auto = await loadModel(`${qwen}/f32`, { memory: { cores: 2 } });
  assertEquals(auto.plan!.visionWorkers, 0);
  auto.dispose();
});

Deno.test("loadModel's relaxed SIMD options reach the LLM and vision workers' backends", async () => {
  // relaxedSimd false keeps every quantised product in the kernels module in every instance, workers included; the
  // default uses relaxed SIMD's q4 product there too (Deno compiles it; tests/quant_kernels.test.ts), and a forced dot
  // (relaxedQ4Dot) still runs relaxed.
  const dir = `${await smallCheckpoints()}/f32`;
  const formats = async (options: { relaxedSimd?: boolean; relaxedQ4Dot?: "i32" | "i16" }) => {
    const model = await loadModel(dir, {
      quantize: "q4",
      quantizeVision: "q4",
      workers: 1,
      visionWorkers: 1,
      featuresCacheBytes: 0,
      ...options,
    });
    try {
      const llm = await (model.llm as ShardedLlama).stats();
      const vision = await workersOf(model).stats();
      const main = (model.backend as WasmBackend).relaxedFormats;
      return [main, ...[...llm, ...vision].map((s) => s.relaxedFormats)].map((f) => f.filter((x) => x === "q4"));
    } finally {
      model.dispose();
    }
  };
  assertEquals(await formats({ relaxedSimd: false }), [[], [], []]);
  assertEquals(await formats({}), [["q4"], ["q4"], ["q4"]]);
  assertEquals(await formats({ relaxedQ4Dot: "i32" }), [["q4"], ["q4"], ["q4"]]);
});
