/**
 * The vision tower's main stream split by frames (spec §3.3: every CLIP layer works on each frame alone). W workers,
 * each with its own WASM instance holding a copy of the per-frame weights (`FrameWeights`: the embeddings and the
 * CLIP layers below the feature index, the memory plan's "vision" group), run the frames after the main thread's
 * while the main thread runs its own; the BT-Adapter then runs on the main thread over every frame (vision.ts).
 *
 * One forward is a few messages per worker, all posted at once: `embed` (its frames' pixels), then `advance` to each
 * hidden state the main thread needs (the BT layers' inputs and the feature's; every one with a trace), each
 * answered with the worker's x there. The worker answers them in order, so it runs ahead while the main thread runs
 * the BT layers, and the last request frees the run.
 *
 * Frames: the main thread keeps ⌊N/(W+1)⌋ (at least 1: it also runs the BT-Adapter) and the workers split the rest
 * evenly, in order (`frameCounts`). A worker that crashes or stalls ends the split: every worker is terminated, and
 * the forward in flight and every later one fail with its `WorkerError`. `dispose()` terminates them.
 */
import type { QuantDType } from "../backend/backend.ts";
import type { RelaxedChoice } from "../backend/wasm/backend.ts";
import type { RelaxedFormat } from "../backend/wasm/relaxed.ts";
import { RpcWorker, type WorkerError } from "../util/workers.ts";
import type { PPLLaVAConfig } from "./config.ts";
import { ModelError } from "./errors.ts";
import type { Params } from "./layers.ts";
import { type FrameWorkers, type HostTensor, loadFrameWeights, type VisionConfig } from "./vision.ts";
import { sendTensors, splitEvenly, tensorSpecs } from "./worker_tensors.ts";

/** The worker module (vision_worker.ts, or vision_worker.js once built to dist/). */
export const VISION_WORKER_URL = new URL(
  import.meta.url.endsWith(".ts") ? "./vision_worker.ts" : "./vision_worker.js",
  import.meta.url,
);

export interface VisionWorkersOptions {
  workers: number;
  /** A worker silent (no reply, no progress: it reports after every layer) this long during a call is stopped as
   * "stalled"; 0 = never. */
  stallMs: number;
  /** Load-time quantisation, as on the main instance (the default policy quantises no vision tensor). */
  quantize?: QuantDType;
  quantizePolicy?: (name: string, mode: QuantDType) => QuantDType | null;
  /** Each worker's backend: which products run on relaxed SIMD (WasmBackendOptions; loadModel passes its own). */
  relaxed?: RelaxedChoice;
}

export interface FrameWorkerStats {
  tensors: number;
  bytes: number;
  /** The worker instance's linear memory (it only grows). */
  memoryBytes: number;
  /** Seconds the worker has spent running frames, since it started. */
  busySeconds: number;
  /** The weight formats whose products run on relaxed SIMD in this worker (WasmBackend.relaxedFormats). */
  relaxedFormats: readonly RelaxedFormat[];
}

/** "auto" gives the vision tower a worker from this much work per frame (2 FLOP per weight per token of the
 * per-frame part): CLIP-L/14-336 does about 340 GFLOP, so a worker's messages and copies (a few ms, a few MB per
 * frame) are noise; the tiny test towers do 10–15 MFLOP, where they would not be. */
const VISION_WORKER_MIN_FLOPS = 1e9;

/** Frames of each part when N frames are split over the main thread and `workers` workers: the main thread first. */
export function frameCounts(frames: number, workers: number): number[] {
  const local = Math.max(1, Math.floor(frames / (workers + 1)));
  return [local, ...splitEvenly(Math.max(0, frames - local), workers).map(([from, to]) => to - from)];
}

/** The vision workers asked for (checked), or what "auto" picks: 1 for a CLIP tower whose per-frame part (of
 * `frameWeights` weights) does at least VISION_WORKER_MIN_FLOPS per frame, on a host with a second core, when
 * `fits(1)` (the whole plan with one worker); else 0. The SigLIP tower always runs on the main instance. */
