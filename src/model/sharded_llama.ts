/**
 * The LLaMA decoder split across W workers, each with its own WASM instance (so its own ≤ 4 GiB memory), tensor
 * parallel in the Megatron way (llama_shard.ts says who holds what). A forward is one message to every worker:
 * the workers run all layers and do the two all-reduces per layer among themselves over a SharedArrayBuffer
 * (all_reduce.ts), and each returns its slice of the logits (lm_head is split by vocabulary rows). With a trace the
 * all-reduces run here instead, two round trips per layer, so every layer's output reaches the main thread. The
 * embedding table stays on the main instance (prompt merging needs it synchronously, and a lookup reads only a few
 * rows).
 *
 * Same numbers as `Llama` up to the f32 summation order of o_proj and down_proj (split in W sums here).
 * A worker that crashes ends the whole model: every worker is terminated and every call fails with
 * `WorkerError("crashed")`; `dispose()` terminates them too.
 */
import type { Backend, QuantDType, Tensor } from "../backend/backend.ts";
import type { RelaxedChoice } from "../backend/wasm/backend.ts";
import type { RelaxedFormat } from "../backend/wasm/relaxed.ts";
import { RpcWorker, type WorkerError } from "../util/workers.ts";
import { ModelError } from "./errors.ts";
import { exchangeBytes } from "./all_reduce.ts";
import type { Params, Trace } from "./layers.ts";
import type { LlamaConfig } from "./llama.ts";
import { type ShardRanges, shardRanges, shardTensorSpecs } from "./llama_shard.ts";
import { LLM } from "./weights.ts";
import { type Range, sendTensors } from "./worker_tensors.ts";

export interface ShardStats {
  tensors: number;
  bytes: number;
  /** The worker instance's linear memory (it only grows). */
  memoryBytes: number;
  /** Seconds the shard has spent computing (forward ops), since it started. */
  busySeconds: number;
  /** The weight formats whose products run on relaxed SIMD in this worker (WasmBackend.relaxedFormats). */
  relaxedFormats: readonly RelaxedFormat[];
}

export interface ShardedLlamaOptions {
  workers: number;
  tiedEmbeddings?: boolean;
  /** Load-time quantisation (the same policy as one instance: `quantizationFor`, or `quantizePolicy`). */
  quantize?: QuantDType;
  quantizePolicy?: (name: string, mode: QuantDType) => QuantDType | null;
  /** A worker silent (no reply, no progress) this long during a call is stopped as "stalled" (default
   * DEFAULT_STALL_MS; 0 = never). */
  stallMs?: number;
  /** Each worker's backend: which products run on relaxed SIMD (WasmBackendOptions; default: as the runtime picks). */
  relaxed?: RelaxedChoice;
}

/** Two minutes: a worker reports progress after every half-layer, which takes seconds even for a 7B prefill. */
export const DEFAULT_STALL_MS = 120_000;

/** The worker module (llm_worker.ts, or .js once built). */
/** The worker module (llm_worker.ts, or llm_worker.js once built to dist/). */
export const WORKER_URL = new URL(
  import.meta.url.endsWith(".ts") ? "./llm_worker.ts" : "./llm_worker.js",
  import.meta.url,
);

export class ShardedLlama {
  #failure: WorkerError | null = null;
  #sessions = 0;

  private constructor(
    readonly config: LlamaConfig,
    readonly ranges: readonly ShardRanges[],
    readonly workers: readonly RpcWorker[],
    readonly embedTokens: Tensor,
  ) {
    for (const w of workers) {
      w.onCrash = (error) => {
        this.#failure ??= error;
        for (const other of workers) other.terminate();
      };
    }
  }

