/**
 * Vision features kept between requests (the follow-up question of a chat re-runs only the text tower, the
 * pooling and the LLM): a memory-bounded LRU of backend tensors, keyed by the content hash of the pixels plus how
 * they were sampled. Evicted and replaced entries are disposed.
 */
import type { Tensor } from "../backend/backend.ts";
import { storageBytes } from "../backend/backend.ts";

export class FeaturesCache {
  readonly #entries = new Map<string, { tensor: Tensor; bytes: number }>();
  #bytes = 0;

  /** maxBytes 0 disables the cache. */
  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The tensor under `key` (now the most recently used), or undefined. Do not dispose it: the cache owns it. */
  get(key: string): Tensor | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.tensor;
  }

  /** Stores `tensor` (the cache takes ownership); false (and nothing kept) when it alone exceeds the bound. */
  set(key: string, tensor: Tensor): boolean {
    const bytes = storageBytes(tensor.dtype, tensor.shape);
    this.delete(key);
    if (bytes > this.maxBytes) return false;
    while (this.#bytes + bytes > this.maxBytes) {
      const oldest = this.#entries.keys().next().value as string;
      this.delete(oldest);
    }
    this.#entries.set(key, { tensor, bytes });
    this.#bytes += bytes;
    return true;
  }

  delete(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
    entry.tensor.dispose();
  }

  clear(): void {
    for (const key of [...this.#entries.keys()]) this.delete(key);
  }
}

/** Hex SHA-256 of pixel data (Web Crypto: the same on Deno, Bun, Node and browsers). */
export async function contentHash(data: Float32Array): Promise<string> {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const digest = await crypto.subtle.digest("SHA-256", bytes.slice());
  return Array.from(new Uint8Array(digest), (x) => x.toString(16).padStart(2, "0")).join("");
}
