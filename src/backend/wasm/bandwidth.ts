/**
 * Memory bandwidth of this WASM instance (`ppl_bandwidth_read`, kernels-rs/kernels/src/bandwidth.rs): one pass of
 * 16-byte loads over a buffer much larger than the caches. bench/big_model.ts runs it in 1 and 2 workers at once to
 * get the roofline of decoding (a stream over the weights).
 */
import type { WasmKernels } from "./loader.ts";

export interface BandwidthSample {
  bytes: number;
  /** Seconds of each pass. */
  seconds: number[];
}

export function readBandwidth(kernels: WasmKernels, bytes: number, passes: number, simd = true): BandwidthSample {
  const size = Math.ceil(bytes / 64) * 64;
  const ptr = kernels.callValue("alloc", "ppl_alloc", size) >>> 0;
  if (ptr === 0) throw new Error(`bandwidth: cannot allocate ${size} bytes`);
  try {
    // Touch every page first (and give it non-zero bytes) so the timed passes read resident memory.
    kernels.scope((arena) => arena.view({ ptr, length: size, type: Uint8Array }).fill(0x5a));
    const seconds: number[] = [];
    kernels.scope((arena) => {
      const out = arena.output(Uint32Array, 1);
      for (let i = 0; i < passes; i++) {
        const start = performance.now();
        kernels.call("bandwidth", "ppl_bandwidth_read", ptr, size, out.ptr, simd ? 1 : 0);
        seconds.push((performance.now() - start) / 1000);
      }
    });
    return { bytes: size, seconds };
  } finally {
    kernels.callValue("free", "ppl_free", ptr, size);
  }
}
