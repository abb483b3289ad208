/**
 * Memory accounting before anything is allocated: from config.json and the safetensors headers (plus the requested
 * quantisation) the bytes each part of the model will hold once loaded, what one request adds (KV cache for its
 * context, the vision tower's activations for T frames, the LLM's prefill activations, logits), how many LLM
 * shards (workers, one WASM instance each) that takes, how many vision frame workers run beside them (each with its
 * own copy of the per-frame vision weights, vision_split.ts), and whether it fits:
 *
 * - every WASM instance: 4 GiB (wasm32) minus `headroomBytes` for allocator fragmentation and kernel scratch;
 * - the host: the memory available now (`Deno.systemMemoryInfo().available`, else `os.freemem()`), and `maxBytes`
 *   when given. Host bytes = every instance's bytes + a JS baseline per thread + the loader's transient copy of the
 *   largest tensor.
 *
 * Weight bytes are exact for what the loader keeps (matrices in their stored or quantised dtype, everything else
 * widened to f32, only the tensors inference reads: `needed` in weights.ts); KV caches are exact; activations are
 * estimates of the peak live set (tests/memory_plan.test.ts measures them against a backend's peak).
 * `planMemory` never throws for size: the plan says `fits` and why not; `assertFits` turns that into
 * `ModelError("too_large")`, which `loadModel` raises before it allocates anything.
 */
import type { PPLLaVAConfig } from "./config.ts";
import { ModelError } from "./errors.ts";
import { type LlamaConfig, llamaConfig } from "./llama.ts";
import { shardRanges, shardTensorSpecs } from "./llama_shard.ts";
import type { TensorStore } from "./safetensors.ts";
import { type QuantDType, storageBytes } from "../backend/backend.ts";
import { quantizationFor, type QuantizedTensor } from "./quant_checkpoint.ts";
import { frameCounts, visionWorkerCount } from "./vision_split.ts";
import { LLM, weightLayout, type WeightPart } from "./weights.ts";

export type WeightPrecision = "f32" | "f16" | "bf16" | QuantDType;

const GiB = 2 ** 30;
const MiB = 2 ** 20;
/** One JS thread's own heap and the kernels module's code, per worker and for the main thread. */
const THREAD_BASELINE = 64 * MiB;

export interface RequestShape {
  /** Frames through the vision tower at once (default min(max_T, 32)). */
  frames?: number;
  /** KV-cache positions: prompt + new tokens (default min(max_position_embeddings, 2048)). */
  contextPositions?: number;
  /** Prefill rows at once (default: contextPositions − 200, the prompt). */
  prefillRows?: number;
  /** Beams (KV caches are per beam; default 1). */
  beams?: number;
}

export interface PlanOptions {
  /** Load-time quantisation (the `quantizationFor` policy, or `quantizePolicy`). */
  quantize?: QuantDType;
  quantizePolicy?: (name: string, mode: QuantDType) => QuantDType | null;
  /** Tensors the checkpoint already holds as q8/q4 (`ModelWeights.quantized`). */
  quantized?: ReadonlyMap<string, QuantizedTensor>;
  /** LLM shards in workers: a count (0 = the LLM on the main instance), or "auto" (default): 0 when everything
   * fits one instance, else the fewest workers that fit (at least `minWorkers`). */
  workers?: number | "auto";
  /** "auto" uses at least this many workers when it shards at all (default 2: both cores). */
  minWorkers?: number;
  /** Frame workers of the vision tower (vision_split.ts), each with its own instance and copy of the per-frame vision
   * weights (the "vision" group): a count (0 = the whole tower on the main instance), or "auto" (default): 1 when
   * the host has a second core, the tower is CLIP's (the SigLIP tower always runs on the main instance), its
   * per-frame work pays for a worker (vision_split.ts `visionWorkerCount`) and the plan still fits; else 0. */
  visionWorkers?: number | "auto";
  /** CPU cores of the host, for "auto" (default `navigator.hardwareConcurrency`). */
  cores?: number;
  instanceBytes?: number;
  headroomBytes?: number;
  /** Host memory the model may use (default: available now). */
  hostBytes?: number;
  /** An extra cap on the host bytes (a deployment's budget). */
  maxBytes?: number;
  featuresCacheBytes?: number;
  request?: RequestShape;
}