  /** Starts `workers` workers and streams each its slices of the checkpoint; the embedding goes to `params`. */
  static async load(params: Params, config: LlamaConfig, options: ShardedLlamaOptions): Promise<ShardedLlama> {
    const ranges = shardRanges(config, options.workers);
    const workers: RpcWorker[] = [];
    try {
      for (let i = 0; i < ranges.length; i++) {
        workers.push(
          await RpcWorker.spawn(WORKER_URL, { label: `llm-shard-${i}`, stallMs: options.stallMs ?? DEFAULT_STALL_MS }),
        );
      }
      await Promise.all(
        workers.map((w, i) =>
          w.call("init", {
            config,
            ranges: ranges[i],
            index: i,
            workers: workers.length,
            relaxed: options.relaxed ?? {},
          })
        ),
      );
      const tied = options.tiedEmbeddings ?? false;
      const specs = ranges.map((r) => shardTensorSpecs(config, r, LLM, tied));
      await sendTensors(params, workers, specs, options.quantize, options.quantizePolicy);
      await Promise.all(workers.map((w) => w.call("assemble")));
      const embed = await params.matrix(`${LLM}.model.embed_tokens.weight`);
      return new ShardedLlama(config, ranges, workers, embed);
    } catch (error) {
      for (const w of workers) w.terminate();
      throw error;
    }
  }

  get failed(): WorkerError | null {
    return this.#failure;
  }

