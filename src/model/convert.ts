/**
 * `ppllava convert`: a checkpoint folder → the same HF-layout folder with the LLM weights (and with `quantVision` the
 * vision tower's linear weights) quantised ahead of time (docs/quantization.md). Streams tensor by tensor: each output
 * file's header is computed from the source headers first (quantised sizes follow from shapes), then every tensor is
 * read, quantised on the backend if the policy names it, and appended; at most one tensor is in memory at a time.
 * Sharded checkpoints keep their shards (each quantised weight's `.scales` goes to its shard, and the index is
 * rewritten); every other file of the folder (config, tokenizers, `clip_tokenizer/`) is copied.
 *
 * The quantisation is the backend's `quantize`, the same call `loadModel(dir, { quantize })` makes, so a converted
 * checkpoint loads to the very bytes load-time quantisation gives.
 */
import type { Backend, QuantDType } from "../backend/backend.ts";
import { createWasmBackend } from "../backend/wasm/backend.ts";
import { fileSource } from "../util/random_access.ts";
import {
  parseQuantMetadata,
  QUANT_METADATA_KEY,
  quantization,
  type QuantizedTensor,
  quantMetadata,
  quantTensorShapes,
  scalesName,
} from "./quant_checkpoint.ts";
import { SafetensorsFile, WeightsError } from "./safetensors.ts";
import { openCheckpoint } from "./weights.ts";

export interface ConvertOptions {
  quant: QuantDType;
  /** The vision tower's linear weights too (`loadModel`'s `quantizeVision`; docs/quantization.md). */
  quantVision?: QuantDType;
  /** Where the quantisation runs (default: the WASM SIMD backend). */
  backend?: Backend;
  /** Called after each tensor is written. */
  progress?: (name: string, done: number, total: number) => void;
}

export interface ConvertReport {
  files: string[];
  quantized: number;
  copied: number;
  bytesIn: number;
  bytesOut: number;
}

const INDEX = "model.safetensors.index.json";

type Planned =
  | { kind: "copy"; name: string; dtype: string; shape: readonly number[]; bytes: number }
  | { kind: "quantize"; name: string; q: QuantizedTensor; from: string; codes: number; scales: number }
  | { kind: "keep"; name: string; q: QuantizedTensor; codes: number; scales: number };

export async function convertCheckpoint(src: string, dst: string, options: ConvertOptions): Promise<ConvertReport> {
  const modes = [["--quant", options.quant], ["--quant-vision", options.quantVision]] as const;
  for (const [flag, mode] of modes) {
    if (mode !== "q8" && mode !== "q4" && (flag === "--quant" || mode !== undefined)) {
      throw new WeightsError("bad_dtype", `convert: ${flag} ${mode}; allowed: q8, q4`);
    }
  }
  const policy = quantization(options.quant, options.quantVision).quantizePolicy;
  const fs = await import("node:fs/promises");
  // Validates config.json against every tensor first, so a broken source fails before anything is written.
  await (await openCheckpoint(src)).close();
  const exists = (p: string) => fs.stat(p).then(() => true, () => false);
  const sharded = await exists(`${src}/${INDEX}`);
  const index = sharded ? JSON.parse(await fs.readFile(`${src}/${INDEX}`, "utf8")) : null;
  const files: string[] = sharded
    ? [...new Set(Object.values(index.weight_map as Record<string, string>))]
    : ["model.safetensors"];
  if (await exists(dst) && (await fs.readdir(dst)).length > 0) {
    throw new WeightsError("io", `convert: ${dst} exists and is not empty`);
  }
  await fs.mkdir(dst, { recursive: true });
  await copyOtherFiles(fs, src, dst);

  const backend = options.backend ?? await createWasmBackend();
  const report: ConvertReport = { files, quantized: 0, copied: 0, bytesIn: 0, bytesOut: 0 };
  const weightMap: Record<string, string> = {};
  let dataBytes = 0;
  for (const file of files) {
    const source = await SafetensorsFile.open(await fileSource(`${src}/${file}`));
    try {
      const written = await convertFile(fs, source, `${dst}/${file}`, options, policy, backend, report);
      for (const name of written.names) weightMap[name] = file;
      dataBytes += written.dataBytes;
    } finally {
      await source.close();
    }
  }
  if (index) {
    const out = { ...index, metadata: { ...(index.metadata ?? {}), total_size: dataBytes }, weight_map: weightMap };
    await fs.writeFile(`${dst}/${INDEX}`, JSON.stringify(out, null, 2) + "\n");
  }
  return report;
}

