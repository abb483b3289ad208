/**
 * The tensor-parallel LLM (src/model/sharded_llama.ts) against the single-instance `Llama` on the same weights:
 * - parity: prefill and decode logits within 1e-4 of the largest logit (the only difference is the f32 summation
 *   order of o_proj and down_proj, split in W partial sums), and the same greedy and beam tokens, on the small
 *   checkpoints of tests/util/checkpoints.ts (f32, f16; 2 and 3 workers, 3 splitting 4 heads unevenly) and on the
 *   embedded models/ppllava-tiny;
 * - lifecycle: `model.dispose()` terminates every worker; a worker crash is `WorkerError("crashed")` for the
 *   pending call and every later one (no hang), and takes the other workers down with it.
 */
import { assert, assertEquals, assertRejects } from "./util/assert.ts";
import { qwenCheckpoints, smallCheckpoints } from "./util/checkpoints.ts";
import { loadGolden } from "./util/golden.ts";
import { loadModel, type ModelRequest, type PPLLaVAModel } from "../src/model/model.ts";
import { LlamaSession } from "../src/model/llama.ts";
import { ShardedLlama } from "../src/model/sharded_llama.ts";
import { WorkerError } from "../src/util/workers.ts";
import { AbortError } from "../src/model/errors.ts";
import { shardRanges } from "../src/model/llama_shard.ts";
import { convertCheckpoint } from "../src/model/convert.ts";

const BAR = 1e-4;
/**
 * With q8/q4 weights, each linear quantises its input to int8 per group of 32, so a last-bit difference in f32 (the
 * all-reduce's order of addition) can move one activation across a rounding boundary: one code, absmax/127 of its
 * group, which reaches the logits. Measured on the small checkpoint in q8: perturbing 1% of the embeddings by 1e-7
 * (relative) moved the single instance's own logits by 9.9e-3 of their scale in one draw of four (0 in the others).
 * A wrong shard moves them by O(1), far above this bar: down_proj columns of the second shard read one group (32)
 * early gave 0.87 (q8) and 0.91 (q4).
 */
const QUANT_BAR = 3e-2;

async function goldenRequest(dir: string): Promise<ModelRequest & { ids: number[] }> {
  const g = await loadGolden(`${dir}/golden.safetensors`);
  return {
    visuals: [{ pixels: Float32Array.from(await g.f64("input.pixel_values")) }],
    ids: await g.ints("input.ids"),
    clipIds: await g.ints("input.clip_ids"),
    clipMask: await g.ints("input.clip_mask"),
  };
}

