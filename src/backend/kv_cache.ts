/**
 * A KV cache for decoding, written once against the Backend interface: keys and values of one layer live in two
 * (B, Hkv, capacity, D) f32 tensors; `append` writes the new steps with `copyInto`, and `keys`/`values` are views
 * of the filled part that `attention` reads in place (no copy per step).
 */
import { type Backend, BackendError, type Tensor } from "./backend.ts";

export interface KvCacheOptions {
  batch: number;
  kvHeads: number;
  headDim: number;
  /** Most positions the cache holds (the context length). */
  capacity: number;
}

export class KvCache {
  readonly #backend: Backend;
  #keys: Tensor;
  #values: Tensor;
  #length = 0;

  constructor(backend: Backend, readonly options: KvCacheOptions) {
    const { batch, kvHeads, headDim, capacity } = options;
    this.#backend = backend;
    // Kept out of any open scope: the cache outlives the step that made it, until `dispose`.
    this.#keys = backend.keep(backend.zeros([batch, kvHeads, capacity, headDim]));
    this.#values = backend.keep(backend.zeros([batch, kvHeads, capacity, headDim]));
  }

  /** Positions filled so far (the RoPE offset of the next step). */
  get length(): number {
    return this.#length;
  }

  /** Appends k and v (B, Hkv, S, D) at positions [length, length + S). */
  append(k: Tensor, v: Tensor): void {
    const steps = k.shape[2];
    if (this.#length + steps > this.options.capacity) {
      throw new BackendError(
        "bad_shape",
        `kv cache: ${this.#length} + ${steps} positions exceed the capacity ${this.options.capacity}`,
      );
    }
    for (const [dst, src] of [[this.#keys, k], [this.#values, v]] as const) {
      const part = this.#backend.slice(dst, 2, this.#length, this.#length + steps);
      try {
        this.#backend.copyInto(part, src);
      } finally {
        part.dispose();
      }
    }
    this.#length += steps;
  }

  /** Views (B, Hkv, length, D) of the filled keys and values; dispose them after use. */
  view(): { keys: Tensor; values: Tensor } {
    return {
      keys: this.#backend.slice(this.#keys, 2, 0, this.#length),
      values: this.#backend.slice(this.#values, 2, 0, this.#length),
    };
  }

  /**
   * Beam search: batch row i becomes a copy of the old row `sources[i]` (rows may repeat or vanish), for the
   * filled positions. One copy per row into fresh buffers, which then replace the old ones.
   */
  reorder(sources: readonly number[]): void {
    const { batch } = this.options;
    if (sources.length !== batch || !sources.every((s) => Number.isInteger(s) && s >= 0 && s < batch)) {
      throw new BackendError(
        "bad_argument",
        `kv cache: reorder needs ${batch} row indices in [0, ${batch}), got [${sources}]`,
      );
    }
    const b = this.#backend;
    const shape = this.#keys.shape;
    const next = [b.keep(b.zeros(shape)), b.keep(b.zeros(shape))];
    b.scope(() => {
      for (const [k, old] of [this.#keys, this.#values].entries()) {
        const filled = b.slice(old, 2, 0, this.#length);
        const target = b.slice(next[k], 2, 0, this.#length);
        sources.forEach((source, row) =>
          b.copyInto(b.slice(target, 0, row, row + 1), b.slice(filled, 0, source, source + 1))
        );
      }
    });
    this.#keys.dispose();
    this.#values.dispose();
    [this.#keys, this.#values] = next;
  }

  /** Forgets every position (a new conversation reuses the memory). */
  reset(): void {
    this.#length = 0;
  }

  dispose(): void {
    this.#keys.dispose();
    this.#values.dispose();
  }
}