  /** Token ids → embeddings (n, H), on the main backend. */
  embed(b: Backend, ids: Int32Array): Tensor {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) {
        throw new ModelError("bad_input", `token id ${id} is outside the vocabulary 0..${this.config.vocabSize - 1}`);
      }
    }
    return b.embedding(this.embedTokens, ids);
  }

  session(b: Backend, capacity: number): ShardedSession {
    return new ShardedSession(b, this, ++this.#sessions, capacity);
  }

  /** Tensor bytes and instance memory of every shard. */
  stats(): Promise<ShardStats[]> {
    return this.all((w) => w.call<ShardStats>("stats"));
  }

  /** `op` on every worker at once; the first failure wins (a crash reports the crash, not a later symptom). */
  async all<T>(op: (w: RpcWorker, i: number) => Promise<T>): Promise<T[]> {
    if (this.#failure) throw this.#failure;
    try {
      return await Promise.all(this.workers.map(op));
    } catch (error) {
      throw this.#failure ?? error;
    }
  }

  /** Terminates every worker (idempotent). The embedding table belongs to the model's Params. */
  dispose(): void {
    for (const w of this.workers) w.terminate();
  }
}

/** One generation's KV caches, spread over the shards: the same moves as `LlamaSession`. */
export class ShardedSession {
  #length = 0;
  #batch = 1;
  /** Set when a forward failed part way: some shards may have appended to their caches and others not. */
  #broken: unknown = null;
  /** Opening and reordering are posted without waiting (worker queues are FIFO); their outcome is awaited here. */
  #pending: Promise<unknown>;

  constructor(readonly b: Backend, readonly llm: ShardedLlama, readonly id: number, readonly capacity: number) {
    const c = llm.config;
    if (capacity > c.maxPositions) {
      throw new ModelError(
        "prompt_too_long",
        `${capacity} positions (prompt + new tokens) exceed the LLM's max_position_embeddings ${c.maxPositions}`,
      );
    }
    this.#pending = llm.all((w) => w.call("open", { id, capacity }));
    this.#pending.catch(() => {}); // reported by the next run
  }

  get batch(): number {
    return this.#batch;
  }

  get length(): number {
    return this.#length;
  }

  /** embeds (B, L, H) on the main backend → logits of the last row per sequence, (B, V) on the host. */
  async run(embeds: Tensor, options: { allLogits?: boolean; trace?: Trace } = {}): Promise<Float32Array> {
    if (this.#broken) throw this.#broken;
    const length = embeds.shape[1];
    if (this.#length + length > this.capacity) {
      throw new ModelError(
        "prompt_too_long",
        `the context would hold ${this.#length + length} positions; capacity ${this.capacity}`,
      );
    }
    try {
      return await this.#run(embeds, options);
    } catch (error) {
      this.#broken = error;
      throw error;
    }
  }

  async #run(embeds: Tensor, options: { allLogits?: boolean; trace?: Trace }): Promise<Float32Array> {
    const [batch, length, hidden] = embeds.shape;
    await this.#pending;
    const llm = this.llm;
    const shape = [batch, length, hidden];
    let x = await this.b.download(embeds);
    if (!options.trace && typeof SharedArrayBuffer === "function") {
      // The workers reduce among themselves: one message each way per forward (all_reduce.ts).
      const exchange = new SharedArrayBuffer(exchangeBytes(llm.workers.length, x.length));
      const parts = await llm.all((w) =>
        w.call<{ data: Float32Array }>("forward", { id: this.id, x, shape, exchange })
      );
      this.#length += length;
      return concatVocab(parts.map((p) => p.data), llm.ranges.map((r) => r.vocab), batch, llm.config.vocabSize);
    }
    // With a trace (every layer's output on the main thread): the all-reduces here, two round trips per layer.
    const reduce = async (op: "attention" | "mlp", layer: number, input: Float32Array) => {
      const parts = await llm.all((w) => w.call<{ data: Float32Array }>(op, { id: this.id, layer, x: input, shape }));
      const out = input.slice();
      for (const { data } of parts) for (let i = 0; i < out.length; i++) out[i] += data[i];
      return out;
    };
    for (let layer = 0; layer < llm.config.numLayers; layer++) {
      const h = await reduce("attention", layer, x);
      x = await reduce("mlp", layer, h);
      if (options.trace) this.#trace(options.trace, `llm.layers.${layer}`, x, shape);
    }
    this.#length += length;
    const last = lastRows(x, batch, length, hidden);
    const parts = await llm.all((w) =>
      w.call<{ data: Float32Array }>("logits", { x: last, shape: [batch, 1, hidden] })
    );
    return concatVocab(parts.map((p) => p.data), llm.ranges.map((r) => r.vocab), batch, llm.config.vocabSize);
  }

  /** One new token per sequence → logits (B, V). */
  step(tokens: readonly number[]): Promise<Float32Array> {
    const h = this.llm.config.hiddenSize;
    const embeds = this.b.scope(() =>
      this.b.reshape(this.llm.embed(this.b, Int32Array.from(tokens)), [tokens.length, 1, h])
    );
    return this.run(embeds).finally(() => embeds.dispose());
  }

  /** Row i of the new batch continues old row from[i] (beam search). */
  reorder(from: readonly number[]): void {
    if (from.length === this.#batch && from.every((row, i) => row === i)) return;
    const previous = this.#pending;
    this.#pending = previous.then(() => this.llm.all((w) => w.call("reorder", { id: this.id, from: [...from] })));
    this.#pending.catch(() => {});
    this.#batch = from.length;
  }

  dispose(): void {
    if (this.llm.failed) return;
    for (const w of this.llm.workers) w.call("close", { id: this.id }).catch(() => {});
  }

  #trace(trace: Trace, name: string, x: Float32Array, shape: number[]): void {
    const b = this.b;
    b.scope(() => trace(name, b.upload(x.slice(), shape)));
  }
}

/** Rows (b, L−1) of x (B, L, H) → (B, 1, H). */
function lastRows(x: Float32Array, batch: number, length: number, hidden: number): Float32Array {
  if (length === 1) return x;
  const out = new Float32Array(batch * hidden);
  for (let b = 0; b < batch; b++) {
    out.set(x.subarray(((b + 1) * length - 1) * hidden, (b + 1) * length * hidden), b * hidden);
  }
  return out;
}

/** Per-shard logits (B, |vocab_w|) → (B, V). */
function concatVocab(parts: Float32Array[], vocab: Range[], batch: number, size: number): Float32Array {
  const out = new Float32Array(batch * size);
  parts.forEach((part, w) => {
    const [start, end] = vocab[w];
    const n = end - start;
    for (let b = 0; b < batch; b++) out.set(part.subarray(b * n, (b + 1) * n), b * size + start);
  });
  return out;
}
