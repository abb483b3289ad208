/**
 * The WASM backend: tensors live in the kernels module's memory (weights are uploaded once and stay there), and
 * every op is one call into kernels-rs through the family wrappers beside this file. `simd: false` runs the scalar
 * twins of the same kernels (tests and benchmarks compare the two).
 */
import {
  type AttentionOptions,
  type Backend,
  BackendError,
  type DType,
  type FloatDType,
  isQuantized,
  type OpName,
  type QuantDType,
  type RopeOptions,
  type Shape,
  type Tensor,
  type WindowPoolOptions,
} from "../backend.ts";
import { TensorStore } from "../tensor_store.ts";
import { isDense, size } from "../views.ts";
import { activate, siluMul, softmax } from "./activation.ts";
import { attention, rope } from "./attention.ts";
import { address, memoryView, type WasmContext, WasmStorage } from "./context.ts";
import { matmul, relaxedLinear } from "./gemm.ts";
import { binary, copyAs, copyInto, embedding, mean, patchEmbed, scale } from "./layout.ts";
import { loadKernels, type WasmKernels } from "./loader.ts";
import {
  NO_RELAXED,
  type RelaxedDot,
  type RelaxedFormat,
  type RelaxedProducts,
  relaxedProductsOnQ4Dot,
  relaxedSimdSupport,
} from "./relaxed.ts";
import { layerNorm, rmsNorm } from "./norm.ts";
import { relevance, windowPool } from "./pooling.ts";
import {
  dequantizeRows,
  downloadQuantized,
  quantize,
  quantLinear,
  type QuantMethod,
  uploadQuantized,
} from "./quant.ts";

const ANY: readonly DType[] = ["f32", "f16", "bf16"];
const F32: readonly DType[] = ["f32"];
/** Weights: the float dtypes and the group-wise quantised ones. */
const WEIGHT: readonly DType[] = [...ANY, "q8", "q4"];

/** Allowed dtypes per argument position; ops absent here are not supported. */
const SUPPORT: Partial<Record<OpName, readonly (readonly DType[])[]>> = {
  matmul: [F32, ANY, F32],
  linear: [F32, WEIGHT, F32],
  attention: [F32, F32, F32],
  layerNorm: [F32, F32, F32],
  rmsNorm: [F32, F32],
  rope: [F32],
  softmax: [F32],
  gelu: [F32],
  geluTanh: [F32],
  quickGelu: [F32],
  silu: [F32],
  siluMul: [F32, F32],
  add: [F32, F32],
  mul: [F32, F32],
  scale: [F32],
  mean: [F32],
  embedding: [WEIGHT],
  patchEmbed: [F32, ANY],
  relevance: [F32, F32],
  windowPool: [F32, F32],
  contiguous: [ANY],
  copyInto: [ANY, ANY],
  concat: [ANY],
  cast: [WEIGHT],
  quantize: [ANY],
};

export interface WasmBackendOptions {
  /** false runs the scalar twins (default true). */
  simd?: boolean;
  /** How linear treats activations against q8/q4 weights (default "int8"; see ./quant.ts). */
  quantMethod?: QuantMethod;
  /** Use relaxed SIMD's q4, q8 and f32 products where the runtime computes them right (default true; q4 and q8 give
   * the kernels module's bits, f32 fuses multiply-add where the CPU can: see ./relaxed.ts). false keeps every product
   * in the kernels module, for comparisons. */
  relaxedSimd?: boolean;
  /** Run q4's relaxed product on this 8-bit dot instead of the one picked for the runtime (./relaxed.ts: the same
   * bits), for comparisons (bench/relaxed_simd.ts). */
  relaxedQ4Dot?: RelaxedDot;
}

/** The relaxed-SIMD part of the options, as loadModel passes it on to its workers' backends. */
export type RelaxedChoice = Pick<WasmBackendOptions, "relaxedSimd" | "relaxedQ4Dot">;

export class WasmBackend extends TensorStore<WasmStorage> implements Backend {
  readonly name: string;
  readonly #kernels: WasmKernels;
  readonly #context: WasmContext;
  readonly #quantMethod: QuantMethod;

  /** Whether any product runs on relaxed SIMD (./relaxed.ts); `relaxedFormats` says which weight formats' linears,
   * `relaxedAttention` whether attention. */
  readonly relaxedSimd: boolean;
  readonly relaxedFormats: readonly RelaxedFormat[];
  readonly relaxedAttention: boolean;