export interface TensorGroup {
  /** vision, btadapter, projector, clip_text, llm.embed, llm.layers, llm.norm, llm.lm_head, other. */
  name: string;
  tensors: number;
  elements: number;
  /** Stored dtype(s) → loaded precision(s), e.g. "F16 → q4". */
  precision: string;
  bytes: number;
}

export interface InstancePlan {
  /** "main", "shard i" or "vision i". */
  name: string;
  weightBytes: number;
  kvCacheBytes: number;
  activationBytes: number;
  /** The vision-features cache bound (main only). */
  cacheBytes: number;
  /** weights + KV + activations + cache. */
  totalBytes: number;
}

export interface MemoryPlan {
  groups: TensorGroup[];
  /** 0: the LLM runs on the main instance. */
  workers: number;
  /** 0: the whole vision tower runs on the main instance; else its CLIP layers are split by frames over the main
   * instance and this many workers (the BT-Adapter stays on the main instance). */
  visionWorkers: number;
  /** Frames of the request on each part of the vision tower: the main instance first, then each vision worker. */
  visionFrames: number[];
  instances: InstancePlan[];
  request: Required<RequestShape> & { visionActivationBytes: number; logitsBytes: number };
  limits: { instanceBytes: number; hostBytes: number; maxBytes?: number };
  hostTotalBytes: number;
  fits: boolean;
  problems: string[];
}

/** What a tensor becomes once loaded: q8/q4 as stored or as the quantisation policy says, other matrices in their
 * stored dtype, everything else widened to f32 (layers.ts `Params.matrix` / `vector`). */
export function loadedPrecision(
  name: string,
  rank: number,
  stored: string,
  quantize?: QuantDType,
  quantized?: QuantizedTensor,
  policy: (name: string, mode: QuantDType) => QuantDType | null = quantizationFor,
): WeightPrecision {
  if (quantized) return quantized.dtype;
  const matrix = name.endsWith(".weight") && rank >= 2 && !name.includes("position_embedding") &&
    !name.includes("time_embed");
  if (!matrix) return "f32";
  const target = quantize ? policy(name, quantize) : null;
  if (target) return target;
  return stored === "F16" ? "f16" : stored === "BF16" ? "bf16" : "f32";
}

function groupOf(name: string, part: WeightPart): string {
  if (name === "image_newline") return "projector";
  if (part !== "llm") return part;
  if (name.includes(".layers.")) return "llm.layers";
  if (name.includes("embed_tokens")) return "llm.embed";
  if (name.includes("lm_head")) return "llm.lm_head";
  return "llm.norm";
}

export function hostAvailableBytes(): number {
  const deno = (globalThis as { Deno?: { systemMemoryInfo?: () => { available: number } } }).Deno;
  try {
    if (deno?.systemMemoryInfo) return deno.systemMemoryInfo().available;
  } catch {
    // no --allow-sys: fall through
  }
  const proc = (globalThis as { process?: { getBuiltinModule?: (m: string) => { freemem(): number } } }).process;
  const os = proc?.getBuiltinModule?.("node:os");
  return os ? os.freemem() : 8 * GiB;
}

