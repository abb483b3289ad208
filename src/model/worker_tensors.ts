/**
 * What the model's workers share about weights (sharded_llama.ts: the LLM's shards; vision_split.ts: the vision
 * tower's frame workers): the main thread reads each checkpoint tensor once and transfers each worker its piece
 * (`sendTensors`, a row or column range of it or all of it), and the worker uploads it to its own WASM instance as
 * `Params` would have on the main one (`ReceivedTensors`): matrices in their stored dtype or quantised as the policy
 * says, q8/q4 blocks as they are, everything else widened to f32. `tensorSpecs` lists what a loader reads, so a
 * worker is sent exactly the tensors its part's loader asks for.
 */
import {
  type Backend,
  QUANT_CODE_BYTES,
  QUANT_GROUP,
  QUANT_GROUP_BYTES,
  type QuantDType,
  type Shape,
  type Tensor,
} from "../backend/backend.ts";
import type { RpcWorker } from "../util/workers.ts";
import type { WasmBackend } from "../backend/wasm/backend.ts";
import { decodeF32, type DType } from "./dtypes.ts";
import { ModelError } from "./errors.ts";
import { type Params, TensorSource } from "./layers.ts";
import { quantizationFor, readQuantized } from "./quant_checkpoint.ts";

/** [start, end) along one axis. */
/** What a worker reports of its backend (LLM shards and vision workers alike): tensors and bytes held, its instance's
 * linear memory, the seconds it computed, and which quantised products run on relaxed SIMD there. */
export function workerStats(backend: WasmBackend | undefined, busySeconds: number) {
  return backend
    ? { ...backend.stats(), memoryBytes: backend.memoryBytes, busySeconds, relaxedFormats: backend.relaxedFormats }
    : { tensors: 0, bytes: 0, memoryBytes: 0, busySeconds, relaxedFormats: [] };
}

export type Range = readonly [number, number];

/** `count` items in `parts` nearly equal contiguous ranges (the first ones one larger). */
export function splitEvenly(count: number, parts: number): Range[] {
  const base = Math.floor(count / parts);
  const extra = count % parts;
  const out: Range[] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const end = start + base + (p < extra ? 1 : 0);
    out.push([start, end]);
    start = end;
  }
  return out;
}

/** Which checkpoint tensor, and which rows or columns of it, one worker's weight is. */
export interface TensorSpec {
  /** Key in the worker's weights: "layers.3.q", "norm", "lmHead" (an LLM shard), or the checkpoint name. */
  key: string;
  /** Checkpoint name. */
  source: string;
  /** Rows (axis 0) or columns (axis 1) kept; absent: the whole tensor (norm gains). */
  take?: { axis: 0 | 1; range: Range };
  /** Vectors are widened to f32; matrices stay in their stored (or quantised) dtype. */
  kind: "vector" | "matrix";
}

/**
 * Reads each checkpoint tensor once, cuts every worker's rows or columns out of it (or takes it whole), and transfers
 * the pieces to the workers' `tensor` handler (`ReceivedTensors.receive`). At most a few tensors are in flight, so the
 * main thread holds about one tensor (≤ 250 MB at 7B, f16) at a time. `specs[w]` lists worker w's tensors.
 */
