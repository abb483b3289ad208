/**
 * The seam between the model graph and the hardware: a small, capability-queried table of tensor ops.
 *
 * A `Tensor` is a handle the backend owns (WASM memory, a GPU buffer): dtype, shape, strides and offset over a
 * shared, reference-counted storage. Views (reshape/permute/slice) make new handles without copying; an op that
 * needs a dense input copies it itself. Nothing above this file knows where a tensor lives.
 *
 * Lifetime, for a server that runs for weeks: every handle is either disposed explicitly (`t.dispose()`) or
 * created inside `backend.scope(fn)`, which disposes every handle made in `fn` except those in its return value.
 * Storage is freed when its last handle is disposed. `backend.stats()` counts live handles and bytes (tests assert
 * it returns to where it started).
 *
 * Ops are synchronous (a GPU backend enqueues); only `download` is async. An op the backend lacks, or lacks for
 * these dtypes, is reported by `supports(op, dtypes)` and throws `BackendError("unsupported")` if called anyway.
 * Weights may be f16/bf16 where the op says so (matmul's B, linear's W, embedding tables, the patch-embed kernel),
 * and q8/q4 (group-wise quantised, docs/quantization.md) for linear's W and embedding tables where `supports` says
 * so; every activation is f32. Conventions follow the spec (spec/ppllava.md §3.3–3.8) and HF/PyTorch.
 *
 * A pre-LN CLIP encoder layer (spec §3.3), weights as checkpoint tensors, x (S, D):
 *
 *   const y = b.scope(() => {
 *     const h = b.layerNorm(x, w.ln1.weight, w.ln1.bias, 1e-5);
 *     const heads = (t: Tensor) => b.permute(b.reshape(t, [1, S, H, D / H]), [0, 2, 1, 3]);   // views, no copy
 *     const o = b.attention(heads(b.linear(h, w.q.weight, w.q.bias)), heads(b.linear(h, w.k.weight, w.k.bias)),
 *                           heads(b.linear(h, w.v.weight, w.v.bias)), { causal: false });
 *     const x1 = b.add(x, b.linear(b.reshape(b.permute(o, [0, 2, 1, 3]), [S, D]), w.out.weight, w.out.bias));
 *     const m = b.linear(b.quickGelu(b.linear(b.layerNorm(x1, w.ln2.weight, w.ln2.bias, 1e-5), w.fc1.weight, w.fc1.bias)), w.fc2.weight, w.fc2.bias);
 *     return b.add(x1, m);                                  // everything else made in the scope is freed here
 *   });
 *
 * Decoding keeps K/V in a `KvCache` (kv_cache.ts) and passes `rope({ theta, offset: cache.length })`.
 */

/** Element types with a byte size per element (f16/bf16 are stored as their 16-bit patterns). */
export type FloatDType = "f32" | "f16" | "bf16";
/** Group-wise quantised weights (docs/quantization.md): 2-D (N, K) only, sized per group of 32 along K, never
 * viewed (reshape/permute/slice refuse them); `linear`, `embedding`, `cast` and `download` read them. */
export type QuantDType = "q8" | "q4";
export type DType = FloatDType | QuantDType;
export type Shape = readonly number[];

/** Bytes per element of each float dtype. Quantised dtypes have no per-element size: use `storageBytes`. */
export const DTYPE_BYTES: Readonly<Record<FloatDType, number>> = { f32: 4, f16: 2, bf16: 2 };

/** Values per quantisation group (one f32 scale each), along K. */
export const QUANT_GROUP = 32;
/** Code bytes per group (32 × 8 or 4 bits), in the codes plane. */
export const QUANT_CODE_BYTES: Readonly<Record<QuantDType, number>> = { q8: 32, q4: 16 };
/** Bytes per group: codes + one f32 scale (in the scales plane). */
export const QUANT_GROUP_BYTES: Readonly<Record<QuantDType, number>> = {
  q8: QUANT_CODE_BYTES.q8 + 4,
  q4: QUANT_CODE_BYTES.q4 + 4,
};

export function isQuantized(dtype: DType): dtype is QuantDType {
  return dtype === "q8" || dtype === "q4";
}

/** Bytes of a dense tensor: elements × DTYPE_BYTES, or for q8/q4 (N, K): N · ⌈K/32⌉ · QUANT_GROUP_BYTES. */
export function storageBytes(dtype: DType, shape: Shape): number {
  if (isQuantized(dtype)) {
    if (shape.length !== 2) {
      throw new BackendError("bad_shape", `${dtype}: quantised tensors are 2-D (N, K), got [${shape}]`);
    }
    return shape[0] * Math.ceil(shape[1] / QUANT_GROUP) * QUANT_GROUP_BYTES[dtype];
  }
  let n = 1;
  for (const d of shape) n *= d;
  return n * DTYPE_BYTES[dtype];
}

