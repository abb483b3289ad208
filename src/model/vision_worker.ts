/**
 * The worker side of the vision tower's frame split (vision_split.ts): one WASM instance holding the per-frame
 * weights (`FrameWeights`, sent once by `sendTensors`), running the main stream of the frames it is given with the
 * same code as the main thread (`embedFrames`, `clipLayer`). A run is `embed` (pixels → hs[0]) and then `advance` to
 * each hidden state the main thread asked for, each answered with x there (transferred); the request marked `last`
 * frees the run, and so does a request that fails.
 */
import type { Tensor } from "../backend/backend.ts";
import { createWasmBackend, type RelaxedChoice, type WasmBackend } from "../backend/wasm/backend.ts";
import { type RequestContext, serveRequests, TEST_HANDLERS, transferring } from "../util/workers.ts";
import { clipLayer } from "./clip_layer.ts";
import { embedFrames, type FrameWeights, loadFrameWeights, type VisionConfig } from "./vision.ts";
import { ReceivedTensors, type TensorMessage, workerStats } from "./worker_tensors.ts";

let backend: WasmBackend | undefined;
let config: VisionConfig | undefined;
let received: ReceivedTensors | undefined;
let weights: FrameWeights | undefined;
/** Each run's x (its frames' main stream) and the hidden state it is at. */
const runs = new Map<number, { x: Tensor; k: number }>();
/** Seconds spent running frames: busy / wall time says how much of the forward this worker carried. */
let busySeconds = 0;

function ready(): { b: WasmBackend; w: FrameWeights } {
  if (!backend || !weights) throw new Error("the vision worker is not loaded yet");
  return { b: backend, w: weights };
}

function stats() {
  return workerStats(backend, busySeconds);
}

function drop(id: number): void {
  runs.get(id)?.x.dispose();
  runs.delete(id);
}

/** Runs `body` on run `id`, then answers with its x when `reply`; `last` (or a failure) frees the run. */
async function step(id: number, last: boolean, reply: boolean, body: (b: WasmBackend, w: FrameWeights) => void) {
  const start = performance.now();
  let free = last;
  try {
    const { b, w } = ready();
    body(b, w);
    const run = runs.get(id);
    if (!run) throw new Error(`no run ${id} in this vision worker`);
    if (!reply) return null;
    const data = await b.download(run.x);
    return transferring({ data, shape: [...run.x.shape] }, [data.buffer as ArrayBuffer]);
  } catch (error) {
    free = true;
    throw error;
  } finally {
    busySeconds += (performance.now() - start) / 1000;
    if (free) drop(id);
  }
}

await serveRequests({
  async init(args: { config: VisionConfig; relaxed: RelaxedChoice }) {
    backend = await createWasmBackend(args.relaxed);
    received = new ReceivedTensors(backend);
    config = args.config;
    return stats();
  },
  tensor: (args: TensorMessage) => received!.receive(args),
  async assemble() {
    weights = await loadFrameWeights(received!, config!);
    return stats();
  },
  stats,
  /** pixels (n, 3, S, S) of this worker's frames → hs[0], kept as run `id`. */
  embed(args: { id: number; last: boolean; pixels: Float32Array; shape: number[]; reply: boolean }) {
    return step(args.id, args.last, args.reply, (b, w) => {
      const x = b.scope(() => embedFrames(b, w, b.upload(args.pixels, args.shape)));
      runs.set(args.id, { x, k: 0 });
    });
  },
  /** Runs CLIP layers until run `id` is at hidden state `to`, reporting progress after each layer; answers x. */
  advance(args: { id: number; last: boolean; to: number }, context: RequestContext) {
    return step(args.id, args.last, true, (b, w) => {
      const run = runs.get(args.id);
      if (!run) throw new Error(`no run ${args.id} in this vision worker (an earlier request of it failed)`);
      for (; run.k < args.to; run.k++) {
        const next = b.scope(() => clipLayer(b, run.x, w.layers[run.k]));
        run.x.dispose();
        run.x = next;
        context.progress();
      }
    });
  },
  dispose() {
    for (const id of [...runs.keys()]) drop(id);
    received?.dispose();
    weights = undefined;
    return stats();
  },
  ...TEST_HANDLERS,
});