export function planMemory(config: PPLLaVAConfig, store: TensorStore, options: PlanOptions = {}): MemoryPlan {
  const layout = weightLayout(config);
  const llm = llamaConfig(config);
  const q = options.quantize;
  const instanceBytes = (options.instanceBytes ?? 4 * GiB) - (options.headroomBytes ?? 256 * MiB);
  const request = requestShape(config, options.request);

  // Weights per group, as loaded.
  const groups = new Map<string, TensorGroup & { dtypes: Set<string> }>();
  let largestRaw = 0;
  const pre = options.quantized ?? new Map<string, QuantizedTensor>();
  const precisionOf = (name: string, shape: readonly number[]) =>
    loadedPrecision(name, shape.length, store.info(name).dtype, q, pre.get(name), options.quantizePolicy);
  for (const [name, expected] of layout) {
    // position_embedding_res is optional but loaded when present; logit_scale is read to the host, not uploaded.
    if (!store.has(name) || (!expected.needed && !name.endsWith("position_embedding_res"))) continue;
    if (name.endsWith("logit_scale")) continue;
    if (name === `${LLM}.lm_head.weight` && config.llm.tieWordEmbeddings) continue;
    const info = store.info(name);
    const shape = expected.shape;
    const elements = shape.reduce((a, b) => a * b, 1);
    largestRaw = Math.max(largestRaw, info.end - info.begin);
    const precision = precisionOf(name, shape);
    const key = groupOf(name, expected.part);
    const g = groups.get(key) ?? { name: key, tensors: 0, elements: 0, precision: "", bytes: 0, dtypes: new Set() };
    g.tensors++;
    g.elements += elements;
    g.bytes += storageBytes(precision, shape.length === 0 ? [1] : shape);
    g.dtypes.add(`${pre.has(name) ? pre.get(name)!.dtype : info.dtype} → ${precision}`);
    groups.set(key, g);
  }
  // The extended CLIP position table is built from two loaded ones (clip_text.ts loadPositions).
  const clipText = groups.get("clip_text");
  if (
    clipText && config.extendClip &&
    store.has(`multi_modal_projector.clip_text_model.embeddings.position_embedding_res`)
  ) {
    clipText.bytes += config.clipText.positions * config.clipText.hiddenSize * 4;
  }
  const groupList = [...groups.values()].map(({ dtypes, ...g }) => ({ ...g, precision: [...dtypes].join(", ") }));
  const sum = (...names: string[]) => groupList.filter((g) => names.includes(g.name)).reduce((a, g) => a + g.bytes, 0);

  const visionActivationBytes = visionActivations(config, request.frames);
  const logitsBytes = llm.vocabSize * 4 * request.beams;
  const mainFixed = sum("vision", "btadapter", "projector", "clip_text", "llm.embed");
  const cache = options.featuresCacheBytes ?? 256 * MiB;
  const inProcess: InstancePlan = instance(
    "main",
    mainFixed + sum("llm.layers", "llm.norm", "llm.lm_head"),
    kvBytes(llm, llm.kvHeads, request),
    Math.max(visionActivationBytes, llmActivations(llm, request, 1) + logitsBytes),
    cache,
  );

  const planFor = (workers: number): InstancePlan[] => {
    if (workers === 0) return [inProcess];
    const main = instance("main", mainFixed, 0, visionActivationBytes, cache);
    const shards = shardRanges(llm, workers).map((r, i) => {
      const weights = shardTensorSpecs(llm, r, LLM, config.llm.tieWordEmbeddings).reduce((total, spec) => {
        const full = layout.get(spec.source)?.shape ?? store.info(spec.source).shape;
        const shape = !spec.take
          ? full
          : full.length === 1
          ? [spec.take.range[1] - spec.take.range[0]]
          : spec.take.axis === 0
          ? [spec.take.range[1] - spec.take.range[0], full[1]]
          : [full[0], spec.take.range[1] - spec.take.range[0]];
        const precision = spec.kind === "vector" ? "f32" : precisionOf(spec.source, full);
        return total + storageBytes(precision, shape);
      }, 0);
      return instance(
        `shard ${i}`,
        weights,
        kvBytes(llm, r.kvHeads[1] - r.kvHeads[0], request),
        llmActivations(llm, request, workers) + (r.vocab[1] - r.vocab[0]) * 4 * request.beams,
      );
    });
    return [main, ...shards];
  };

  const hostBytes = options.hostBytes ?? hostAvailableBytes();
  const hostLimit = Math.min(hostBytes, options.maxBytes ?? Infinity);
  const hostTotal = (instances: InstancePlan[]) =>
    instances.reduce((a, i) => a + i.totalBytes + THREAD_BASELINE, 0) + 2 * largestRaw;
  const fitsInstances = (instances: InstancePlan[]) => instances.every((i) => i.totalBytes <= instanceBytes);
  // Each vision worker: the per-frame weights, and the activations of its frames (the whole tower's estimate for
  // that many frames, an upper bound: it is calibrated on the BT layer, which the workers do not run).
  const visionPlan = (count: number): InstancePlan[] =>
    frameCounts(request.frames, count).slice(1).map((frames, i) =>
      instance(`vision ${i}`, sum("vision"), 0, visionActivations(config, frames))
    );

  let workers: number;
  if (options.workers === undefined || options.workers === "auto") {
    workers = 0;
    if (!fitsInstances(planFor(0))) {
      workers = Math.min(Math.max(options.minWorkers ?? 2, 1), llm.kvHeads);
      while (workers < llm.kvHeads && !fitsInstances(planFor(workers))) workers++;
    }
  } else {
    workers = options.workers;
  }
  const frameWeights = groupList.find((g) => g.name === "vision")?.elements ?? 0;
  const cores = options.cores ?? (globalThis.navigator?.hardwareConcurrency || 1);
  const visionWorkers = visionWorkerCount(config, options.visionWorkers ?? "auto", frameWeights, cores, (count) => {
    const instances = [...planFor(workers), ...visionPlan(count)];
    return fitsInstances(instances) && hostTotal(instances) <= hostLimit;
  });
  const instances = [...planFor(workers), ...visionPlan(visionWorkers)];
  const problems: string[] = [];
  for (const i of instances) {
    if (i.totalBytes > instanceBytes) {
      problems.push(
        `${i.name} needs ${fmt(i.totalBytes)} (weights ${fmt(i.weightBytes)}, KV cache ${fmt(i.kvCacheBytes)}, ` +
          `activations ${fmt(i.activationBytes)}), over one WASM instance's ${fmt(instanceBytes)}` +
          (i.name.startsWith("vision")
            ? "; lower the request's frames"
            : workers === 0
            ? "; shard the LLM over workers (loadModel(dir, { workers }))"
            : "; use more workers or quantise"),
      );
    }
  }
  const total = hostTotal(instances);
  if (total > hostLimit) {
    problems.push(
      `the model and one request need ${fmt(total)} of host memory, over the ${
        options.maxBytes !== undefined && options.maxBytes < hostBytes ? "maxBytes limit" : "memory available"
      } ${fmt(hostLimit)}` + (q === "q4" ? "" : "; quantise (q8/q4) or lower the request's context and frames"),
    );
  }
  return {
    groups: groupList,
    workers,
    visionWorkers,
    visionFrames: frameCounts(request.frames, visionWorkers),
    instances,
    request: { ...request, visionActivationBytes, logitsBytes },
    limits: { instanceBytes, hostBytes, maxBytes: options.maxBytes },
    hostTotalBytes: total,
    fits: problems.length === 0,
    problems,
  };
}