export interface Tensor {
  /** Name of the backend that owns it; passing it to another backend is a `wrong_backend` error. */
  readonly backend: string;
  readonly dtype: DType;
  readonly shape: Shape;
  /** Elements between neighbours along each axis (0 on broadcast axes). */
  readonly strides: readonly number[];
  /** Elements from the start of the storage to element [0, 0, …]. */
  readonly offset: number;
  readonly disposed: boolean;
  dispose(): void;
}

export type BackendErrorCode =
  | "unsupported"
  | "bad_shape"
  | "bad_dtype"
  | "bad_argument"
  | "disposed"
  | "wrong_backend"
  | "out_of_memory"
  | "kernel";

export class BackendError extends Error {
  override name = "BackendError";
  constructor(readonly code: BackendErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Every op name `supports` knows. */
export const OP_NAMES = [
  "matmul",
  "linear",
  "attention",
  "layerNorm",
  "rmsNorm",
  "rope",
  "softmax",
  "gelu",
  "geluTanh",
  "quickGelu",
  "silu",
  "siluMul",
  "add",
  "mul",
  "scale",
  "mean",
  "embedding",
  "patchEmbed",
  "relevance",
  "windowPool",
  "contiguous",
  "copyInto",
  "concat",
  "cast",
  "quantize",
] as const;
export type OpName = typeof OP_NAMES[number];

export interface AttentionOptions {
  /** Query i sees keys j ≤ i + (Skv − Sq) (the new queries sit at the end of the cache). */
  causal: boolean;
  /** Multiplier of q·k; default 1/√d. */
  scale?: number;
}

export interface RopeOptions {
  /** Base θ of the frequencies θ^(−2i/d); LLaMA 10000, Qwen2 1000000. */
  theta: number;
  /** Position of the first row (the KV cache length when decoding). */
  offset?: number;
}

export interface WindowPoolOptions {
  /** (kt, kh, kw); PPLLaVA video (2,3,3), images (1,3,3). Output per axis: floor((I − k)/s) + 1. */
  kernel: readonly [number, number, number];
  stride: readonly [number, number, number];
  /** Temperature of the window softmax of p (spec: 0.01). */
  tau: number;
}

export interface BackendStats {
  /** Live tensor handles (views included). */
  tensors: number;
  /** Bytes of live storage. */
  bytes: number;
}

export interface Backend {
  readonly name: string;

  /** Whether `op` runs here for these input dtypes (in the op's argument order; omitted = all f32). */
  supports(op: OpName, dtypes?: readonly DType[]): boolean;

  // ── memory ────────────────────────────────────────────────────────────────────────────────────────────
  /** A new dense tensor holding `data`: f32 values, or the 16-bit patterns of f16/bf16 values. */
  upload(data: Float32Array | Uint16Array, shape: Shape, dtype?: FloatDType): Tensor;
  /** A q8/q4 weight of logical shape (N, K) from its bytes as stored (docs/quantization.md: codes plane, then the
   * f32 scales plane; `storageBytes(dtype, shape)` long). Ahead-of-time files load through this. */
  uploadQuantized(bytes: Uint8Array, shape: Shape, dtype: QuantDType): Tensor;
  /** Load-time quantisation of a dense 2-D f32/f16/bf16 weight (N, K) into q8/q4; `supports("quantize", [src])`.
   * A NaN or ±∞ value is `bad_argument`. */
  quantize(t: Tensor, dtype: QuantDType): Tensor;
  zeros(shape: Shape, dtype?: FloatDType): Tensor;
  /** The elements in row-major order of the shape, widened to f32 (views are read through their strides; q8/q4
   * are dequantised). */
  download(t: Tensor): Promise<Float32Array>;
  /** The stored bytes of a q8/q4 tensor (what `uploadQuantized` takes; `ppllava convert` writes them). */
  downloadQuantized(t: Tensor): Promise<Uint8Array>;
  /** Runs `body`; disposes every tensor it created except those reachable from its result (a Tensor, or arrays and
   * plain objects of them, two levels deep). Kept tensors move to the enclosing scope. Synchronous bodies only. */
  scope<T>(body: () => T): T;
  /** Takes `t` out of every open scope: it lives until disposed (weights, a KV cache made inside a scope). */
  keep<T extends Tensor>(t: T): T;
  stats(): BackendStats;

  // ── views (no copy) ───────────────────────────────────────────────────────────────────────────────────
  /** Same elements, new shape; needs a layout the shape can be expressed over (else `contiguous` first). */
  reshape(t: Tensor, shape: Shape): Tensor;
  permute(t: Tensor, axes: readonly number[]): Tensor;
  /** Broadcast view: axes of length 1 (and new leading axes) repeat to `shape` (stride 0), e.g. one CLS token
   * for every frame. Ops copy it where they need dense input. */
  expand(t: Tensor, shape: Shape): Tensor;
  /** Elements [start, end) along `axis`. */
  slice(t: Tensor, axis: number, start: number, end: number): Tensor;

  // ── data movement ─────────────────────────────────────────────────────────────────────────────────────
  /** A dense copy (row-major), same dtype. */
  contiguous(t: Tensor): Tensor;
  /** Writes src into the view dst (same shape; dst f32 or dst.dtype = src.dtype). The only mutating op. */
  copyInto(dst: Tensor, src: Tensor): void;
  concat(ts: readonly Tensor[], axis: number): Tensor;
  /** A dense f32 copy of an f16/bf16 (or f32) tensor, or the dequantised values of a q8/q4 one. */
  cast(t: Tensor, dtype: "f32"): Tensor;

  // ── ops: every output is a new dense f32 tensor unless stated ─────────────────────────────────────────
  /** a (…, M, K) f32 · b (…, K, N) (f32/f16/bf16, any strides; a 2-D b is shared by the batch) + bias (N). */
  matmul(a: Tensor, b: Tensor, bias?: Tensor): Tensor;
  /** x (…, K) or (K) · Wᵀ + bias: weight (N, K) as stored in checkpoints (f32/f16/bf16, or q8/q4 where
   * `supports("linear", ["f32", "q8"])`), bias (N) f32 → (…, N). */
  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor;
  /** q (B, Hq, Sq, D), k and v (B, Hkv, Skv, D) with Hq a multiple of Hkv (GQA), last axes dense. Returns
   * (B, Hq, Sq, D) as a view of a dense (B, Sq, Hq, D) buffer, so `reshape(permute(out,[0,2,1,3]), [B,Sq,Hq·D])`
   * is free. */
  attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): Tensor;
  /** Over the last axis: (x − μ)/√(σ² + eps)·gain + bias. */
  layerNorm(x: Tensor, gain: Tensor, bias: Tensor, eps: number): Tensor;
  /** Over the last axis: x/√(mean(x²) + eps)·gain. */
  rmsNorm(x: Tensor, gain: Tensor, eps: number): Tensor;
  /** Rotate-half RoPE of x (S, H, D) or (B, S, H, D), last axis dense; row s at position offset + s. */
  rope(x: Tensor, options: RopeOptions): Tensor;
  /** Softmax over the last axis of scale·x (scale default 1). */
  softmax(x: Tensor, scale?: number): Tensor;
  /** Exact GELU x·Φ(x) (erf). */
  gelu(x: Tensor): Tensor;
  /** x/2·(1 + tanh(√(2/π)(x + 0.044715x³))), PyTorch's gelu(approximate="tanh") (SigLIP). */
  geluTanh(x: Tensor): Tensor;
  /** x·σ(1.702x) (CLIP). */
  quickGelu(x: Tensor): Tensor;
  silu(x: Tensor): Tensor;
  /** silu(gate)·up, the LLaMA MLP's product, fused. */
  siluMul(gate: Tensor, up: Tensor): Tensor;
  /** a ∘ b, with b of a's shape or of a trailing part of it (a row, a block of rows) repeated over the rest. */
  add(a: Tensor, b: Tensor): Tensor;
  mul(a: Tensor, b: Tensor): Tensor;
  /** factor·x (the BT-Adapter's ½(main + BT) combine). */
  scale(x: Tensor, factor: number): Tensor;
  /** Mean over `axis`, which is removed from the shape (CLS tokens averaged over frames). Sums in f64. */
  mean(x: Tensor, axis: number): Tensor;
  /** Rows `ids` of table (V, D) (f32/f16/bf16, or q8/q4 where supported, dequantised) → (n, D) f32. An id
   * outside [0, V) is `bad_argument`. */
  embedding(table: Tensor, ids: Int32Array): Tensor;
  /** Conv2d kernel = stride = P, no bias: pixels (N, C, H, W), weight (Dout, C, P, P) → (N, (H/P)·(W/P), Dout). */
  patchEmbed(pixels: Tensor, weight: Tensor): Tensor;
  /** PGP step C: p = softmax_n(scale·cos(visual[n], text)), visual (N, dim), text (dim) → (N); f64 inside. */
  relevance(visual: Tensor, text: Tensor, scale: number): Tensor;
  /** PGP step E: x (T, H, W, C), p (T, H, W) or null (uniform) → (Ot, Oh, Ow, C), weights softmax(p/τ) per window. */
  windowPool(x: Tensor, p: Tensor | null, options: WindowPoolOptions): Tensor;
}
