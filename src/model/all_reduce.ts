/**
 * The all-reduce of the sharded LLM done by the workers themselves, over one SharedArrayBuffer: every shard writes
 * its partial sum into its own slot, waits at a barrier (Atomics.wait), and adds all W slots, in shard order, to its
 * copy of the residual stream. Every shard adds the same numbers in the same order, so their residual streams stay
 * bit-identical without the main thread in the loop; a whole forward is then one message each way instead of two
 * round trips per layer through the main thread.
 *
 * Layout: 16 bytes of Int32 control (arrivals, generation, abort) then 2 × W slots of n f32 (two parities: a slot is
 * rewritten only after a later barrier, which every shard reaches after reading it).
 */

const ARRIVED = 0;
const GENERATION = 1;
const ABORT = 2;
const CONTROL_BYTES = 16;

export function exchangeBytes(workers: number, values: number): number {
  return CONTROL_BYTES + 2 * workers * values * 4;
}

export class AllReduce {
  readonly #control: Int32Array;
  #parity = 0;

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly workers: number,
    readonly index: number,
    readonly values: number,
  ) {
    if (buffer.byteLength < exchangeBytes(workers, values)) {
      throw new Error(`all-reduce: ${buffer.byteLength} bytes cannot hold ${workers} slots of ${values} values`);
    }
    this.#control = new Int32Array(buffer, 0, 4);
  }

  /** Returns base + Σ_w partial_w (f32, in shard order), after every shard gave its partial. */
  sum(base: Float32Array, partial: Float32Array): Float32Array {
    this.#slot(this.#parity, this.index).set(partial);
    this.#barrier();
    const out = base.slice();
    for (let w = 0; w < this.workers; w++) {
      const slot = this.#slot(this.#parity, w);
      for (let i = 0; i < out.length; i++) out[i] += slot[i];
    }
    this.#parity ^= 1;
    return out;
  }

  /** Wakes every shard waiting at a barrier with an error (this shard failed). */
  abort(): void {
    Atomics.store(this.#control, ABORT, 1);
    Atomics.notify(this.#control, GENERATION);
  }

  #slot(parity: number, w: number): Float32Array {
    return new Float32Array(this.buffer, CONTROL_BYTES + (parity * this.workers + w) * this.values * 4, this.values);
  }

  #barrier(): void {
    const c = this.#control;
    const generation = Atomics.load(c, GENERATION);
    if (Atomics.add(c, ARRIVED, 1) === this.workers - 1) {
      Atomics.store(c, ARRIVED, 0);
      Atomics.add(c, GENERATION, 1);
      Atomics.notify(c, GENERATION);
      return;
    }
    while (Atomics.load(c, GENERATION) === generation) {
      if (Atomics.load(c, ABORT) !== 0) throw new Error("all-reduce: another shard failed during this forward");
      Atomics.wait(c, GENERATION, generation, 100);
    }
  }
}