/** `ModelError("too_large")` naming every limit the plan breaks. */
export function assertFits(plan: MemoryPlan): void {
  if (!plan.fits) throw new ModelError("too_large", `the model does not fit: ${plan.problems.join("; ")}`);
}

function instance(
  name: string,
  weightBytes: number,
  kvCacheBytes: number,
  activationBytes: number,
  cacheBytes = 0,
): InstancePlan {
  const totalBytes = weightBytes + kvCacheBytes + activationBytes + cacheBytes;
  return { name, weightBytes, kvCacheBytes, activationBytes, cacheBytes, totalBytes };
}

function requestShape(config: PPLLaVAConfig, r: RequestShape = {}): Required<RequestShape> {
  const contextPositions = r.contextPositions ?? Math.min(config.llm.maxPositionEmbeddings, 2048);
  return {
    frames: r.frames ?? Math.min(config.vision.maxT, 32),
    contextPositions,
    prefillRows: r.prefillRows ?? Math.max(1, contextPositions - 200),
    beams: r.beams ?? 1,
  };
}

/** K and V, f32, (beams, kvHeads, context, headDim) per layer (kv_cache.ts). */
function kvBytes(c: LlamaConfig, kvHeads: number, r: Required<RequestShape>): number {
  return c.numLayers * 2 * r.beams * kvHeads * r.contextPositions * c.headDim * 4;
}

