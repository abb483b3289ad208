/**
 * What every part of the graph shares: loading checkpoint tensors onto a backend under their checkpoint keys, the
 * `Trace` hook that names intermediates, and the two affine pieces (Linear, LayerNorm) as plain records.
 *
 * Matrices (linear weights, embedding tables, the patch kernel) stay in the checkpoint's dtype (f16/bf16 are
 * uploaded as their 16-bit patterns; the backend widens them in its kernels); vectors (biases, norm gains,
 * position tables) are widened to f32 once at load.
 */
import {
  type Backend,
  BackendError,
  type DType,
  type QuantDType,
  type Shape,
  type Tensor,
} from "../backend/backend.ts";
import { quantizationFor, readQuantized } from "./quant_checkpoint.ts";
import type { ModelWeights } from "./weights.ts";

export interface ParamsOptions {
  /** Quantise the weights `quantizationFor` names to q8/q4 as they load (docs/quantization.md). Tensors the
   * checkpoint already holds quantised load as they are, whatever this says. */
  quantize?: QuantDType;
  /** Which tensors `quantize` applies to (default `quantizationFor`); bench/quant.ts measures alternatives. */
  quantizePolicy?: (name: string, mode: QuantDType) => QuantDType | null;
}

/** Called with every named intermediate (names as in tests/oracles/ppllava_reference.py). The tensor is only valid
 * during the call: start a `download` (or make a copy) there. */
export type Trace = (name: string, tensor: Tensor) => void;

export interface Linear {
  weight: Tensor;
  bias?: Tensor;
}

export interface LayerNorm {
  weight: Tensor;
  bias: Tensor;
  eps: number;
}

/** Where a part's loader reads its tensors, by checkpoint key: `Params` (a checkpoint onto a backend), or the tensors
 * a worker was sent (worker_tensors.ts), so one loader serves both. */
export abstract class TensorSource {
  /** A matrix (linear weight, embedding table, patch kernel) in its loaded dtype. */
  abstract matrix(name: string): Promise<Tensor>;
  /** Any other tensor, in f32 (shape as stored unless given; a scalar comes as shape [1]). */
  abstract vector(name: string, shape?: Shape): Promise<Tensor>;

  async linear(prefix: string, bias = true): Promise<Linear> {
    return {
      weight: await this.matrix(`${prefix}.weight`),
      bias: bias ? await this.vector(`${prefix}.bias`) : undefined,
    };
  }

  async layerNorm(prefix: string, eps: number): Promise<LayerNorm> {
    return { weight: await this.vector(`${prefix}.weight`), bias: await this.vector(`${prefix}.bias`), eps };
  }
}

/** Loads tensors of one checkpoint onto one backend; remembers them so `dispose` frees the whole model. */
export class Params extends TensorSource {
  readonly #loaded: Tensor[] = [];
  /** The dtype each matrix was loaded in, by checkpoint key (the precision plan of the loaded model). */
  readonly precision: Map<string, DType> = new Map();
  constructor(readonly backend: Backend, readonly weights: ModelWeights, readonly options: ParamsOptions = {}) {
    super();
  }

  /** A matrix in its stored dtype (F16/BF16 stay 16-bit, q8/q4 files load as they are), or quantised at load
   * when `options.quantize` asks and the policy names it. */
  override async matrix(name: string): Promise<Tensor> {
    const info = this.weights.expectTensor(name, this.#expected(name));
    const stored = this.weights.quantized.get(name);
    if (stored) {
      this.#requireQuant(stored.dtype, name);
      const t = this.backend.uploadQuantized(await readQuantized(this.weights.store, name), stored.shape, stored.dtype);
      return this.#matrix(name, t);
    }
    let t: Tensor;
    if (info.dtype === "F16" || info.dtype === "BF16") {
      const raw = await this.weights.store.readRaw(name);
      const bits = new Uint16Array(raw.slice().buffer);
      t = this.backend.upload(bits, info.shape, info.dtype === "F16" ? "f16" : "bf16");
    } else {
      t = this.backend.upload(await this.weights.f32(name), info.shape);
    }
    const policy = this.options.quantizePolicy ?? quantizationFor;
    const target = this.options.quantize ? policy(name, this.options.quantize) : null;
    if (!target) return this.#matrix(name, t);
    try {
      this.#requireQuant(target, name, t.dtype);
      return this.#matrix(name, this.backend.quantize(t, target));
    } finally {
      t.dispose();
    }
  }

  #matrix(name: string, t: Tensor): Tensor {
    this.precision.set(name, t.dtype);
    return this.#keep(t);
  }

  #requireQuant(dtype: QuantDType, name: string, from?: DType): void {
    const b = this.backend;
    const ok = b.supports("linear", ["f32", dtype]) && b.supports("embedding", [dtype]) &&
      (from === undefined || b.supports("quantize", [from]));
    if (!ok) {
      throw new BackendError(
        "unsupported",
        `backend ${b.name} cannot run ${dtype} weights (${name}); load without quantize or use the WASM backend`,
      );
    }
  }

  /** Any tensor widened to f32 (shape as stored; a scalar comes as shape [1]). */
  override async vector(name: string, shape?: Shape): Promise<Tensor> {
    const data = await this.weights.f32(name);
    const stored = this.weights.store.info(name).shape;
    return this.#keep(this.backend.upload(data, shape ?? (stored.length === 0 ? [1] : stored)));
  }

  /** A tensor's values on the host (small ones: logit_scale). */
  host(name: string): Promise<Float32Array> {
    return this.weights.f32(name);
  }

  /** A constant made here (not from the checkpoint), freed with the model. */
  constant(data: Float32Array, shape: Shape): Tensor {
    return this.#keep(this.backend.upload(data, shape));
  }

  /** Takes ownership of a tensor built from loaded ones (freed with the model). */
  adopt(t: Tensor): Tensor {
    return this.#keep(t);
  }

  dispose(): void {
    for (const t of this.#loaded.splice(0)) t.dispose();
  }

  #keep(t: Tensor): Tensor {
    this.#loaded.push(t);
    return t;
  }

  #expected(name: string): readonly number[] {
    return this.weights.layout.get(name)?.shape ?? this.weights.store.info(name).shape;
  }
}

export function linear(b: Backend, x: Tensor, l: Linear): Tensor {
  return b.linear(x, l.weight, l.bias);
}

export function layerNorm(b: Backend, x: Tensor, n: LayerNorm): Tensor {
  return b.layerNorm(x, n.weight, n.bias, n.eps);
}

/** `reshape`, copying first when the view's strides cannot express the new shape. */
export function reshape(b: Backend, t: Tensor, shape: Shape): Tensor {
  try {
    return b.reshape(t, shape);
  } catch {
    return b.reshape(b.contiguous(t), shape);
  }
}

/** Mean over axis 1 of x (B, T, D) → (B, 1, D). */
export function meanOverAxis1(b: Backend, x: Tensor): Tensor {
  const [batch, , d] = x.shape;
  return b.reshape(b.mean(x, 1), [batch, 1, d]);
}