/** max |a − b| / max |a|. */
function scaledError(ref: Float32Array, got: Float32Array): number {
  assertEquals(got.length, ref.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    err = Math.max(err, Math.abs(ref[i] - got[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return err / scale;
}

/** Prefill + 3 decode steps of both models on the same embeddings: the worst scaled error over the 4 logit rows. */
async function logitsParity(single: PPLLaVAModel, sharded: PPLLaVAModel, request: ModelRequest): Promise<number> {
  const b = single.backend;
  const embeds = await single.embed(request);
  const embedsS = await sharded.embed(request);
  const [length, hidden] = embeds.shape;
  const batched = b.reshape(embeds, [1, length, hidden]);
  const batchedS = sharded.backend.reshape(embedsS, [1, length, hidden]);
  assert(sharded.llm instanceof ShardedLlama && !(single.llm instanceof ShardedLlama));
  const a = new LlamaSession(b, single.llm, length + 8);
  const s = sharded.llm.session(sharded.backend, length + 8);
  try {
    let ra = await a.run(batched);
    let rs = await s.run(batchedS);
    // The traced path (all-reduces on the main thread, every layer's output traced) adds the same numbers in the
    // same order as the workers' own all-reduce (all_reduce.ts): bit-identical logits, and one trace per layer.
    const traced = sharded.llm.session(sharded.backend, length + 8);
    const names: string[] = [];
    assertEquals(await traced.run(batchedS, { trace: (name) => names.push(name) }), rs);
    assertEquals(names.length, sharded.llm.config.numLayers);
    traced.dispose();
    let worst = scaledError(ra, rs);
    for (let step = 0; step < 3; step++) {
      const next = argmax(ra);
      ra = await a.step([next]);
      rs = await s.step([next]);
      worst = Math.max(worst, scaledError(ra, rs));
    }
    assertEquals(s.length, a.length);
    return worst;
  } finally {
    a.dispose();
    s.dispose();
    batched.dispose();
    embeds.dispose();
    batchedS.dispose();
    embedsS.dispose();
  }
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

Deno.test("shard ranges: KV-head groups, MLP rows and vocabulary rows cover each axis once", () => {
  const config = {
    hiddenSize: 4096,
    intermediateSize: 11008,
    numLayers: 32,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    eps: 1e-5,
    ropeTheta: 1e4,
    vocabSize: 32064,
    maxPositions: 4096,
  };
  const r = shardRanges(config, 3);
  assertEquals(r.map((x) => x.kvHeads), [[0, 3], [3, 6], [6, 8]]);
  assertEquals(r.map((x) => x.heads), [[0, 12], [12, 24], [24, 32]]);
  // MLP slices in whole quantisation groups of 32: 344 groups → 115, 115, 114.
  assertEquals(r.map((x) => x.mlp), [[0, 3680], [3680, 7360], [7360, 11008]]);
  assertEquals(r[2].vocab[1], 32064);
});

for (const [variant, workers] of [["f32", 2], ["f16-sharded", 3]] as const) {
  Deno.test(`sharded LLM (${workers} workers, ${variant} checkpoint) = single-instance Llama: logits and greedy tokens`, async () => {
    const dir = await smallCheckpoints();
    const request = await goldenRequest(dir);
    const single = await loadModel(`${dir}/${variant}`);
    const sharded = await loadModel(`${dir}/${variant}`, { workers });
    try {
      const error = await logitsParity(single, sharded, request);
      console.log(`  ${variant}, W=${workers}: logits scaled error ${error.toExponential(2)}`);
      assert(error <= BAR, `logits differ by ${error} of their scale (bar ${BAR})`);
      const greedy = { ...request, maxNewTokens: 6, eosTokenIds: [] as number[] };
      const want = await single.generateAll(greedy);
      const got = await sharded.generateAll(greedy);
      assertEquals(got.tokens, want.tokens);
    } finally {
      single.dispose();
      sharded.dispose();
    }
  });
}

for (const quantize of ["q8", "q4"] as const) {
  Deno.test(`sharded LLM, ${quantize} at load time and from a converted checkpoint = one instance (2 workers)`, async () => {
    const dir = await smallCheckpoints();
    const request = await goldenRequest(dir);
    const converted = await Deno.makeTempDir({ prefix: "ppllava-shard-quant-" });
    await Deno.remove(converted);
    await convertCheckpoint(`${dir}/f32`, converted, { quant: quantize });
    const single = await loadModel(`${dir}/f32`, { quantize, workers: 0 });
    try {
      for (
        const [label, load] of [
          ["load-time", () => loadModel(`${dir}/f32`, { quantize, workers: 2 })],
          ["converted", () => loadModel(converted, { workers: 2 })],
        ] as const
      ) {
        const sharded = await load();
        try {
          const error = await logitsParity(single, sharded, request);
          console.log(`  ${quantize} ${label}, W=2: logits scaled error ${error.toExponential(2)}`);
          assert(error <= QUANT_BAR, `${label}: logits differ by ${error} of their scale (bar ${QUANT_BAR})`);
          const greedy = { ...request, maxNewTokens: 6, eosTokenIds: [] as number[] };
          assertEquals((await sharded.generateAll(greedy)).tokens, (await single.generateAll(greedy)).tokens);
        } finally {
          sharded.dispose();
        }
      }
    } finally {
      single.dispose();
      await Deno.remove(converted, { recursive: true });
    }
  });
}

Deno.test("sharded Qwen2 (GQA 4 query heads over 2 KV heads, q/k/v biases) in 2 workers = one instance", async () => {
  const dir = await qwenCheckpoints("small");
  const g = await loadGolden(`${dir}/golden.safetensors`);
  const request: ModelRequest = {
    visuals: [{ pixels: Float32Array.from(await g.f64("input.pixel_values")) }],
    ids: await g.ints("input.ids"),
    clipIds: await g.ints("input.clip_ids"),
  };
  const single = await loadModel(`${dir}/f32`, { workers: 0 });
  const sharded = await loadModel(`${dir}/f32`, { workers: 2 });
  try {
    assert(sharded.llm.config.attentionBias && sharded.llm.config.kvHeads === 2);
    const error = await logitsParity(single, sharded, request);
    console.log(`  qwen2 small, W=2: logits scaled error ${error.toExponential(2)}`);
    assert(error <= BAR, `logits differ by ${error} of their scale (bar ${BAR})`);
  } finally {
    single.dispose();
    sharded.dispose();
  }
});

Deno.test("sharded LLM on models/ppllava-tiny: same greedy text and the same beam search (KV reorder on every shard)", async () => {
  const single = await loadModel("models/ppllava-tiny");
  const sharded = await loadModel("models/ppllava-tiny", { workers: 2 });
  try {
    const samples = JSON.parse(await Deno.readTextFile("models/ppllava-tiny/samples.json"));
    const size = single.vision.config.imageSize;
    const frames = 4;
    const pixels = new Float32Array(frames * 3 * size * size);
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.sin(i * 0.001) * 0.5;
    const question: string = samples[0].question;
    const request: ModelRequest = { visuals: [{ pixels }], question };
    const error = await logitsParity(single, sharded, request);
    console.log(`  ppllava-tiny, W=2: logits scaled error ${error.toExponential(2)}`);
    assert(error <= BAR, `logits differ by ${error} of their scale (bar ${BAR})`);
    for (const options of [{ maxNewTokens: 8 }, { maxNewTokens: 5, numBeams: 3 }]) {
      const want = await single.generateAll({ ...request, ...options });
      const got = await sharded.generateAll({ ...request, ...options });
      assertEquals(got.tokens, want.tokens, JSON.stringify(options));
    }
  } finally {
    single.dispose();
    sharded.dispose();
  }
});

Deno.test("sharded LLM: generate streams, aborts with AbortError, frees its tensors and closes its KV caches", async () => {
  const dir = await smallCheckpoints();
  const request = await goldenRequest(dir);
  // No features cache: its entry would count as a tensor left behind.
  const model = await loadModel(`${dir}/f32`, { workers: 2, featuresCacheBytes: 0 });
  const llm = model.llm as ShardedLlama;
  try {
    const baseline = model.backend.stats();
    const shardBaseline = (await llm.stats()).map((s) => s.bytes);
    const controller = new AbortController();
    const seen: number[] = [];
    const error = await assertRejects(async () => {
      for await (
        const token of model.generate({ ...request, maxNewTokens: 20, eosTokenIds: [], signal: controller.signal })
      ) {
        seen.push(token.id);
        controller.abort("user left");
      }
    }, AbortError);
    assertEquals([error.name, seen.length], ["AbortError", 1]);
    assertEquals(model.backend.stats(), baseline, "no tensors left on the main instance");
    assertEquals((await llm.stats()).map((s) => s.bytes), shardBaseline, "every shard closed the session's KV cache");
    // The model is still usable after an abort.
    const after = await model.generateAll({ ...request, maxNewTokens: 3, eosTokenIds: [] });
    assertEquals(after.tokens.length, 3);
  } finally {
    model.dispose();
  }
});

Deno.test("sharded LLM lifecycle: dispose terminates the workers; a crash is a typed error, not a hang", async () => {
  const dir = await smallCheckpoints();
  const request = await goldenRequest(dir);
  const model = await loadModel(`${dir}/f32`, { workers: 2 });
  const llm = model.llm as ShardedLlama;
  const stats = await llm.stats();
  assert(stats.every((s) => s.bytes > 0), "every shard holds weights");
  // An error inside a worker's handler comes back typed, with the remote name, and the worker lives on.
  const remote = await assertRejects(() => llm.workers[0].call("reorder", { id: 12345, from: [0] }), WorkerError);
  assertEquals([remote.code, remote.remote?.name], ["remote", "Error"]);
  assert(remote.message.includes("no session 12345"), remote.message);
  assertEquals((await llm.stats()).length, 2);
  // A worker crashes (an uncaught error on its next turn of the event loop) while a generation holds a session.
  // A forward runs without yielding to the worker's event loop (the barrier waits synchronously), so the test waits
  // for the crash to be reported instead of racing it: the crash must then fail the run, typed, not hang it.
  const embeds = await model.embed(request);
  const session = llm.session(model.backend, embeds.shape[0] + 4);
  // The crash may overtake the reply to "crash" itself (an error event and a message are separate queues), so that
  // call may resolve or reject; what counts is the worker's failure below.
  await llm.workers[1].call("crash").catch(() => null);
  for (let i = 0; i < 250 && !llm.workers[1].failed; i++) await new Promise((r) => setTimeout(r, 20));
  assertEquals(llm.workers[1].failed?.code, "crashed");
  const batched = model.backend.reshape(embeds, [1, ...embeds.shape]);
  const crashed = await assertRejects(() => session.run(batched), WorkerError);
  assertEquals(crashed.code, "crashed");
  assertEquals(llm.workers[0].failed?.code, "terminated");
  assertEquals(
    (await assertRejects(() => model.generateAll({ ...request, maxNewTokens: 2 }), WorkerError)).code,
    "crashed",
  );
  batched.dispose();
  embeds.dispose();
  session.dispose();
  model.dispose();
  // A clean model: dispose ends both workers.
  const clean = await loadModel(`${dir}/f32`, { workers: 2 });
  const cleanLlm = clean.llm as ShardedLlama;
  clean.dispose();
  assert(cleanLlm.workers.every((w) => w.failed?.code === "terminated"));
  assertEquals((await assertRejects(() => cleanLlm.stats(), WorkerError)).code, "terminated");
});

Deno.test("sharded LLM: a shard that goes silent is stopped as stalled, the others with it, and generation fails typed", async () => {
  const dir = await smallCheckpoints();
  const request = await goldenRequest(dir);
  const model = await loadModel(`${dir}/f32`, { workers: 2, workerStallMs: 500 });
  const llm = model.llm as ShardedLlama;
  try {
    // A forward reports progress after every half-layer, so a healthy generation never trips the watchdog.
    assert((await model.generateAll({ ...request, maxNewTokens: 3 })).tokens.length > 0);
    assertEquals((await assertRejects(() => llm.workers[1].call("hang"), WorkerError)).code, "stalled");
    assertEquals(llm.workers[0].failed?.code, "terminated");
    const failed = await assertRejects(() => model.generateAll({ ...request, maxNewTokens: 2 }), WorkerError);
    assertEquals(failed.code, "stalled");
  } finally {
    model.dispose();
  }
});

for (
  const [runtime, command] of [["bun", new URL("../node_modules/.bin/bun", import.meta.url).pathname], ["node", "node"]]
) {
  // Bun runs the TypeScript source with its Web Worker; Node runs dist/ (built by scripts/test) with worker_threads.
  Deno.test(`sharded LLM under ${runtime}: same tokens as in-process, and the process ends after dispose`, async () => {
    const out = await new Deno.Command(command, {
      args: ["tests/smoke/sharded_llm.mjs"],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    assert(out.success, `${runtime} failed: ${new TextDecoder().decode(out.stderr)}`);
    const { sharded, single } = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
    assert(single.length > 0);
    assertEquals(sharded, single);
  });
}
