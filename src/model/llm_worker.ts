/**
 * The worker side of the sharded LLM: one WASM instance (its own ≤ 4 GiB memory) holding one `LlamaShard`, driven
 * by `ShardedLlama` on the main thread through `serveRequests`. Activations travel as Float32Arrays (transferred
 * back); weights arrive once, as raw safetensors bytes already cut to this shard's rows or columns.
 */
import type { Tensor } from "../backend/backend.ts";
import { createWasmBackend, type RelaxedChoice, type WasmBackend } from "../backend/wasm/backend.ts";
import { readBandwidth } from "../backend/wasm/bandwidth.ts";
import { loadKernels } from "../backend/wasm/loader.ts";
import { type RequestContext, serveRequests, TEST_HANDLERS, transferring } from "../util/workers.ts";
import { AllReduce } from "./all_reduce.ts";
import { LlamaShard, type ShardRanges, ShardSession, shardWeights } from "./llama_shard.ts";
import type { LlamaConfig } from "./llama.ts";
import { ReceivedTensors, type TensorMessage, workerStats } from "./worker_tensors.ts";

let backend: WasmBackend | undefined;
let config: LlamaConfig | undefined;
let ranges: ShardRanges | undefined;
let shard: LlamaShard | undefined;
let received: ReceivedTensors | undefined;
const sessions = new Map<number, ShardSession>();
/** Seconds spent computing in attention/mlp/logits: busy / wall time says whether a shard waits on the others. */
let busySeconds = 0;
let place = { index: 0, workers: 1 };

function ready(): { b: WasmBackend; s: LlamaShard } {
  if (!backend || !shard) throw new Error("the shard is not loaded yet");
  return { b: backend, s: shard };
}

function session(id: number): ShardSession {
  const s = sessions.get(id);
  if (!s) throw new Error(`no session ${id} on this shard`);
  return s;
}

/** Runs `op` on x (shape) and hands back the f32 result, transferring its buffer. */
async function hostOp(x: Float32Array, shape: number[], op: (b: WasmBackend, t: Tensor) => Tensor) {
  const { b } = ready();
  const start = performance.now();
  const out = b.scope(() => op(b, b.upload(x, shape)));
  try {
    const data = await b.download(out);
    busySeconds += (performance.now() - start) / 1000;
    return transferring({ data, shape: out.shape }, [data.buffer as ArrayBuffer]);
  } finally {
    out.dispose();
  }
}

function stats() {
  return workerStats(backend, busySeconds);
}

await serveRequests({
  async init(
    args: { config: LlamaConfig; ranges: ShardRanges; index: number; workers: number; relaxed: RelaxedChoice },
  ) {
    backend = await createWasmBackend(args.relaxed);
    received = new ReceivedTensors(backend);
    config = args.config;
    ranges = args.ranges;
    place = { index: args.index, workers: args.workers };
    return stats();
  },
  tensor: (args: TensorMessage) => received!.receive(args),
  assemble() {
    shard = new LlamaShard(
      config!,
      ranges!,
      shardWeights(config!, (key) => received!.get(key)),
    );
    return stats();
  },
  stats,
  open(args: { id: number; capacity: number }) {
    const { b, s } = ready();
    sessions.set(args.id, new ShardSession(b, s, args.capacity));
    return stats();
  },
  close(args: { id: number }) {
    sessions.get(args.id)?.dispose();
    sessions.delete(args.id);
    return null;
  },
  reorder(args: { id: number; from: number[] }) {
    session(args.id).reorder(args.from);
    return null;
  },
  attention(args: { id: number; layer: number; x: Float32Array; shape: number[] }) {
    const s = session(args.id);
    return hostOp(args.x, args.shape, (b, x) => ready().s.attention(b, x, args.layer, s));
  },
  mlp(args: { layer: number; x: Float32Array; shape: number[] }) {
    return hostOp(args.x, args.shape, (b, x) => ready().s.mlp(b, x, args.layer));
  },
  /** A whole forward: every layer, the all-reduces between the shards over `exchange`, then this shard's logits of
   * the last row of each sequence. */
  async forward(
    args: { id: number; x: Float32Array; shape: number[]; exchange: SharedArrayBuffer },
    context: RequestContext,
  ) {
    const s = session(args.id);
    const { b, s: shard } = ready();
    const [batch, length, hidden] = args.shape;
    const reduce = new AllReduce(args.exchange, place.workers, place.index, args.x.length);
    const partial = async (op: (t: Tensor) => Tensor, x: Float32Array) => {
      const start = performance.now();
      const out = b.scope(() => op(b.upload(x, args.shape)));
      try {
        return await b.download(out);
      } finally {
        out.dispose();
        busySeconds += (performance.now() - start) / 1000;
      }
    };
    try {
      let x = args.x;
      for (let layer = 0; layer < shard.config.numLayers; layer++) {
        const h = reduce.sum(x, await partial((t) => shard.attention(b, t, layer, s), x));
        context.progress();
        x = reduce.sum(h, await partial((t) => shard.mlp(b, t, layer), h));
        context.progress();
      }
      const last = new Float32Array(batch * hidden);
      for (let r = 0; r < batch; r++) {
        last.set(x.subarray(((r + 1) * length - 1) * hidden, (r + 1) * length * hidden), r * hidden);
      }
      return await hostOp(last, [batch, 1, hidden], (b, t) => shard.logits(b, t));
    } catch (error) {
      reduce.abort();
      throw error;
    }
  },
  logits(args: { x: Float32Array; shape: number[] }) {
    return hostOp(args.x, args.shape, (b, x) => ready().s.logits(b, x));
  },
  dispose() {
    for (const s of sessions.values()) s.dispose();
    sessions.clear();
    received?.dispose();
    shard = undefined;
    return stats();
  },
  /** bench/big_model.ts: this instance's read bandwidth over a fresh buffer of `bytes`. */
  async bandwidth(args: { bytes: number; passes: number }) {
    return readBandwidth(await loadKernels(), args.bytes, args.passes);
  },
  /** bench/big_model.ts: seconds of `reps` f32 matmuls n×n·n×n here (a compute probe: is a second core free?). */
  async matmulProbe(args: { n: number; reps: number }) {
    const b = await createWasmBackend();
    const data = new Float32Array(args.n * args.n).map((_, i) => (i % 17) * 0.01);
    return b.scope(() => {
      const x = b.upload(data, [args.n, args.n]);
      b.matmul(x, x).dispose();
      const start = performance.now();
      for (let i = 0; i < args.reps; i++) b.matmul(x, x).dispose();
      return (performance.now() - start) / 1000;
    });
  },
  ...TEST_HANDLERS,
});
