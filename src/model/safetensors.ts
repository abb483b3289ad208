/**
 * safetensors checkpoints (spec §6): one `model.safetensors`, or shards listed by `model.safetensors.index.json`.
 * Lazy: opening reads only the headers; a tensor's bytes are read when asked for. Weights decode from F32, F16 or
 * BF16 to Float32Array; golden files also hold F64 and integer tensors.
 *
 * Format: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__"?: {string: string}}, then the data; offsets count from the first byte after the header.
 */
import { type ByteSource, bytesSource, FileAccessError, type FileSet } from "../util/random_access.ts";
import { decodeF32, decodeF64, decodeInts, type DType, ITEM_SIZE, WeightsError } from "./dtypes.ts";

export { decodeF32, decodeF64, decodeInts, type DType, WeightsError };
export type { WeightsErrorCode } from "./dtypes.ts";

/** The `__metadata__` key of quantised checkpoints (quant_checkpoint.ts; spelled here to avoid an import cycle). */
const QUANT_METADATA_KEY = "ppllava.quantization";

/** The safetensors reference implementation refuses headers above 100 MB; so do we (it bounds a bad length). */
const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte range in the file. */
  readonly begin: number;
  readonly end: number;
  /** The file that holds it (a shard name for sharded checkpoints). */
  readonly file: string;
}

/** What the model code reads weights through, whatever the layout on disk. */
export interface TensorStore {
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  readRaw(name: string): Promise<Uint8Array<ArrayBuffer>>;
  close(): Promise<void>;
  /** `__metadata__` of the file (shards: every shard's entries; for the quantisation key, its tensor lists merged). */
  readonly metadata?: Readonly<Record<string, string>>;
}

export class SafetensorsFile implements TensorStore {
  private constructor(
    private readonly source: ByteSource,
    private readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  static async open(source: ByteSource): Promise<SafetensorsFile> {
    const where = source.name;
    if (source.size < 8) throw new WeightsError("truncated", `${where}: ${source.size} bytes, too short for a header`);
    const lengthBytes = await source.read(0, 8);
    const headerLength = Number(new DataView(lengthBytes.buffer).getBigUint64(0, true));
    if (headerLength > MAX_HEADER_BYTES || headerLength < 2) {
      throw new WeightsError("bad_header", `${where}: header length ${headerLength} (allowed 2..${MAX_HEADER_BYTES})`);
    }
    if (8 + headerLength > source.size) {
      throw new WeightsError(
        "truncated",
        `${where}: header of ${headerLength} bytes runs past the end (${source.size})`,
      );
    }
    const headerBytes = await readOrTruncated(source, 8, headerLength, "the header");
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
    } catch (cause) {
      throw new WeightsError("bad_header", `${where}: the header is not UTF-8 JSON: ${String(cause)}`, undefined, {
        cause,
      });
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) {
      throw new WeightsError("bad_header", `${where}: the header must be a JSON object`);
    }
    const dataStart = 8 + headerLength;
    const dataSize = source.size - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
      if (name === "__metadata__") {
        metadata = parseMetadata(where, entry);
        continue;
      }
      const info = parseEntry(where, name, entry, dataStart, dataSize, source.name);
      tensors.set(name, info);
    }
    checkOverlaps(where, [...tensors.values()]);
    return new SafetensorsFile(source, tensors, metadata);
  }

  static fromBytes(bytes: Uint8Array, name = "<memory>"): Promise<SafetensorsFile> {
    return SafetensorsFile.open(bytesSource(bytes, name));
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new WeightsError("missing_tensor", `${this.source.name} has no tensor ${name}`, name);
    return info;
  }

  readRaw(name: string): Promise<Uint8Array<ArrayBuffer>> {
    const info = this.info(name);
    return readOrTruncated(this.source, info.begin, info.end - info.begin, `tensor ${name}`, name);
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

/** A read that fails (the file shrank, an I/O error) is a typed error naming what was being read. */
async function readOrTruncated(
  source: ByteSource,
  offset: number,
  length: number,
  what: string,
  tensor?: string,
): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return await source.read(offset, length);
  } catch (cause) {
    if (cause instanceof FileAccessError) {
      throw new WeightsError("truncated", `${source.name}: reading ${what}: ${cause.message}`, tensor, { cause });
    }
    throw cause;
  }
}

function parseMetadata(where: string, entry: unknown): Record<string, string> {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    throw new WeightsError("bad_header", `${where}: __metadata__ must be an object of strings`);
  }
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== "string") {
      throw new WeightsError("bad_header", `${where}: __metadata__.${key} must be a string, got ${typeof value}`);
    }
  }
  return entry as Record<string, string>;
}

function parseEntry(
  where: string,
  name: string,
  entry: unknown,
  dataStart: number,
  dataSize: number,
  file: string,
): TensorInfo {
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
  if (typeof e !== "object" || e === null) {
    throw new WeightsError("bad_header", `${where}: the entry of ${name} is not an object`, name);
  }
  if (typeof e.dtype !== "string" || !(e.dtype in ITEM_SIZE)) {
    throw new WeightsError(
      "bad_dtype",
      `${where}: tensor ${name} has dtype ${JSON.stringify(e.dtype)}; allowed: ${Object.keys(ITEM_SIZE).join(", ")}`,
      name,
    );
  }
  const dtype = e.dtype as DType;
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new WeightsError("bad_header", `${where}: tensor ${name} has shape ${JSON.stringify(shape)}`, name);
  }
  const offsets = e.data_offsets;
  if (
    !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw new WeightsError("bad_header", `${where}: tensor ${name} has data_offsets ${JSON.stringify(offsets)}`, name);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataSize) {
    throw new WeightsError(
      "out_of_bounds",
      `${where}: tensor ${name} ends at data byte ${end}, past the ${dataSize} bytes of data in the file`,
      name,
    );
  }
  const elements = shape.reduce((a: number, b: number) => a * b, 1);
  if (elements * ITEM_SIZE[dtype] !== end - begin) {
    throw new WeightsError(
      "bad_shape",
      `${where}: tensor ${name} ${dtype}[${shape.join(",")}] needs ${elements * ITEM_SIZE[dtype]} bytes, ` +
        `its offsets span ${end - begin}`,
      name,
    );
  }
  return { name, dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end, file };
}

