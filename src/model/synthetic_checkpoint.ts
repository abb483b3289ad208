/**
 * A checkpoint folder that is never written: `syntheticCheckpoint(config)` is a `FileSet` whose config.json is the
 * given config and whose model.safetensors holds every tensor of the §6 layout, seeded random values generated for
 * each byte range when it is read. `loadModel(syntheticCheckpoint(VICUNA_7B_CONFIG))` then goes through exactly the
 * path a real folder does (header parse, validation, memory plan, per-tensor reads, shards) without a 14.5 GB file:
 * the way to test and benchmark the real 7B shapes on a small disk.
 *
 * Values: matrices uniform in ±0.02·√3 (std 0.02, the HF init), norm gains 1 ± that, biases ±that, logit_scale
 * ln 100. Block b (4096 elements) of tensor k is a window of a fixed 64 Ki-element noise table at an offset hashed
 * from (seed, k, b): any byte range reads the same at any time, and generation runs at copy speed (the values are
 * not independent across blocks; for shapes, memory and speed that does not matter).
 */
import type { ByteSource, FileSet } from "../util/random_access.ts";
import { FileAccessError } from "../util/random_access.ts";
import { parseConfigText } from "./config.ts";
import { weightLayout } from "./weights.ts";

/** Vicuna-7B PPLLaVA (spec §2): CLIP ViT-L/14-336 + BT-Adapter (depth 4), the 248-position CLIP text tower,
 * vicuna-7b-v1.5 (hidden 4096, 32 layers, 32 heads, MLP 11008, vocab 32064). */
export const VICUNA_7B_CONFIG = {
  architectures: ["LlavaInterleaveForConditionalGeneration"],
  model_type: "llava_next",
  btadapter: true,
  btadapter_depth: 4,
  clip_post_pretrain: null,
  clip_weight: "openai/clip-vit-large-patch14-336",
  extend_clip: true,
  frame_shape: [24, 24],
  hidden_size: 4096,
  ignore_index: -100,
  image_pooling_kernel: [1, 3, 3],
  image_pooling_stride: [1, 3, 3],
  image_token_index: 32000,
  max_T: 64,
  pad_token_id: 0,
  pllava_pooling_shape: null,
  pooling: "ppllava",
  pooling_kernel: [2, 3, 3],
  pooling_stride: [2, 3, 3],
  pooling_temp: 0.01,
  projector_hidden_act: "gelu",
  text_config: {
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    vocab_size: 32064,
    max_position_embeddings: 4096,
    hidden_act: "silu",
    model_type: "llama",
  },
  tie_word_embeddings: false,
  torch_dtype: "float16",
  use_image_newline_parameter: true,
  vision_config: {
    hidden_size: 1024,
    intermediate_size: 4096,
    num_hidden_layers: 24,
    num_attention_heads: 16,
    patch_size: 14,
    image_size: 336,
    num_channels: 3,
    layer_norm_eps: 1e-5,
    projection_dim: 768,
    hidden_act: "quick_gelu",
    depth: 4,
    max_T: 64,
    model_type: "clip_vision_model",
  },
  vision_feature_layer: -2,
  vision_feature_select_strategy: "default",
  clip_text_config: {
    hidden_size: 768,
    intermediate_size: 3072,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    vocab_size: 49408,
    max_position_embeddings: 77,
    projection_dim: 768,
    layer_norm_eps: 1e-5,
    hidden_act: "quick_gelu",
  },
};

export interface SyntheticOptions {
  seed?: number;
  /** Stored dtype of every tensor (default F16). */
  dtype?: "F16" | "BF16" | "F32";
  /** Leave out the tensors inference never reads (default true: smaller headers, same loads). */
  neededOnly?: boolean;
}

interface Entry {
  name: string;
  begin: number; // absolute
  end: number;
  kind: "matrix" | "gain" | "bias" | "scale";
  seed: number;
}

const PATTERNS = 4096;
const STD = 0.02;
/** Elements per generated block, and the noise table's length (a power of two). */
const BLOCK = 4096;
const SPAN = 65536;