export function visionWorkerCount(
  config: PPLLaVAConfig,
  asked: number | "auto",
  frameWeights: number,
  cores: number,
  fits: (count: number) => boolean,
): number {
  const siglip = config.vision.arch === "siglip";
  if (asked !== "auto") {
    if (!(Number.isInteger(asked) && asked >= 0)) {
      throw new ModelError("bad_input", `visionWorkers must be "auto" or an integer ≥ 0, got ${asked}`);
    }
    if (siglip && asked > 0) {
      throw new ModelError("bad_input", "the SigLIP vision tower runs on the main instance only (visionWorkers: 0)");
    }
    return asked;
  }
  const v = config.vision;
  const flopsPerFrame = 2 * frameWeights * (v.gridSize * v.gridSize + 1);
  return !siglip && cores >= 2 && flopsPerFrame >= VISION_WORKER_MIN_FLOPS && fits(1) ? 1 : 0;
}

export class VisionWorkers implements FrameWorkers {
  #failure: WorkerError | null = null;
  #runs = 0;

  private constructor(readonly config: VisionConfig, readonly workers: readonly RpcWorker[]) {
    for (const w of workers) {
      w.onCrash = (error) => {
        this.#failure ??= error;
        for (const other of workers) other.terminate();
      };
    }
  }

  /** Starts the workers and sends each a copy of the per-frame weights (exactly the tensors `loadFrameWeights`
   * reads, loaded as `params` loads them). */
  static async load(params: Params, config: VisionConfig, options: VisionWorkersOptions): Promise<VisionWorkers> {
    const workers: RpcWorker[] = [];
    try {
      for (let i = 0; i < options.workers; i++) {
        workers.push(await RpcWorker.spawn(VISION_WORKER_URL, { label: `vision-${i}`, stallMs: options.stallMs }));
      }
      await Promise.all(workers.map((w) => w.call("init", { config, relaxed: options.relaxed ?? {} })));
      const specs = await tensorSpecs((source) => loadFrameWeights(source, config));
      await sendTensors(params, workers, workers.map(() => specs), options.quantize, options.quantizePolicy);
      await Promise.all(workers.map((w) => w.call("assemble")));
      return new VisionWorkers(config, workers);
    } catch (error) {
      for (const w of workers) w.terminate();
      throw error;
    }
  }

  get failed(): WorkerError | null {
    return this.#failure ?? this.workers.find((w) => w.failed)?.failed ?? null;
  }

  localFrames(frames: number): number {
    return frameCounts(frames, this.workers.length)[0];
  }

  start(pixels: Float32Array, frames: number, wanted: readonly number[]): (k: number) => Promise<HostTensor[]> {
    const failure = this.failed;
    if (failure) throw failure;
    const id = ++this.#runs;
    const size = this.config.imageSize;
    const frameValues = 3 * size * size;
    const last = wanted[wanted.length - 1];
    const replies = new Map<number, Promise<HostTensor>[]>(wanted.map((k) => [k, []]));
    splitEvenly(frames, this.workers.length).forEach(([from, to], i) => {
      if (to === from) return;
      const send = (k: number, op: string, args: object, transfer?: ArrayBuffer[]) => {
        const reply = this.workers[i].call<HostTensor>(op, { id, last: k === last, ...args }, transfer);
        reply.catch(() => {}); // awaited through `at`, or dropped when the forward failed before it got there
        replies.get(k)?.push(reply);
      };
      const part = pixels.slice(from * frameValues, to * frameValues);
      send(0, "embed", { pixels: part, shape: [to - from, 3, size, size], reply: wanted.includes(0) }, [part.buffer]);
      for (const k of wanted) if (k > 0) send(k, "advance", { to: k });
    });
    return async (k) => {
      try {
        return await Promise.all(replies.get(k) ?? []);
      } catch (error) {
        throw this.#failure ?? error;
      }
    };
  }

  /** Tensor bytes, instance memory and busy time of every worker. */
  async stats(): Promise<FrameWorkerStats[]> {
    if (this.#failure) throw this.#failure;
    try {
      return await Promise.all(this.workers.map((w) => w.call<FrameWorkerStats>("stats")));
    } catch (error) {
      throw this.#failure ?? error;
    }
  }

  /** Terminates every worker (idempotent). */
  dispose(): void {
    for (const w of this.workers) w.terminate();
  }
}
