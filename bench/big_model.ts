/**
 * Big models on this host, in one run (issue 6): `deno run -A bench/main.ts big_model`.
 *
 * 1. Memory bandwidth measured now: `ppl_bandwidth_read` (16-byte SIMD loads over 1 GiB) in 1 worker, then in 2
 *    workers at once (each its own instance and buffer): the roofline of decoding. The 2-worker probe runs again after
 *    the 7B decodes, and the roofline is the higher of the two: on a shared host one probe read 27 GB/s and another
 *    51 GB/s within the hour (docs/big-models.md), and a low reading would flatter the percentage.
 * 2. The real Vicuna-7B shapes (spec §2; seeded random weights from `syntheticCheckpoint`, loaded through the same
 *    path as files) at q4 and q8, as `loadModel` plans them by default: load time and peak RSS (VmHWM), prefill of 64
 *    tokens, decode tokens/s against the roofline = bandwidth / bytes read per token (every LLM weight once + the KV
 *    cache).
 * 3. The second core: a model that fits one instance (hidden 2048, 8 layers, MLP 5504, q4) with the LLM in 1 and in
 *    2 workers (and on the main thread), decode and prefill.
 * 4. The vision tower of the 7B shapes (CLIP-L 336 + BT-Adapter, f16) seconds per frame at T = VISION_FRAMES on 1
 *    core (the main thread), on 2 (its frames split with one vision worker) and on 1 with its linears in q8
 *    (`quantizeVision`), interleaved in one runBench.
 * Writes bench/results/big_model*.json.
 */
import { hostInfo, runBench } from "./harness.ts";
import { loadKernels } from "../src/backend/wasm/loader.ts";
import { relaxedSimdSupport } from "../src/backend/wasm/relaxed.ts";
import { loadModel, type PPLLaVAModel } from "../src/model/model.ts";
import { ShardedLlama, WORKER_URL } from "../src/model/sharded_llama.ts";
import { LlamaSession } from "../src/model/llama.ts";
import { syntheticCheckpoint, VICUNA_7B_CONFIG } from "../src/model/synthetic_checkpoint.ts";
import { fmt, formatPlan } from "../src/model/memory_plan.ts";
import type { VisionTower } from "../src/model/vision.ts";
import type { VisionWorkers } from "../src/model/vision_split.ts";
import { RpcWorker } from "../src/util/workers.ts";
import type { BandwidthSample } from "../src/backend/wasm/bandwidth.ts";

const GiB = 2 ** 30;
const PREFILL = 64;
const DECODE_REPS = 8;
/** Frames of the vision timing: 2 + 2 with a worker (the main thread also runs the BT-Adapter on all 4). */
const VISION_FRAMES = 4;

