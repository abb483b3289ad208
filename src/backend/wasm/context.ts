/**
 * What the WASM op wrappers share: storage blocks in the kernels module's memory, element addresses of views,
 * dense temporaries that are always disposed, and kernel calls that turn statuses into `BackendError`s.
 */
import { BackendError, type DType, DTYPE_BYTES, isQuantized, type Shape, type Tensor } from "../backend.ts";
import type { Handle, Storage } from "../tensor_store.ts";
import { isDense } from "../views.ts";
import { KernelError, type WasmKernels } from "./loader.ts";
import type { RelaxedProducts } from "./relaxed.ts";

/** Element codes of the C ABI (kernels-rs/kernels/src/dispatch.rs; q8/q4 are the format codes of quant.rs). */
export const DTYPE_CODES: Readonly<Record<DType, number>> = { f32: 0, f16: 1, bf16: 2, q8: 3, q4: 4 };

export class WasmStorage implements Storage {
  #freed = false;
  constructor(readonly kernels: WasmKernels, readonly ptr: number, readonly bytes: number) {}

  release(): void {
    if (this.#freed) return;
    this.#freed = true;
    try {
      this.kernels.callValue("free", "ppl_free", this.ptr, this.bytes);
    } catch {
      // The instance trapped and was discarded: its memory went with it.
    }
  }
}

export type WasmHandle = Handle<WasmStorage>;

/** The backend as the op wrappers see it. */
export interface WasmContext {
  readonly kernels: WasmKernels;
  /** 1 for the SIMD kernels, 0 for their scalar twins. */
  readonly simd: number;
  /** The relaxed SIMD q4 and q8 products over this instance's memory, each null where not used (./relaxed.ts). */
  readonly relaxed: RelaxedProducts;
  use(t: Tensor, what: string): WasmHandle;
  /** A new dense tensor for a kernel to fill completely (not zeroed). */
  output(shape: Shape, dtype?: DType): WasmHandle;
  contiguous(t: Tensor): Tensor;
  permute(t: Tensor, axes: readonly number[]): Tensor;
}

/** Byte address of element [0, …] of a view (a quantised tensor is never a view: its block's start). */
export function address(h: WasmHandle): number {
  return h.storage.ptr + (isQuantized(h.dtype) ? 0 : h.offset * DTYPE_BYTES[h.dtype]);
}

export function requireDtype(h: WasmHandle, what: string, ...allowed: DType[]): void {
  if (!allowed.includes(h.dtype)) {
    throw new BackendError("bad_dtype", `${what}: got ${h.dtype}, supported: ${allowed.join(", ")}`);
  }
}

/**
 * Runs `body` over dense versions of `tensors` (a view that is already dense is used as is; others are copied
 * into temporaries that are disposed afterwards, whatever happens).
 */
export function withDense<T>(
  ctx: WasmContext,
  what: string,
  tensors: readonly Tensor[],
  body: (hs: WasmHandle[]) => T,
): T {
  const temporaries: Tensor[] = [];
  try {
    const handles = tensors.map((t) => {
      const h = ctx.use(t, what);
      if (isDense(h)) return h;
      const copy = ctx.contiguous(h);
      temporaries.push(copy);
      return ctx.use(copy, what);
    });
    return body(handles);
  } finally {
    for (const t of temporaries) t.dispose();
  }
}

/** Calls a kernel export; a refused input becomes a BackendError with the kernel's reason. */
export function callKernel(ctx: WasmContext, what: string, name: string, ...args: number[]): void {
  try {
    ctx.kernels.call(what, name, ...args);
  } catch (cause) {
    if (cause instanceof KernelError) {
      const code = cause.code === "bad_shape" || cause.code === "bad_argument" || cause.code === "unsupported" ||
          cause.code === "out_of_memory"
        ? cause.code
        : "kernel";
      throw new BackendError(code, `${what}: ${cause.message}`, { cause });
    }
    throw cause;
  }
}

/** A live typed view of module memory (valid until the next call into the module). */
export function memoryView<T extends Float32Array | Uint16Array | Uint32Array | Int32Array | Uint8Array>(
  kernels: WasmKernels,
  type: { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number },
  ptr: number,
  length: number,
): T {
  return kernels.scope((arena) => arena.view({ ptr, length, type }));
}

/** Runs `body` with small u32/i32 arrays copied into the module (shapes, strides, ids), freed afterwards. */
export function withArrays<T>(
  kernels: WasmKernels,
  arrays: readonly (Uint32Array | Int32Array)[],
  body: (pointers: number[]) => T,
): T {
  return kernels.scope((arena) => body(arrays.map((a) => arena.input(a).ptr)));
}

/** A new output of `shape` that `fill` writes through a kernel; disposed if `fill` throws, so a refusal leaks nothing. */
export function filled(ctx: WasmContext, fill: (out: WasmHandle) => void, shape: Shape, dtype?: DType): WasmHandle {
  const out = ctx.output(shape, dtype);
  try {
    fill(out);
    return out;
  } catch (error) {
    out.dispose();
    throw error;
  }
}