/** Peak live set of one LLM layer in prefill on one of `shards` shards: the residual, norm, q/k/v, attention
 * scores (heads × L × L), the MLP's gate/up/product, and the partial outputs. */
function llmActivations(c: LlamaConfig, r: Required<RequestShape>, shards: number): number {
  const rows = r.prefillRows;
  const heads = Math.ceil(c.heads / Math.max(shards, 1));
  const inner = Math.ceil(c.intermediateSize / Math.max(shards, 1));
  return 4 * (rows * (6 * c.hiddenSize + 4 * heads * c.headDim + 3 * inner) + heads * rows * rows);
}

/** Peak live set of the vision tower on `frames` frames (one scope per layer and per BT step, vision.ts): the
 * pixels (T, 3, P²) and, per token of the (T·S) stream, about 24 D-sized tensors (the carried streams, LayerNorm,
 * q/k/v, attention, the BT concat/permute copies) and the MLP's two I-sized ones. Calibrated on the BT layer, the
 * largest; tests/memory_plan.test.ts checks it bounds the measured peak within 4×. */
export function visionActivations(config: PPLLaVAConfig, frames: number): number {
  const v = config.vision;
  const s = v.gridSize * v.gridSize + 1;
  const pixels = 3 * v.imageSize * v.imageSize;
  return 4 * frames * (pixels + s * (24 * v.hiddenSize + 2 * v.intermediateSize));
}

export function fmt(bytes: number): string {
  return bytes >= GiB ? `${(bytes / GiB).toFixed(2)} GiB` : `${(bytes / MiB).toFixed(1)} MiB`;
}

/** The plan as a small table (`ppllava plan DIR`, `ask --verbose`). */
export function formatPlan(plan: MemoryPlan): string {
  const lines = ["weights (as loaded):"];
  for (const g of plan.groups) {
    lines.push(
      `  ${g.name.padEnd(12)} ${String(g.tensors).padStart(5)} tensors ${fmt(g.bytes).padStart(11)}  ${g.precision}`,
    );
  }
  const r = plan.request;
  lines.push(
    `request: ${r.frames} frames, ${r.contextPositions} positions, ${r.beams} beam(s); vision activations ${
      fmt(r.visionActivationBytes)
    }`,
  );
  lines.push(plan.workers === 0 ? "LLM on the main instance" : `LLM in ${plan.workers} workers (tensor parallel)`);
  lines.push(
    plan.visionWorkers === 0
      ? "vision tower on the main instance"
      : `vision tower: CLIP layers split by frames over the main instance and ${plan.visionWorkers} worker(s) ` +
        `(${plan.visionFrames.join(" + ")} frames), BT-Adapter on the main instance`,
  );
  for (const i of plan.instances) {
    lines.push(
      `  ${i.name.padEnd(8)} weights ${fmt(i.weightBytes).padStart(11)}  KV ${fmt(i.kvCacheBytes).padStart(11)}  ` +
        `activations ${fmt(i.activationBytes).padStart(11)}  total ${fmt(i.totalBytes).padStart(11)}`,
    );
  }
  lines.push(
    `limits: ${fmt(plan.limits.instanceBytes)} per instance, host ${fmt(plan.hostTotalBytes)} of ${
      fmt(Math.min(plan.limits.hostBytes, plan.limits.maxBytes ?? Infinity))
    }`,
  );
  lines.push(plan.fits ? "fits" : `does not fit: ${plan.problems.join("; ")}`);
  return lines.join("\n");
}