function peakRssBytes(): number | undefined {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
  } catch {
    return undefined;
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Aggregate read bandwidth (bytes/s) of `workers` workers reading their own 1 GiB buffers at the same time. */
export async function bandwidth(workers: number): Promise<{ bytesPerSecond: number; perWorker: number[] }> {
  const pool = await Promise.all(
    Array.from({ length: workers }, (_, i) => RpcWorker.spawn(WORKER_URL, { label: `bw-${i}` })),
  );
  try {
    const samples = await Promise.all(pool.map((w) => w.call<BandwidthSample>("bandwidth", { bytes: GiB, passes: 7 })));
    const perWorker = samples.map((s) => s.bytes / median(s.seconds.slice(1)));
    return { bytesPerSecond: perWorker.reduce((a, b) => a + b, 0), perWorker };
  } finally {
    for (const w of pool) w.terminate();
  }
}

/** Speed-up of `workers` workers each running the same f32 matmuls over one worker: how much of a second core this
 * machine gives right now (other processes share it). */
export async function computeProbe(): Promise<number> {
  const run = async (workers: number) => {
    const pool = await Promise.all(
      Array.from({ length: workers }, (_, i) => RpcWorker.spawn(WORKER_URL, { label: `cpu-${i}` })),
    );
    try {
      const start = performance.now();
      await Promise.all(pool.map((w) => w.call<number>("matmulProbe", { n: 512, reps: 20 })));
      return (performance.now() - start) / 1000;
    } finally {
      for (const w of pool) w.terminate();
    }
  };
  const one = await run(1);
  const two = await run(2);
  return (2 * one) / two;
}

/** A new KV-cache session of the model's LLM (in-process or sharded) and the embeddings of `tokens` fixed ids. */
export function openSession(model: PPLLaVAModel, capacity: number, tokens: number) {
  const b = model.backend;
  const ids = Int32Array.from({ length: tokens }, (_, i) => 100 + ((i * 7919) % 30000));
  const h = model.llm.config.hiddenSize;
  const open = () =>
    model.llm instanceof ShardedLlama ? model.llm.session(b, capacity) : new LlamaSession(b, model.llm, capacity);
  return { open, embeds: b.scope(() => b.reshape(model.llm.embed(b, ids), [1, tokens, h])) };
}

/** Prefill `PREFILL` tokens, then time single-token steps; returns seconds. */
async function llmTimings(model: PPLLaVAModel, label: string) {
  const { open, embeds } = openSession(model, PREFILL + DECODE_REPS + 4, PREFILL);
  let session = open();
  const prefill = await runBench({
    name: `big_model-prefill-${label}`,
    cases: [{
      label: `prefill ${PREFILL} tokens, ${label}`,
      run: async () => {
        session.dispose();
        session = open();
        await session.run(embeds);
      },
    }],
    reps: 1,
    warmup: 0,
    work: { amount: PREFILL, unit: "token" },
  });
  let token = 1;
  const busy = async () => model.llm instanceof ShardedLlama ? (await model.llm.stats()).map((s) => s.busySeconds) : [];
  const busyBefore = await busy();
  const wallBefore = performance.now();
  const decode = await runBench({
    name: `big_model-decode-${label}`,
    cases: [{ label: `decode 1 token, ${label}`, run: () => session.step([token++ % 30000]) }],
    reps: DECODE_REPS,
    warmup: 1,
    work: { amount: 1, unit: "token" },
  });
  const wall = (performance.now() - wallBefore) / 1000;
  // Fraction of the decode wall time each shard computed; the rest it waited (messages, the main thread's sums,
  // the other shard).
  const busyFraction = (await busy()).map((s, i) => (s - busyBefore[i]) / wall);
  session.dispose();
  embeds.dispose();
  return {
    prefillS: prefill.cases[0].medianS,
    decodeS: decode.cases[0].medianS,
    position: PREFILL + DECODE_REPS / 2,
    busyFraction,
  };
}

/** Bytes one decode step reads: every LLM matrix (as loaded) once, lm_head included, and the KV cache so far. */
function bytesPerToken(model: PPLLaVAModel, position: number): number {
  const plan = model.plan!;
  const llm = plan.groups.filter((g) => g.name === "llm.layers" || g.name === "llm.lm_head");
  const c = model.llm.config;
  const kv = c.numLayers * 2 * c.kvHeads * position * c.headDim * 4;
  return llm.reduce((a, g) => a + g.bytes, 0) + kv;
}

/** `roofline`: the 2-worker read bandwidth (bytes/s; main() recomputes the percentage with the later probe too).
 * `relaxedSimd` false: every product in the kernels module (the comparison of bench/relaxed_simd.ts). */
export async function sevenB(quantize: "q4" | "q8", roofline: number, relaxedSimd = true) {
  const start = performance.now();
  const model = await loadModel(syntheticCheckpoint(VICUNA_7B_CONFIG), {
    quantize,
    featuresCacheBytes: 0,
    relaxedSimd,
  });
  const loadS = (performance.now() - start) / 1000;
  const rss = peakRssBytes();
  console.log(`\n# Vicuna-7B shapes, ${quantize}: loaded in ${loadS.toFixed(1)} s, peak RSS ${rss ? fmt(rss) : "?"}`);
  console.log(formatPlan(model.plan!));
  try {
    // Tensor bytes vs the linear memory each shard's instance grew to (allocator slack, load-time quantisation).
    const shards = await (model.llm as ShardedLlama).stats();
    console.log(
      shards.map((s, i) => `shard ${i}: tensors ${fmt(s.bytes)}, instance memory ${fmt(s.memoryBytes)}`).join("\n"),
    );
    const t = await llmTimings(model, `7b-${quantize}-w${model.plan!.workers}`);
    const perToken = bytesPerToken(model, t.position);
    const tokensPerS = 1 / t.decodeS;
    const rooflineTokensPerS = roofline / perToken;
    return {
      quantize,
      workers: model.plan!.workers,
      visionWorkers: model.plan!.visionWorkers,
      loadS,
      peakRssBytes: rss,
      plannedBytes: model.plan!.instances.map((i) => ({ name: i.name, bytes: i.totalBytes })),
      shardTensorBytes: shards.map((s) => s.bytes),
      shardInstanceMemoryBytes: shards.map((s) => s.memoryBytes),
      prefillTokensPerS: PREFILL / t.prefillS,
      decodeTokensPerS: tokensPerS,
      bytesPerToken: perToken,
      rooflineTokensPerS,
      percentOfRoofline: (100 * tokensPerS) / rooflineTokensPerS,
      decodeBusyFraction: t.busyFraction,
    };
  } finally {
    model.dispose();
  }
}

/** A model that fits one instance (LLM ≈ 0.4 B parameters), vision as small as the tiny model's. */
export async function midConfig() {
  const fs = await import("node:fs/promises");
  const tiny = JSON.parse(await fs.readFile(new URL("../models/ppllava-tiny/config.json", import.meta.url), "utf8"));
  return {
    ...tiny,
    text_config: {
      ...tiny.text_config,
      hidden_size: 2048,
      intermediate_size: 5504,
      num_hidden_layers: 8,
      num_attention_heads: 16,
      num_key_value_heads: 16,
    },
  };
}

export async function secondCore() {
  const config = await midConfig();
  const out: Record<string, { prefillTokensPerS: number; decodeTokensPerS: number; decodeBusyFraction: number[] }> = {};
  for (const workers of [1, 2, 0]) {
    const model = await loadModel(syntheticCheckpoint(config), { quantize: "q4", workers, featuresCacheBytes: 0 });
    try {
      const t = await llmTimings(model, `mid-q4-w${workers}`);
      out[workers === 0 ? "main thread" : `${workers} worker(s)`] = {
        prefillTokensPerS: PREFILL / t.prefillS,
        decodeTokensPerS: 1 / t.decodeS,
        decodeBusyFraction: t.busyFraction,
      };
    } finally {
      model.dispose();
    }
  }
  return out;
}

/** The 7B shapes' vision tower (CLIP-L/14-336 + BT-Adapter, f16) with the LLM cut to one small layer (not timed),
 * loaded twice: on the main thread alone, and with its frames split with one vision worker. */
export async function visionCores() {
  const text = { hidden_size: 512, intermediate_size: 1376, num_hidden_layers: 1, num_attention_heads: 4 };
  const config = {
    ...VICUNA_7B_CONFIG,
    text_config: { ...VICUNA_7B_CONFIG.text_config, ...text, num_key_value_heads: 4 },
  };
  const one = await loadModel(syntheticCheckpoint(config), { visionWorkers: 0, featuresCacheBytes: 0 });
  const two = await loadModel(syntheticCheckpoint(config), { visionWorkers: 1, featuresCacheBytes: 0 });
  // The tower's linears in q8 (loadModel's quantizeVision, docs/quantization.md), on the main thread.
  const q8 = await loadModel(syntheticCheckpoint(config), {
    visionWorkers: 0,
    featuresCacheBytes: 0,
    quantizeVision: "q8",
  });
  try {
    const s = one.vision.config.imageSize;
    const pixels = new Float32Array(VISION_FRAMES * 3 * s * s).map((_, i) => Math.sin(i * 1e-3));
    const features = (model: PPLLaVAModel) => async () =>
      (await model.features({ pixels, contentKey: `bench-${performance.now()}` })).dispose();
    // One frame through the q8 tower first: its products' first long calls run before V8 has optimised them.
    (await q8.features({ pixels: pixels.subarray(0, 3 * s * s), contentKey: "warm-up" })).dispose();
    const split = (two.vision as VisionTower).workers as VisionWorkers;
    const frames = split.localFrames(VISION_FRAMES);
    const busyBefore = (await split.stats())[0].busySeconds;
    const tower = `vision tower (CLIP-L 336 + BT-Adapter), T=${VISION_FRAMES}`;
    const result = await runBench({
      name: "big_model-vision-clip-l-bt",
      cases: [
        { label: `${tower}, 2 cores (${frames} + ${VISION_FRAMES - frames} frames)`, run: features(two) },
        { label: `${tower}, 1 core (main thread)`, run: features(one) },
        { label: `${tower}, 1 core (main thread), linears in q8`, run: features(q8) },
      ],
      reps: 1,
      warmup: 0,
      work: { amount: VISION_FRAMES, unit: "frame" },
    });
    const [twoCores, oneCore, oneCoreQ8] = result.cases;
    const workerBusyS = (await split.stats())[0].busySeconds - busyBefore;
    const out = {
      frames: VISION_FRAMES,
      split: [frames, VISION_FRAMES - frames],
      oneCoreSPerFrame: oneCore.medianS / VISION_FRAMES,
      twoCoresSPerFrame: twoCores.medianS / VISION_FRAMES,
      speedup: oneCore.medianS / twoCores.medianS,
      oneCoreQ8SPerFrame: oneCoreQ8.medianS / VISION_FRAMES,
      q8Speedup: oneCore.medianS / oneCoreQ8.medianS,
      /** Seconds the worker computed ÷ the 2-core wall time (the rest it waited, or had finished). */
      workerBusyFraction: workerBusyS / twoCores.samplesS.reduce((a, b) => a + b, 0),
    };
    console.log(
      `\n# vision tower, T=${VISION_FRAMES}: 1 core ${out.oneCoreSPerFrame.toFixed(2)} s/frame, 2 cores ${
        out.twoCoresSPerFrame.toFixed(2)
      } s/frame: ${out.speedup.toFixed(2)}× (worker busy ${
        (100 * out.workerBusyFraction).toFixed(0)
      }% of the time); 1 core with q8 linears ${out.oneCoreQ8SPerFrame.toFixed(2)} s/frame: ${
        out.q8Speedup.toFixed(2)
      }×`,
    );
    return out;
  } finally {
    one.dispose();
    two.dispose();
    q8.dispose();
  }
}

export async function main(): Promise<void> {
  const bw1 = await bandwidth(1);
  const bw2 = await bandwidth(2);
  console.log(
    `\n# read bandwidth: 1 worker ${(bw1.bytesPerSecond / 1e9).toFixed(1)} GB/s, 2 workers ${
      (bw2.bytesPerSecond / 1e9).toFixed(1)
    } GB/s (${bw2.perWorker.map((b) => (b / 1e9).toFixed(1)).join(" + ")})`,
  );
  const q4 = await sevenB("q4", bw2.bytesPerSecond);
  const q8 = await sevenB("q8", bw2.bytesPerSecond);
  const bw2After = await bandwidth(2);
  const roofline = Math.max(bw2.bytesPerSecond, bw2After.bytesPerSecond);
  console.log(
    `\n# read bandwidth after the 7B decodes: 2 workers ${(bw2After.bytesPerSecond / 1e9).toFixed(1)} GB/s; roofline ${
      (roofline / 1e9).toFixed(1)
    } GB/s (the higher probe)`,
  );
  for (const r of [q4, q8]) {
    r.rooflineTokensPerS = roofline / r.bytesPerToken;
    r.percentOfRoofline = (100 * r.decodeTokensPerS) / r.rooflineTokensPerS;
    console.log(
      `# 7B ${r.quantize}: decode ${r.decodeTokensPerS.toFixed(2)} tokens/s = ${r.percentOfRoofline.toFixed(1)}% of ${
        r.rooflineTokensPerS.toFixed(2)
      }`,
    );
  }
  const mid = await secondCore();
  const vision = await visionCores();
  const cpuSpeedup = await computeProbe();
  console.log(`\n# compute probe: 2 workers do ${cpuSpeedup.toFixed(2)}× the f32 matmul work of 1 in the same time`);
  const one = mid["1 worker(s)"];
  const two = mid["2 worker(s)"];
  const summary = {
    name: "big_model",
    date: new Date().toISOString(),
    host: await hostInfo(),
    /** Which quantised products ran on relaxed SIMD (the workers' instances decide alike: same runtime, same CPU). */
    relaxedSimd: (await relaxedSimdSupport(await loadKernels())).reason,
    bandwidth: {
      oneWorkerGBps: bw1.bytesPerSecond / 1e9,
      twoWorkersGBps: bw2.bytesPerSecond / 1e9,
      twoWorkersAfter7bGBps: bw2After.bytesPerSecond / 1e9,
      rooflineGBps: roofline / 1e9,
    },
    vicuna7b: [q4, q8],
    secondCore: {
      model: "hidden 2048, 8 layers, 16 heads, MLP 5504, vocab 32064, q4",
      ...mid,
      decodeSpeedup: two.decodeTokensPerS / one.decodeTokensPerS,
      /** What the machine allowed at that moment: 2 workers' matmul throughput over 1 worker's. */
      computeProbeSpeedup: cpuSpeedup,
      prefillSpeedup: two.prefillTokensPerS / one.prefillTokensPerS,
    },
    visionTower: { tower: "CLIP-L/14-336 + BT-Adapter (depth 4), f16", ...vision },
  };
  console.log("\n# summary\n" + JSON.stringify(summary, null, 2));
  const fs = await import("node:fs/promises");
  await fs.writeFile(new URL("./results/big_model.json", import.meta.url), JSON.stringify(summary, null, 2) + "\n");
}

if (import.meta.main) await main();
