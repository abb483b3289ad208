/**
 * What every backend shares: tensor handles over reference-counted storage, scopes that dispose what they made,
 * the views (reshape/permute/slice), and the ops that are compositions of others (linear, concat). A backend
 * extends `TensorStore` with its storage type and implements the kernels.
 */
import {
  BackendError,
  type BackendStats,
  type DType,
  isQuantized,
  type Shape,
  storageBytes,
  type Tensor,
} from "./backend.ts";
import {
  checkShape,
  denseStrides,
  expandLayout,
  type Layout,
  permuteLayout,
  reshapeStrides,
  sliceLayout,
} from "./views.ts";

/** A block of device memory. `release` is called once, when the last handle over it is disposed. */
export interface Storage {
  readonly bytes: number;
  release(): void;
}

interface Counted<S extends Storage> {
  storage: S;
  refs: number;
}

export class Handle<S extends Storage> implements Tensor {
  #disposed = false;
  constructor(
    readonly store: TensorStore<S>,
    readonly counted: Counted<S>,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly strides: readonly number[],
    readonly offset: number,
  ) {}

  get backend(): string {
    return this.store.name;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  get storage(): S {
    return this.counted.storage;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.store.released(this);
  }
}

export abstract class TensorStore<S extends Storage> {
  abstract readonly name: string;
  #scopes: Set<Handle<S>>[] = [];
  #tensors = 0;
  #bytes = 0;

  /** A new dense storage of `bytes` bytes, zeroed when `zero` (op outputs skip it: kernels write every element). */
  protected abstract allocate(bytes: number, zero: boolean): S;