export function syntheticCheckpoint(config: object, options: SyntheticOptions = {}): FileSet {
  const configText = JSON.stringify(config, null, 2);
  const parsed = parseConfigText(configText);
  const dtype = options.dtype ?? "F16";
  const element = dtype === "F32" ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: { format: "pt", synthetic: "ppllava-edge" } };
  const entries: Entry[] = [];
  let offset = 0;
  let index = 0;
  for (const [name, expected] of weightLayout(parsed)) {
    index++;
    if ((options.neededOnly ?? true) && !expected.needed) continue;
    const count = expected.shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype, shape: expected.shape, data_offsets: [offset, offset + count * element] };
    entries.push({
      name,
      begin: offset,
      end: offset + count * element,
      kind: kindOf(name, expected.shape.length),
      seed: hash(options.seed ?? 0, index),
    });
    offset += count * element;
  }
  let headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (headerBytes.length % 8)) % 8; // data 8-byte aligned, as the reference writer does
  headerBytes = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(pad));
  const dataStart = 8 + headerBytes.length;
  for (const e of entries) {
    e.begin += dataStart;
    e.end += dataStart;
  }
  const size = dataStart + offset;
  const tables = patternTables(dtype);
  const source = (name: string): ByteSource => ({
    name,
    size,
    read(at, length) {
      if (at < 0 || length < 0 || at + length > size) {
        throw new FileAccessError("io", `${name}: range ${at}+${length} runs past the end (${size} bytes)`);
      }
      const out = new Uint8Array(length);
      const prefix = new Uint8Array(dataStart);
      if (at < dataStart) {
        new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
        prefix.set(headerBytes, 8);
        out.set(prefix.subarray(at, Math.min(dataStart, at + length)));
      }
      for (const e of overlapping(entries, at, at + length)) fill(out, at, e, element, tables);
      return Promise.resolve(out);
    },
    close: () => Promise.resolve(),
  });
  return {
    label: `synthetic:${parsed.llm.hiddenSize}x${parsed.llm.numLayers}`,
    exists: (name) => Promise.resolve(name === "config.json" || name === "model.safetensors"),
    readText(name) {
      if (name === "config.json") return Promise.resolve(configText);
      return Promise.reject(new FileAccessError("not_found", `synthetic checkpoint has no ${name}`));
    },
    open(name) {
      if (name === "model.safetensors") return Promise.resolve(source(name));
      return Promise.reject(new FileAccessError("not_found", `synthetic checkpoint has no ${name}`));
    },
  };
}

function kindOf(name: string, rank: number): Entry["kind"] {
  if (name.endsWith("logit_scale")) return "scale";
  if (name.endsWith(".bias")) return "bias";
  if (rank === 1 && /norm|layrnorm|_ln\./.test(name)) return "gain";
  return "matrix";
}

interface Tables {
  /** SPAN + BLOCK elements of noise (encoded in the stored dtype): centred values, and 1 + those (gains). */
  centred: Uint8Array;
  gains: Uint8Array;
  /** One element: ln 100. */
  scale: Uint8Array;
}

/** Noise tables: element j is one of PATTERNS values evenly spread over ±STD·√3, picked by a hash of j. */
function patternTables(dtype: "F16" | "BF16" | "F32"): Tables {
  const element = dtype === "F32" ? 4 : 2;
  const encode = (values: number[]) => {
    const out = new Uint8Array(values.length * element);
    const view = new DataView(out.buffer);
    values.forEach((v, i) => {
      if (dtype === "F32") view.setFloat32(i * 4, v, true);
      else if (dtype === "F16") view.setUint16(i * 2, toF16(v), true);
      else {
        const f = new DataView(new ArrayBuffer(4));
        f.setFloat32(0, v, true);
        view.setUint16(i * 2, f.getUint32(0, true) >>> 16, true);
      }
    });
    return out;
  };
  const a = STD * Math.sqrt(3);
  const noise = Array.from(
    { length: SPAN + BLOCK },
    (_, j) => (((hash(0x5eed, j) & (PATTERNS - 1)) + 0.5) / PATTERNS * 2 - 1) * a,
  );
  return { centred: encode(noise), gains: encode(noise.map((v) => 1 + v)), scale: encode([Math.log(100)]) };
}

/** IEEE binary16 bits of `value` (normal values rounded; tiny values as subnormals), as checkpoints store f16. */
export function toF16(value: number): number {
  const f = new DataView(new ArrayBuffer(4));
  f.setFloat32(0, value, true);
  const x = f.getUint32(0, true);
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp <= 0) return sign | ((mant | 0x800000) >>> (14 - exp)); // subnormal (tiny values only)
  return sign | (exp << 10) | Math.round(mant / 0x2000);
}

function overlapping(entries: Entry[], from: number, to: number): Entry[] {
  // Entries are sorted by offset: binary search the first that ends after `from`.
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entries[mid].end <= from) lo = mid + 1;
    else hi = mid;
  }
  const out: Entry[] = [];
  for (let i = lo; i < entries.length && entries[i].begin < to; i++) out.push(entries[i]);
  return out;
}

/** Writes the bytes of entry e that fall in [at, at + out.length): block k of BLOCK elements is a window of the
 * noise table at a hashed offset, so any range reads the same bytes and generation runs at copy speed. */
function fill(out: Uint8Array, at: number, e: Entry, element: number, tables: Tables): void {
  const from = Math.max(at, e.begin);
  const to = Math.min(at + out.length, e.end);
  if (e.kind === "scale") {
    for (let pos = from; pos < to; pos++) out[pos - at] = tables.scale[(pos - e.begin) % element];
    return;
  }
  const noise = e.kind === "gain" ? tables.gains : tables.centred;
  const blockBytes = BLOCK * element;
  for (let pos = from; pos < to;) {
    const rel = pos - e.begin;
    const block = Math.floor(rel / blockBytes);
    const end = Math.min(to, e.begin + (block + 1) * blockBytes);
    const start = (hash(e.seed, block) & (SPAN - 1)) * element + (rel - block * blockBytes);
    out.set(noise.subarray(start, start + (end - pos)), pos - at);
    pos = end;
  }
}

/** A 32-bit mix of (seed, i) (murmur3's finaliser). */
function hash(seed: number, i: number): number {
  let h = Math.imul(i ^ seed, 0x9e3779b1) ^ seed;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