export async function sendTensors(
  params: Params,
  workers: readonly RpcWorker[],
  specs: readonly (readonly TensorSpec[])[],
  quantize?: QuantDType,
  policy: (name: string, mode: QuantDType) => QuantDType | null = quantizationFor,
): Promise<void> {
  const bySource = new Map<string, { worker: number; spec: TensorSpec }[]>();
  specs.forEach((list, worker) => {
    for (const spec of list) {
      const uses = bySource.get(spec.source) ?? [];
      uses.push({ worker, spec });
      bySource.set(spec.source, uses);
    }
  });
  // Vectors first, then matrices, largest first: a worker uploads each f16 matrix, quantises it and frees the f16
  // block; small vectors landing in those holes would split them, and decreasing sizes let each hole take the next
  // upload (measured on a 0.4 B model, q4: linear memory 59% over the tensor bytes in checkpoint order, 6% this way).
  const size = (name: string) => params.weights.store.info(name).end - params.weights.store.info(name).begin;
  const order = [...bySource.entries()].sort(([a, ua], [b, ub]) => {
    const va = ua[0].spec.kind === "vector" ? 0 : 1;
    const vb = ub[0].spec.kind === "vector" ? 0 : 1;
    return va - vb || size(b) - size(a);
  });
  const inFlight: Promise<unknown>[] = [];
  const weights = params.weights;
  const store = weights.store;
  for (const [source, uses] of order) {
    const logical = weights.layout.get(source)?.shape ?? store.info(source).shape;
    const info = weights.expectTensor(source, logical);
    const stored = weights.quantized.get(source);
    const raw = stored ? await readQuantized(store, source) : await store.readRaw(source);
    for (const { worker, spec } of uses) {
      const target = !stored && quantize && spec.kind === "matrix" ? policy(source, quantize) : null;
      const piece = stored
        ? cutQuantized(raw, stored.shape, stored.dtype, spec.take, source)
        : cut(raw, info.shape, info.dtype === "F32" ? 4 : 2, spec.take, target ? source : undefined);
      inFlight.push(workers[worker].call("tensor", {
        key: spec.key,
        dtype: info.dtype,
        shape: piece.shape,
        bytes: piece.bytes,
        kind: spec.kind,
        quantize: target ?? undefined,
        quantized: stored?.dtype,
      }, [piece.bytes]));
    }
    while (inFlight.length > 2 * workers.length) await inFlight.shift();
  }
  await Promise.all(inFlight);
}

/** The bytes of rows or columns `take` of a row-major (R, C) tensor (or all of it), as a fresh buffer. A column cut
 * of a weight that will be quantised (`quantized` names it) must start and end on a group of 32, so the groups are
 * those of the whole matrix. */
export function cut(
  raw: Uint8Array,
  shape: readonly number[],
  element: number,
  take?: { axis: 0 | 1; range: Range },
  quantized?: string,
): { bytes: ArrayBuffer; shape: number[] } {
  if (!take) return { bytes: raw.slice().buffer as ArrayBuffer, shape: [...shape] };
  if (shape.length === 1) {
    const [start, end] = take.range; // a vector's elements (Qwen2's q/k/v biases)
    return { bytes: raw.slice(start * element, end * element).buffer as ArrayBuffer, shape: [end - start] };
  }
  const [rows, cols] = shape;
  const [start, end] = take.range;
  if (take.axis === 0) {
    const row = cols * element;
    return { bytes: raw.slice(start * row, end * row).buffer as ArrayBuffer, shape: [end - start, cols] };
  }
  if (quantized) groupAligned(quantized, take.range, cols);
  const width = (end - start) * element;
  const out = new Uint8Array(rows * width);
  for (let r = 0; r < rows; r++) {
    const from = (r * cols + start) * element;
    out.set(raw.subarray(from, from + width), r * width);
  }
  return { bytes: out.buffer, shape: [rows, end - start] };
}

/** Rows or group-aligned columns of a q8/q4 block (codes plane, then f32 scales plane: docs/quantization.md). */
export function cutQuantized(
  block: Uint8Array,
  shape: readonly number[],
  dtype: QuantDType,
  take: { axis: 0 | 1; range: Range } | undefined,
  name: string,
): { bytes: ArrayBuffer; shape: number[] } {
  const [rows, cols] = shape;
  const groups = Math.ceil(cols / QUANT_GROUP);
  const codeBytes = QUANT_CODE_BYTES[dtype];
  const scales = block.subarray(rows * groups * codeBytes);
  const [r0, r1, g0, g1] = !take
    ? [0, rows, 0, groups]
    : take.axis === 0
    ? [take.range[0], take.range[1], 0, groups]
    : (groupAligned(name, take.range, cols),
      [0, rows, take.range[0] / QUANT_GROUP, Math.ceil(take.range[1] / QUANT_GROUP)]);
  const n = r1 - r0;
  const g = g1 - g0;
  const out = new Uint8Array(n * g * QUANT_GROUP_BYTES[dtype]);
  const outScales = n * g * codeBytes;
  for (let r = 0; r < n; r++) {
    const src = (r0 + r) * groups + g0;
    out.set(block.subarray(src * codeBytes, (src + g) * codeBytes), r * g * codeBytes);
    out.set(scales.subarray(src * 4, (src + g) * 4), outScales + r * g * 4);
  }
  const logical = take?.axis === 1 ? [rows, take.range[1] - take.range[0]] : [n, cols];
  return { bytes: out.buffer, shape: logical };
}