  stats(): BackendStats {
    return { tensors: this.#tensors, bytes: this.#bytes };
  }

  /** A dense tensor over fresh storage; its contents are unspecified unless `zero`. */
  protected create(shape: Shape, dtype: DType = "f32", zero = false): Handle<S> {
    checkShape(shape, "tensor");
    const storage = this.allocate(Math.max(storageBytes(dtype, shape), 1), zero);
    this.#bytes += storage.bytes;
    return this.wrap({ storage, refs: 0 }, dtype, { shape: shape.slice(), strides: denseStrides(shape), offset: 0 });
  }

  protected wrap(counted: Counted<S>, dtype: DType, layout: Layout): Handle<S> {
    const handle = new Handle(this, counted, dtype, layout.shape, layout.strides, layout.offset);
    counted.refs++;
    this.#tensors++;
    this.#scopes[this.#scopes.length - 1]?.add(handle);
    return handle;
  }

  /** Called by Handle.dispose. */
  released(handle: Handle<S>): void {
    this.#tensors--;
    for (const scope of this.#scopes) scope.delete(handle);
    if (--handle.counted.refs === 0) {
      this.#bytes -= handle.counted.storage.bytes;
      handle.counted.storage.release();
    }
  }

  /** The live handle behind `t` for a view op: quantised tensors have no per-element layout to view. */
  #viewable(t: Tensor, what: string): Handle<S> {
    const h = this.use(t, what);
    if (isQuantized(h.dtype)) {
      throw new BackendError(
        "bad_dtype",
        `${what}: a ${h.dtype} tensor cannot be viewed (only linear, embedding, cast)`,
      );
    }
    return h;
  }

  /** The live handle behind `t`, or a typed error naming `what`. */
  protected use(t: Tensor, what: string): Handle<S> {
    if (!(t instanceof Handle) || t.store !== this) {
      throw new BackendError("wrong_backend", `${what}: the tensor belongs to backend ${t.backend}, not ${this.name}`);
    }
    if (t.disposed) throw new BackendError("disposed", `${what}: the tensor was disposed`);
    return t as Handle<S>;
  }

  scope<T>(body: () => T): T {
    const made = new Set<Handle<S>>();
    this.#scopes.push(made);
    let result: T;
    try {
      result = body();
    } catch (error) {
      this.#scopes.pop();
      for (const handle of made) handle.dispose();
      throw error;
    }
    this.#scopes.pop();
    const kept = new Set<Tensor>();
    collect(result, kept, 0);
    for (const handle of made) {
      if (kept.has(handle)) this.#scopes[this.#scopes.length - 1]?.add(handle);
      else handle.dispose();
    }
    return result;
  }

  keep<T extends Tensor>(t: T): T {
    const h = this.use(t, "keep");
    for (const scope of this.#scopes) scope.delete(h);
    return t;
  }

  reshape(t: Tensor, shape: Shape): Tensor {
    const h = this.#viewable(t, "reshape");
    checkShape(shape, "reshape");
    const strides = reshapeStrides(h, shape);
    if (!strides) {
      throw new BackendError(
        "bad_shape",
        `reshape: [${h.shape}] with strides [${h.strides}] cannot be viewed as [${shape}] (sizes differ or a copy is needed: use contiguous)`,
      );
    }
    return this.wrap(h.counted, h.dtype, { shape: shape.slice(), strides, offset: h.offset });
  }

  permute(t: Tensor, axes: readonly number[]): Tensor {
    const h = this.#viewable(t, "permute");
    return this.wrap(h.counted, h.dtype, permuteLayout(h, axes));
  }

  expand(t: Tensor, shape: Shape): Tensor {
    const h = this.#viewable(t, "expand");
    checkShape(shape, "expand");
    return this.wrap(h.counted, h.dtype, expandLayout(h, shape));
  }

  slice(t: Tensor, axis: number, start: number, end: number): Tensor {
    const h = this.#viewable(t, "slice");
    return this.wrap(h.counted, h.dtype, sliceLayout(h, axis, start, end));
  }

  abstract copyInto(dst: Tensor, src: Tensor): void;
  abstract zeros(shape: Shape, dtype?: DType): Tensor;
  abstract matmul(a: Tensor, b: Tensor, bias?: Tensor): Tensor;

  concat(ts: readonly Tensor[], axis: number): Tensor {
    if (ts.length === 0) throw new BackendError("bad_shape", "concat: no tensors");
    const first = this.use(ts[0], "concat");
    const rank = first.shape.length;
    if (!Number.isInteger(axis) || axis < 0 || axis >= rank) {
      throw new BackendError("bad_shape", `concat: axis ${axis} is outside rank ${rank}`);
    }
    let total = 0;
    for (const t of ts) {
      const h = this.use(t, "concat");
      const ok = h.shape.length === rank && h.shape.every((d, i) => i === axis || d === first.shape[i]);
      if (!ok) {
        throw new BackendError("bad_shape", `concat: [${h.shape}] does not match [${first.shape}] off axis ${axis}`);
      }
      if (h.dtype !== first.dtype) throw new BackendError("bad_dtype", `concat: ${h.dtype} next to ${first.dtype}`);
      total += h.shape[axis];
    }
    const shape = first.shape.slice();
    shape[axis] = total;
    const out = this.zeros(shape, first.dtype);
    let start = 0;
    for (const t of ts) {
      const part = this.slice(out, axis, start, start + t.shape[axis]);
      this.copyInto(part, t);
      part.dispose();
      start += t.shape[axis];
    }
    return out;
  }

  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    const w = this.use(weight, "linear");
    if (w.shape.length !== 2) throw new BackendError("bad_shape", `linear: weight must be (N, K), got [${w.shape}]`);
    const wt = this.permute(w, [1, 0]);
    const vector = x.shape.length === 1;
    const rows = vector ? this.reshape(x, [1, x.shape[0]]) : x;
    try {
      const out = this.matmul(rows, wt, bias);
      if (!vector) return out;
      const flat = this.reshape(out, [out.shape[1]]);
      out.dispose();
      return flat;
    } finally {
      wt.dispose();
      if (rows !== x) rows.dispose();
    }
  }
}

function collect(value: unknown, into: Set<Tensor>, depth: number): void {
  if (value instanceof Handle) into.add(value);
  else if (depth < 2 && Array.isArray(value)) { for (const v of value) collect(v, into, depth + 1); }
  else if (
    depth < 2 && value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype
  ) {
    for (const v of Object.values(value)) collect(v, into, depth + 1);
  }
}