  /** `relaxed`: the relaxed products of `kernels` (`relaxedSimdSupport`); createWasmBackend looks them up. */
  constructor(kernels: WasmKernels, options: WasmBackendOptions = {}, relaxed: RelaxedProducts | null = null) {
    super();
    const simd = options.simd ?? true;
    if (simd && !kernels.hasSimd) {
      throw new BackendError("unsupported", "wasm: the kernels module was built without SIMD");
    }
    this.name = simd ? "wasm-simd" : "wasm-scalar";
    this.#kernels = kernels;
    this.#quantMethod = options.quantMethod ?? "int8";
    this.#context = {
      kernels,
      simd: simd ? 1 : 0,
      relaxed: simd && options.relaxedSimd !== false && relaxed ? relaxed : NO_RELAXED,
      use: (t, what) => this.use(t, what),
      output: (shape, dtype) => this.create(shape, dtype),
      contiguous: (t) => this.contiguous(t),
      permute: (t, axes) => this.permute(t, axes),
    };
    this.relaxedFormats = (["q4", "q8", "f32"] as const).filter((f) => this.#context.relaxed[f] !== null);
    this.relaxedAttention = this.#context.relaxed.attention !== null;
    this.relaxedSimd = this.relaxedFormats.length > 0 || this.relaxedAttention;
  }

  supports(op: OpName, dtypes: readonly DType[] = []): boolean {
    const allowed = SUPPORT[op];
    if (!allowed) return false;
    return dtypes.every((d, i) => (allowed[i] ?? allowed[allowed.length - 1]).includes(d));
  }