function groupAligned(name: string, [start, end]: Range, cols: number): void {
  if (start % QUANT_GROUP !== 0 || (end % QUANT_GROUP !== 0 && end !== cols)) {
    throw new ModelError(
      "bad_input",
      `${name}: columns [${start}, ${end}) do not start and end on a quantisation group of ${QUANT_GROUP}; ` +
        `use a worker count that splits the heads and the MLP into whole groups`,
    );
  }
}

/** One piece of `sendTensors`, as the worker's `tensor` handler gets it. */
export interface TensorMessage {
  key: string;
  dtype: DType;
  shape: number[];
  bytes: ArrayBuffer;
  kind: "vector" | "matrix";
  /** Quantise as it lands (load-time quantisation). */
  quantize?: QuantDType;
  /** The bytes are already a q8/q4 block (an ahead-of-time checkpoint). */
  quantized?: QuantDType;
}

/** The tensors a worker was sent, on its own backend, by key; a loader reads them as it would read `Params`. */
export class ReceivedTensors extends TensorSource {
  readonly #tensors = new Map<string, Tensor>();
  readonly #views: Tensor[] = [];

  constructor(readonly backend: Backend) {
    super();
  }

  /** Uploads one piece as `Params` would have loaded it (then quantised, when asked). */
  receive(args: TensorMessage): null {
    const b = this.backend;
    const raw = new Uint8Array(args.bytes);
    let t: Tensor;
    if (args.quantized) {
      t = b.uploadQuantized(raw, args.shape, args.quantized);
    } else if (args.kind === "matrix" && (args.dtype === "F16" || args.dtype === "BF16")) {
      t = b.upload(new Uint16Array(args.bytes), args.shape, args.dtype === "F16" ? "f16" : "bf16");
    } else {
      t = b.upload(decodeF32(raw, args.dtype, args.key), args.shape.length === 0 ? [1] : args.shape);
    }
    if (args.quantize && !args.quantized) {
      const wide = t;
      try {
        t = b.quantize(wide, args.quantize);
      } finally {
        wide.dispose();
      }
    }
    this.#tensors.get(args.key)?.dispose();
    this.#tensors.set(args.key, t);
    return null;
  }

  get(key: string): Tensor {
    const t = this.#tensors.get(key);
    if (!t) throw new Error(`tensor ${key} was never sent to this worker`);
    return t;
  }

  override matrix(name: string): Promise<Tensor> {
    return Promise.resolve(this.get(name));
  }

  /** A reshaped view when `shape` is given (freed by `dispose`, with the tensors). */
  override vector(name: string, shape?: Shape): Promise<Tensor> {
    const t = this.get(name);
    if (!shape) return Promise.resolve(t);
    const view = this.backend.keep(this.backend.reshape(t, shape));
    this.#views.push(view);
    return Promise.resolve(view);
  }

  dispose(): void {
    for (const t of [...this.#views.splice(0), ...this.#tensors.values()]) t.dispose();
    this.#tensors.clear();
  }
}

/** The tensors `load` reads, each whole under its checkpoint name, matrix or vector as it asks (nothing is read). */
export async function tensorSpecs(load: (source: TensorSource) => Promise<unknown>): Promise<TensorSpec[]> {
  const specs: TensorSpec[] = [];
  const placeholder = {} as Tensor;
  class Recorder extends TensorSource {
    override matrix(name: string): Promise<Tensor> {
      specs.push({ key: name, source: name, kind: "matrix" });
      return Promise.resolve(placeholder);
    }
    override vector(name: string): Promise<Tensor> {
      specs.push({ key: name, source: name, kind: "vector" });
      return Promise.resolve(placeholder);
    }
  }
  await load(new Recorder());
  return specs;
}
