/**
 * Loads `wasm/ppllava_kernels.wasm` (the C ABI of kernels-rs/kernels) on Deno, Bun and Node alike.
 *
 * This file is the whole seam between TypeScript and the module: instantiation, a scoped arena that allocates
 * blocks in the module's memory and frees them whatever happens, and `call`, which turns status codes and traps
 * into `KernelError`s. Each kernel family has its own small typed wrapper beside it (`relevance.ts`, …).
 */
import { readPackageFile } from "../../util/files.ts";

/** Why a kernel call failed. `trap` means the instance is discarded; the next `loadKernels()` makes a new one. */
export type KernelErrorCode =
  | "bad_shape"
  | "bad_argument"
  | "out_of_memory"
  | "no_simd"
  | "unsupported"
  | "invalid_data"
  | "limit"
  | "trap"
  | "abi"
  | "load";

export class KernelError extends Error {
  override name = "KernelError";
  constructor(readonly code: KernelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Status codes shared by every export (kernels-rs/kernels/src/abi.rs). 0 is success. */
const STATUS_CODES: Record<number, KernelErrorCode> = {
  1: "bad_shape",
  2: "bad_argument",
  3: "out_of_memory",
  4: "no_simd",
  5: "unsupported",
  6: "invalid_data",
  7: "limit",
};

const ABI_VERSION = 1;
export const KERNELS_WASM_PATH = "wasm/ppllava_kernels.wasm";

type Export = (...args: number[]) => number;
interface CoreExports {
  memory: WebAssembly.Memory;
  ppl_abi_version(): number;
  ppl_has_simd(): number;
  ppl_alloc(bytes: number): number;
  ppl_free(ptr: number, bytes: number): void;
}

type TypedArray = Float32Array | Float64Array | Int32Array | Uint32Array | Uint16Array | Uint8Array | Int8Array;
type TypedArrayClass<T extends TypedArray> = {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
};

/** A block of the module's memory, `length` elements of `type`. */
export interface Block<T extends TypedArray = TypedArray> {
  readonly ptr: number;
  readonly length: number;
  readonly type: TypedArrayClass<T>;
}

/** Allocation inside one `scope`: every block is freed when the scope ends. */
export interface Arena {
  /** Copies `data` into a new block. */
  input<T extends TypedArray>(data: T): Block<T>;
  /** A new zeroed block of `length` elements. */
  output<T extends TypedArray>(type: TypedArrayClass<T>, length: number): Block<T>;
  /** A copy of a block's contents (views are made fresh: growing memory detaches old ones). */
  read<T extends TypedArray>(block: Block<T>): T;
  /** A live view, valid only until the next call into the module. */
  view<T extends TypedArray>(block: Block<T>): T;
}

export class WasmKernels {
  #exports: (CoreExports & Record<string, unknown>) | null;

  private constructor(exports: CoreExports & Record<string, unknown>) {
    this.#exports = exports;
  }

  /** Instantiates the module from bytes or a compiled module; see `loadKernels` for the default file. */
  static async instantiate(source: BufferSource | WebAssembly.Module): Promise<WasmKernels> {
    let instance: WebAssembly.Instance;
    try {
      instance = source instanceof WebAssembly.Module
        ? await WebAssembly.instantiate(source, {})
        : (await WebAssembly.instantiate(source, {})).instance;
    } catch (cause) {
      throw new KernelError("load", `cannot instantiate the kernels module: ${String(cause)}`, { cause });
    }
    const exports = instance.exports as unknown as CoreExports & Record<string, unknown>;
    if (typeof exports.ppl_abi_version !== "function" || exports.ppl_abi_version() !== ABI_VERSION) {
      throw new KernelError("abi", `the kernels module does not speak ABI version ${ABI_VERSION}`);
    }
    return new WasmKernels(exports);
  }

  /** Whether the module was built with WebAssembly SIMD. */
  get hasSimd(): boolean {
    return this.#live().ppl_has_simd() === 1;
  }

  /** The instance's linear memory, for a module that works on its blocks in place (./relaxed.ts). */
  get memory(): WebAssembly.Memory {
    return this.#live().memory;
  }

  /** Bytes of linear memory the instance holds now. */
  get memoryBytes(): number {
    return this.#live().memory.buffer.byteLength;
  }

  /** Calls export `name`; a non-zero status or a trap becomes a KernelError naming `what`. */
  call(what: string, name: string, ...args: number[]): void {
    const status = this.callValue(what, name, ...args);
    if (status !== 0) {
      const code = STATUS_CODES[status] ?? "abi";
      throw new KernelError(code, `${what}: the kernel refused its input (${code})`);
    }
  }

  /** Calls export `name` and returns its result as is (for exports that return a value, not a status). */
  callValue(what: string, name: string, ...args: number[]): number {
    const fn = this.#live()[name];
    if (typeof fn !== "function") throw new KernelError("abi", `${what}: the kernels module has no export ${name}`);
    try {
      return (fn as Export)(...args);
    } catch (cause) {
      if (cause instanceof WebAssembly.RuntimeError) {
        // After a trap the allocator's state is unknown: drop the instance rather than reuse it.
        this.#exports = null;
        forgetShared(this);
        throw new KernelError("trap", `${what}: the kernels module trapped (${cause.message})`, { cause });
      }
      throw cause;
    }
  }

  /** Runs `body` with an arena; every block it allocated is freed afterwards, whatever happens. */
  scope<T>(body: (arena: Arena) => T): T {
    const blocks: Block[] = [];
    const memory = () => this.#live().memory.buffer as ArrayBuffer;
    const view = <A extends TypedArray>(block: Block<A>): A => new block.type(memory(), block.ptr, block.length);
    const output = <A extends TypedArray>(type: TypedArrayClass<A>, length: number): Block<A> => {
      const bytes = length * type.BYTES_PER_ELEMENT;
      const ptr = this.callValue("alloc", "ppl_alloc", bytes) >>> 0; // addresses ≥ 2 GiB come back as negative i32
      if (ptr === 0) throw new KernelError("out_of_memory", `cannot allocate ${bytes} bytes in the kernels module`);
      const block: Block<A> = { ptr, length, type };
      blocks.push(block);
      new Uint8Array(memory(), ptr, bytes).fill(0);
      return block;
    };
    const arena: Arena = {
      input: (data) => {
        const block = output(data.constructor as TypedArrayClass<typeof data>, data.length);
        view(block).set(data as never);
        return block;
      },
      output,
      read: <A extends TypedArray>(block: Block<A>) => view(block).slice() as A,
      view,
    };
    try {
      return body(arena);
    } finally {
      if (this.#exports) {
        for (const block of blocks) this.#exports.ppl_free(block.ptr, block.length * block.type.BYTES_PER_ELEMENT);
      }
    }
  }

  #live(): CoreExports & Record<string, unknown> {
    if (!this.#exports) throw new KernelError("trap", "this kernels instance trapped earlier and was discarded");
    return this.#exports;
  }
}

let shared: Promise<WasmKernels> | null = null;
let sharedInstance: WasmKernels | null = null;

function forgetShared(instance: WasmKernels) {
  if (sharedInstance === instance) {
    shared = null;
    sharedInstance = null;
  }
}

/**
 * The process-wide kernels instance, loaded once from the package's own `wasm/` folder (no network).
 * Pass `source` to load other bytes or a precompiled module instead (for example on a host without a file system).
 */
export function loadKernels(source?: BufferSource | WebAssembly.Module): Promise<WasmKernels> {
  if (source) return WasmKernels.instantiate(source);
  if (!shared) {
    shared = readPackageFile(KERNELS_WASM_PATH).then(WasmKernels.instantiate).then((kernels) => {
      sharedInstance = kernels;
      return kernels;
    });
    shared.catch(() => (shared = null));
  }
  return shared;
}