async function copyOtherFiles(fs: typeof import("node:fs/promises"), src: string, dst: string): Promise<void> {
  for (const entry of await fs.readdir(src, { withFileTypes: true })) {
    if (entry.name.endsWith(".safetensors") || entry.name === INDEX) continue;
    await fs.cp(`${src}/${entry.name}`, `${dst}/${entry.name}`, { recursive: true });
  }
}

async function convertFile(
  fs: typeof import("node:fs/promises"),
  source: SafetensorsFile,
  path: string,
  options: ConvertOptions,
  policy: (name: string, mode: QuantDType) => QuantDType | null,
  backend: Backend,
  report: ConvertReport,
): Promise<{ names: string[]; dataBytes: number }> {
  const declared = parseQuantMetadata(source.metadata, path);
  const companions = new Set([...declared.keys()].map(scalesName));
  const plan: Planned[] = [];
  for (const name of source.names()) {
    if (companions.has(name)) continue;
    const info = source.info(name);
    const bytes = info.end - info.begin;
    report.bytesIn += bytes;
    const kept = declared.get(name);
    if (kept) {
      const scales = source.info(scalesName(name));
      plan.push({ kind: "keep", name, q: kept, codes: bytes, scales: scales.end - scales.begin });
      continue;
    }
    const target = policy(name, options.quant);
    const floats = info.dtype === "F32" || info.dtype === "F16" || info.dtype === "BF16";
    if (target && floats && info.shape.length === 2) {
      const shapes = quantTensorShapes(target, info.shape);
      const q = { dtype: target, shape: [info.shape[0], info.shape[1]] as const };
      plan.push({
        kind: "quantize",
        name,
        q,
        from: info.dtype,
        codes: size(shapes.codes.shape),
        scales: 4 * size(shapes.scales.shape),
      });
    } else {
      plan.push({ kind: "copy", name, dtype: info.dtype, shape: info.shape, bytes });
    }
  }

  // Header: the source's metadata (minus its quantisation list) plus this file's quantised tensors.
  const quantized = new Map<string, QuantizedTensor>();
  const header: Record<string, unknown> = {};
  const names: string[] = [];
  let offset = 0;
  const entry = (name: string, dtype: string, shape: readonly number[], bytes: number) => {
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    names.push(name);
    offset += bytes;
  };
  for (const p of plan) {
    if (p.kind === "copy") {
      entry(p.name, p.dtype, p.shape, p.bytes);
      continue;
    }
    const shapes = quantTensorShapes(p.q.dtype, p.q.shape);
    entry(p.name, shapes.codes.dtype, shapes.codes.shape, p.codes);
    entry(scalesName(p.name), "F32", shapes.scales.shape, p.scales);
    quantized.set(p.name, p.q);
  }
  const metadata: Record<string, string> = { ...source.metadata };
  delete metadata[QUANT_METADATA_KEY];
  if (quantized.size > 0) Object.assign(metadata, quantMetadata(quantized));
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(head.length), true);

  const out = await fs.open(path, "w");
  try {
    await out.write(prefix);
    await out.write(head);
    for (const [i, p] of plan.entries()) {
      if (p.kind === "copy") {
        await out.write(await source.readRaw(p.name));
        report.copied++;
      } else if (p.kind === "keep") {
        await out.write(await source.readRaw(p.name));
        await out.write(await source.readRaw(scalesName(p.name)));
        report.quantized++;
      } else {
        const bytes = await quantizeOnBackend(backend, await source.readRaw(p.name), p.from, p.q);
        if (bytes.length !== p.codes + p.scales) {
          throw new Error(`convert: ${p.name}: ${bytes.length} bytes, planned ${p.codes + p.scales}`);
        }
        await out.write(bytes);
        report.quantized++;
      }
      options.progress?.(p.name, i + 1, plan.length);
    }
  } finally {
    await out.close();
  }
  report.bytesOut += 8 + head.length + offset;
  return { names, dataBytes: offset };
}

/** Codes then scales of `raw` (dtype `from`, shape q.shape) quantised to q.dtype on the backend. */
async function quantizeOnBackend(
  backend: Backend,
  raw: Uint8Array,
  from: string,
  q: QuantizedTensor,
): Promise<Uint8Array> {
  const quantized = backend.scope(() => {
    const t = from === "F32"
      ? backend.upload(new Float32Array(raw.slice().buffer), q.shape)
      : backend.upload(new Uint16Array(raw.slice().buffer), q.shape, from === "F16" ? "f16" : "bf16");
    return backend.keep(backend.quantize(t, q.dtype));
  });
  try {
    return await backend.downloadQuantized(quantized);
  } finally {
    quantized.dispose();
  }
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