  #require(op: OpName, tensors: readonly (Tensor | null | undefined)[]): void {
    const dtypes = tensors.map((t) => t?.dtype ?? "f32");
    if (!this.supports(op, dtypes)) {
      throw new BackendError("unsupported", `${this.name}: ${op} is not supported for [${dtypes.join(", ")}]`);
    }
  }

  protected allocate(bytes: number, zero: boolean): WasmStorage {
    // `>>> 0`: wasm32 returns addresses as i32, so those above 2 GiB would come back negative.
    const ptr = this.#kernels.callValue("alloc", "ppl_alloc", bytes) >>> 0;
    if (ptr === 0) {
      throw new BackendError("out_of_memory", `${this.name}: cannot allocate ${bytes} bytes in the module`);
    }
    if (zero) memoryView(this.#kernels, Uint8Array, ptr, bytes).fill(0);
    return new WasmStorage(this.#kernels, ptr, bytes);
  }

  upload(data: Float32Array | Uint16Array, shape: Shape, dtype: FloatDType = "f32"): Tensor {
    const wanted = dtype === "f32" ? Float32Array : Uint16Array;
    if (!(data instanceof wanted)) {
      throw new BackendError(
        "bad_dtype",
        `upload: ${dtype} data comes as a ${wanted.name}, got ${data.constructor.name}`,
      );
    }
    if (isQuantized(dtype)) {
      throw new BackendError("bad_dtype", `upload: ${dtype} bytes go through uploadQuantized`);
    }
    if (data.length !== size(shape)) {
      throw new BackendError("bad_shape", `upload: ${data.length} values for shape [${shape}] (${size(shape)})`);
    }
    const out = this.create(shape, dtype);
    memoryView(this.#kernels, wanted as typeof Float32Array, out.storage.ptr, data.length).set(data as Float32Array);
    return out;
  }

  uploadQuantized(bytes: Uint8Array, shape: Shape, dtype: QuantDType): Tensor {
    return uploadQuantized(this.#context, bytes, shape, dtype);
  }

  quantize(t: Tensor, dtype: QuantDType): Tensor {
    this.#require("quantize", [t]);
    if (!isQuantized(dtype)) throw new BackendError("bad_dtype", `quantize: to q8 or q4, not ${dtype}`);
    return quantize(this.#context, t, dtype);
  }

  downloadQuantized(t: Tensor): Promise<Uint8Array> {
    return Promise.resolve(downloadQuantized(this.#context, t));
  }

  zeros(shape: Shape, dtype: FloatDType = "f32"): Tensor {
    if (isQuantized(dtype)) throw new BackendError("bad_dtype", `zeros: not for ${dtype} (use quantize)`);
    return this.create(shape, dtype, true);
  }

  download(t: Tensor): Promise<Float32Array> {
    const h = this.use(t, "download");
    if (isQuantized(h.dtype)) {
      const values = dequantizeRows(this.#context, h, null);
      try {
        return Promise.resolve(memoryView(this.#kernels, Float32Array, address(values), size(h.shape)).slice());
      } finally {
        values.dispose();
      }
    }
    const dense = h.dtype === "f32" && isDense(h) ? h : copyAs(this.#context, h, "f32");
    try {
      return Promise.resolve(memoryView(this.#kernels, Float32Array, address(dense), size(h.shape)).slice());
    } finally {
      if (dense !== h) dense.dispose();
    }
  }

  contiguous(t: Tensor): Tensor {
    this.#require("contiguous", [t]);
    return copyAs(this.#context, t, null);
  }

  copyInto(dst: Tensor, src: Tensor): void {
    this.#require("copyInto", [dst, src]);
    copyInto(this.#context, dst, src);
  }

  cast(t: Tensor, dtype: "f32"): Tensor {
    this.#require("cast", [t]);
    if (dtype !== "f32") throw new BackendError("unsupported", `cast: only to f32, not ${dtype}`);
    if (isQuantized(t.dtype)) return dequantizeRows(this.#context, t, null);
    return copyAs(this.#context, t, "f32");
  }

  matmul(a: Tensor, b: Tensor, bias?: Tensor): Tensor {
    this.#require("matmul", [a, b, bias]);
    return matmul(this.#context, a, b, bias);
  }

  override linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    this.#require("linear", [x, weight, bias]);
    if (isQuantized(weight.dtype)) return quantLinear(this.#context, x, weight, bias, this.#quantMethod);
    return relaxedLinear(this.#context, x, weight, bias) ?? super.linear(x, weight, bias);
  }

  attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): Tensor {
    this.#require("attention", [q, k, v]);
    return attention(this.#context, q, k, v, options);
  }

  layerNorm(x: Tensor, gain: Tensor, bias: Tensor, eps: number): Tensor {
    this.#require("layerNorm", [x, gain, bias]);
    return layerNorm(this.#context, x, gain, bias, eps);
  }

  rmsNorm(x: Tensor, gain: Tensor, eps: number): Tensor {
    this.#require("rmsNorm", [x, gain]);
    return rmsNorm(this.#context, x, gain, eps);
  }

  rope(x: Tensor, options: RopeOptions): Tensor {
    this.#require("rope", [x]);
    return rope(this.#context, x, options);
  }

  softmax(x: Tensor, scale?: number): Tensor {
    this.#require("softmax", [x]);
    return softmax(this.#context, x, scale);
  }

  gelu(x: Tensor): Tensor {
    this.#require("gelu", [x]);
    return activate(this.#context, "gelu", x);
  }

  geluTanh(x: Tensor): Tensor {
    this.#require("geluTanh", [x]);
    return activate(this.#context, "geluTanh", x);
  }

  quickGelu(x: Tensor): Tensor {
    this.#require("quickGelu", [x]);
    return activate(this.#context, "quickGelu", x);
  }

  silu(x: Tensor): Tensor {
    this.#require("silu", [x]);
    return activate(this.#context, "silu", x);
  }

  siluMul(gate: Tensor, up: Tensor): Tensor {
    this.#require("siluMul", [gate, up]);
    return siluMul(this.#context, gate, up);
  }

  add(a: Tensor, b: Tensor): Tensor {
    this.#require("add", [a, b]);
    return binary(this.#context, "add", a, b);
  }

  mul(a: Tensor, b: Tensor): Tensor {
    this.#require("mul", [a, b]);
    return binary(this.#context, "mul", a, b);
  }

  scale(x: Tensor, factor: number): Tensor {
    this.#require("scale", [x]);
    return scale(this.#context, x, factor);
  }

  mean(x: Tensor, axis: number): Tensor {
    this.#require("mean", [x]);
    return mean(this.#context, x, axis);
  }

  embedding(table: Tensor, ids: Int32Array): Tensor {
    this.#require("embedding", [table]);
    if (isQuantized(table.dtype)) return dequantizeRows(this.#context, table, ids);
    return embedding(this.#context, table, ids);
  }

  patchEmbed(pixels: Tensor, weight: Tensor): Tensor {
    this.#require("patchEmbed", [pixels, weight]);
    return patchEmbed(this.#context, pixels, weight);
  }

  relevance(visual: Tensor, text: Tensor, scale: number): Tensor {
    this.#require("relevance", [visual, text]);
    return relevance(this.#context, visual, text, scale);
  }

  windowPool(x: Tensor, p: Tensor | null, options: WindowPoolOptions): Tensor {
    this.#require("windowPool", [x, p]);
    return windowPool(this.#context, x, p, options);
  }

  /** Bytes of the module's linear memory (it only grows; `stats().bytes` is what live tensors hold). */
  get memoryBytes(): number {
    return this.#kernels.memoryBytes;
  }
}

/** A WASM backend over the process-wide kernels instance (or over `kernels` when given). */
export async function createWasmBackend(
  options: WasmBackendOptions & { kernels?: WasmKernels } = {},
): Promise<WasmBackend> {
  const kernels = options.kernels ?? await loadKernels();
  const picked = options.relaxedSimd === false ? null : await relaxedSimdSupport(kernels);
  const relaxed = picked && options.relaxedQ4Dot ? await relaxedProductsOnQ4Dot(kernels, options.relaxedQ4Dot) : picked;
  return new WasmBackend(kernels, options, relaxed);
}