function checkOverlaps(where: string, infos: TensorInfo[]): void {
  const sorted = infos.filter((i) => i.end > i.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      throw new WeightsError(
        "bad_header",
        `${where}: tensors ${sorted[i - 1].name} and ${sorted[i].name} overlap`,
        sorted[i].name,
      );
    }
  }
}

/** Shards listed by `model.safetensors.index.json`; every listed tensor must be in the shard the index names. */
export class ShardedSafetensors implements TensorStore {
  private constructor(
    private readonly shards: Map<string, SafetensorsFile>,
    private readonly map: Map<string, string>,
  ) {}

  static async open(files: FileSet, indexName = "model.safetensors.index.json"): Promise<ShardedSafetensors> {
    let index: unknown;
    try {
      index = JSON.parse(await files.readText(indexName));
    } catch (cause) {
      throw new WeightsError("bad_index", `${files.label}/${indexName}: ${String(cause)}`, undefined, { cause });
    }
    const weightMap = (index as { weight_map?: unknown })?.weight_map;
    if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
      throw new WeightsError("bad_index", `${files.label}/${indexName}: "weight_map" must be an object`);
    }
    const map = new Map<string, string>();
    for (const [name, file] of Object.entries(weightMap)) {
      if (typeof file !== "string" || file.includes("/") || file.includes("\\") || !file.endsWith(".safetensors")) {
        throw new WeightsError("bad_index", `${indexName}: tensor ${name} maps to ${JSON.stringify(file)}`, name);
      }
      map.set(name, file);
    }
    const shards = new Map<string, SafetensorsFile>();
    try {
      for (const file of new Set(map.values())) {
        shards.set(file, await SafetensorsFile.open(await openSource(files, file)));
      }
      for (const [name, file] of map) {
        if (!shards.get(file)!.has(name)) {
          throw new WeightsError(
            "missing_tensor",
            `${indexName} puts ${name} in ${file}, which does not hold it`,
            name,
          );
        }
      }
    } catch (error) {
      await Promise.all([...shards.values()].map((s) => s.close()));
      throw error;
    }
    return new ShardedSafetensors(shards, map);
  }

  names(): string[] {
    return [...this.map.keys()];
  }

  get metadata(): Readonly<Record<string, string>> {
    const merged: Record<string, string> = {};
    let quant: { tensors?: Record<string, unknown> } | undefined;
    for (const shard of this.shards.values()) {
      for (const [key, value] of Object.entries(shard.metadata)) {
        if (key !== QUANT_METADATA_KEY) {
          merged[key] = value;
          continue;
        }
        // Each shard lists the quantised tensors it holds: the checkpoint's list is their union.
        let parsed: { tensors?: Record<string, unknown> };
        try {
          parsed = JSON.parse(value);
        } catch {
          merged[key] = value; // parseQuantMetadata reports it
          return merged;
        }
        quant = quant ? { ...quant, tensors: { ...quant.tensors, ...parsed.tensors } } : parsed;
        merged[key] = JSON.stringify(quant);
      }
    }
    return merged;
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  private shard(name: string): SafetensorsFile {
    const file = this.map.get(name);
    if (!file) throw new WeightsError("missing_tensor", `the index lists no tensor ${name}`, name);
    return this.shards.get(file)!;
  }

  info(name: string): TensorInfo {
    return this.shard(name).info(name);
  }

  readRaw(name: string): Promise<Uint8Array<ArrayBuffer>> {
    return this.shard(name).readRaw(name);
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((s) => s.close()));
  }
}

async function openSource(files: FileSet, name: string): Promise<ByteSource> {
  try {
    return await files.open(name);
  } catch (cause) {
    if (cause instanceof FileAccessError) {
      const code = cause.code === "not_found" ? "no_weights" : "io";
      throw new WeightsError(code, `cannot open ${files.label}/${name}: ${cause.message}`, undefined, { cause });
    }
    throw cause;
  }
}

/** A checkpoint folder: the sharded index when present, else `model.safetensors`. */
export async function openCheckpointTensors(files: FileSet): Promise<TensorStore> {
  if (await files.exists("model.safetensors.index.json")) return ShardedSafetensors.open(files);
  if (await files.exists("model.safetensors")) {
    return SafetensorsFile.open(await openSource(files, "model.safetensors"));
  }
  throw new WeightsError(
    "no_weights",
    `${files.label} holds neither model.safetensors.index.json nor model.safetensors`,
  );
}

export async function readF32(store: TensorStore, name: string): Promise<Float32Array> {
  return decodeF32(await store.readRaw(name), store.info(name).dtype, name);
}

export async function readF64(store: TensorStore, name: string): Promise<Float64Array> {
  return decodeF64(await store.readRaw(name), store.info(name).dtype, name);
}

export async function readInts(store: TensorStore, name: string): Promise<number[]> {
  return decodeInts(await store.readRaw(name), store.info(name).dtype, name);
}
