/**
 * Group-wise quantised weights in safetensors checkpoints (docs/quantization.md) and the policy of which tensors
 * are quantised.
 *
 * On disk a quantised weight W (N, K) is two tensors: `name` holds the codes (I8 [N, G·32] for q8, U8 [N, G·16]
 * for q4, G = ⌈K/32⌉) and `name.scales` the f32 scales (F32 [N, G]); the file's `__metadata__` key
 * `ppllava.quantization` (JSON) names the format and each quantised tensor's dtype and logical shape, so a loader
 * knows from the file alone that `name` is quantised and that it stands for (N, K). Concatenated (codes, then
 * scales) the two tensors are exactly the backend's q8/q4 storage (`Backend.uploadQuantized`).
 */
import { QUANT_GROUP, type QuantDType } from "../backend/backend.ts";
import { type TensorStore, WeightsError } from "./safetensors.ts";

export const QUANT_METADATA_KEY = "ppllava.quantization";
export const QUANT_FORMAT = "ppllava-groupwise";
export const QUANT_VERSION = 1;

export interface QuantizedTensor {
  readonly dtype: QuantDType;
  /** Logical shape (N, K). */
  readonly shape: readonly [number, number];
}

export interface QuantMetadata {
  format: typeof QUANT_FORMAT;
  version: number;
  group_size: number;
  scale_dtype: "F32";
  tensors: Record<string, { dtype: QuantDType; shape: [number, number] }>;
}

export function scalesName(name: string): string {
  return `${name}.scales`;
}

/** The on-disk tensors of a quantised (N, K) weight. */
export function quantTensorShapes(dtype: QuantDType, [n, k]: readonly number[]) {
  const g = Math.ceil(k / QUANT_GROUP);
  return {
    codes: { dtype: dtype === "q8" ? "I8" as const : "U8" as const, shape: [n, dtype === "q8" ? g * 32 : g * 16] },
    scales: { dtype: "F32" as const, shape: [n, g] },
  };
}

/** The quantised tensors a file's metadata declares (none when it has no `ppllava.quantization` key). */
export function parseQuantMetadata(
  metadata: Readonly<Record<string, string>> | undefined,
  where: string,
): Map<string, QuantizedTensor> {
  const out = new Map<string, QuantizedTensor>();
  const text = metadata?.[QUANT_METADATA_KEY];
  if (text === undefined) return out;
  const bad = (why: string) => new WeightsError("bad_header", `${where}: __metadata__["${QUANT_METADATA_KEY}"] ${why}`);
  let parsed: Partial<QuantMetadata>;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw bad(`is not JSON: ${String(cause)}`);
  }
  if (parsed.format !== QUANT_FORMAT || parsed.version !== QUANT_VERSION) {
    throw bad(`declares ${parsed.format} v${parsed.version}; this build reads ${QUANT_FORMAT} v${QUANT_VERSION}`);
  }
  if (parsed.group_size !== QUANT_GROUP || parsed.scale_dtype !== "F32") {
    throw bad(`has group_size ${parsed.group_size}, scale_dtype ${parsed.scale_dtype}; supported: ${QUANT_GROUP}, F32`);
  }
  for (const [name, t] of Object.entries(parsed.tensors ?? {})) {
    const okShape = Array.isArray(t?.shape) && t.shape.length === 2 &&
      t.shape.every((d) => Number.isSafeInteger(d) && d > 0);
    if ((t?.dtype !== "q8" && t?.dtype !== "q4") || !okShape) {
      throw bad(`lists ${name} as ${JSON.stringify(t)}; expected {"dtype": "q8"|"q4", "shape": [N, K]}`);
    }
    out.set(name, { dtype: t.dtype, shape: [t.shape[0], t.shape[1]] });
  }
  return out;
}

export function quantMetadata(tensors: ReadonlyMap<string, QuantizedTensor>): Record<string, string> {
  const meta: QuantMetadata = {
    format: QUANT_FORMAT,
    version: QUANT_VERSION,
    group_size: QUANT_GROUP,
    scale_dtype: "F32",
    tensors: {},
  };
  for (const [name, t] of tensors) meta.tensors[name] = { dtype: t.dtype, shape: [t.shape[0], t.shape[1]] };
  return { [QUANT_METADATA_KEY]: JSON.stringify(meta) };
}

/** Checks that the codes and scales tensors of `name` exist with the dtypes and shapes its declaration implies. */
export function checkQuantizedTensor(store: TensorStore, name: string, q: QuantizedTensor): void {
  const expected = quantTensorShapes(q.dtype, q.shape);
  for (const [key, want] of [[name, expected.codes], [scalesName(name), expected.scales]] as const) {
    if (!store.has(key)) {
      throw new WeightsError(
        "missing_tensor",
        `${name} is declared ${q.dtype} [${q.shape}] but ${key} is missing`,
        key,
      );
    }
    const info = store.info(key);
    if (info.dtype !== want.dtype || info.shape.length !== 2 || info.shape.some((d, i) => d !== want.shape[i])) {
      throw new WeightsError(
        "bad_shape",
        `${key} is ${info.dtype} [${info.shape}]; a ${q.dtype} [${q.shape}] weight stores it as ${want.dtype} [${want.shape}]`,
        key,
      );
    }
  }
}

/** The backend storage bytes of a quantised weight: codes then scales, read as they are. */
export async function readQuantized(store: TensorStore, name: string): Promise<Uint8Array> {
  const codes = await store.readRaw(name);
  const scales = await store.readRaw(scalesName(name));
  const out = new Uint8Array(codes.length + scales.length);
  out.set(codes, 0);
  out.set(scales, codes.length);
  return out;
}

/** The LLM's linear weights (the tensors every mode quantises to `mode`). */
export function isLlmLinear(name: string): boolean {
  return LLM_LINEAR.test(name);
}

/** weights.ts's LLM prefix, spelled out here (weights.ts imports this file). */
const LLM = "language_model";
const LLM_LINEAR = new RegExp(
  `^${LLM}\\.model\\.layers\\.\\d+\\.(self_attn\\.(q|k|v|o)_proj|mlp\\.(gate|up|down)_proj)\\.weight$`,
);

/** The vision tower's linear weights (CLIP or SigLIP encoder layers, BT-Adapter layers): what `quantizeVision` takes. */
const VISION_LINEAR =
  /^vision_tower\.vision_model\.(encoder\.layers|btadapter_[ST]_layers)\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12]|temporal_fc)\.weight$/;

export function isVisionLinear(name: string): boolean {
  return VISION_LINEAR.test(name);
}

/**
 * One load's quantisation as the loaders take it (a mode that switches the policy on, and the policy): the LLM's
 * weights as `llm` says (the `base` policy, `quantizationFor` unless an experiment gives another) and, with `vision`,
 * the vision tower's linear weights too. Without `vision` it is exactly the LLM's policy.
 */
export function quantization(
  llm: QuantDType | undefined,
  vision: QuantDType | undefined,
  base: (name: string, mode: QuantDType) => QuantDType | null = quantizationFor,
): { quantize?: QuantDType; quantizePolicy: (name: string, mode: QuantDType) => QuantDType | null } {
  if (!vision) return { quantize: llm, quantizePolicy: base };
  return {
    quantize: llm ?? vision,
    quantizePolicy: (name) => (isVisionLinear(name) ? vision : llm ? base(name, llm) : null),
  };
}

/**
 * The dtype `name` gets when a checkpoint is quantised to `mode`, or null to keep it as stored: the LLM's
 * q/k/v/o/gate/up/down weights take `mode`; lm_head takes q8 (its rows are the logits, where int4 error shows
 * most); embed_tokens stays as stored (a lookup of one row per token costs memory, not bandwidth, and keeping it
 * was worth 5 points of top-1 agreement in q4 on ppllava-tiny: bench/quant.ts, docs/quantization.md); everything
 * else (vision tower, projector, CLIP text tower, norms, biases, position tables) stays in its stored precision;
 * `quantization` adds the vision tower's linears for `loadModel`'s `quantizeVision`.
 */
export function quantizationFor(name: string, mode: QuantDType): QuantDType | null {
  if (LLM_LINEAR.test(name)) return mode;
  if (name === `${LLM}.lm_head.weight`) return "q8";
  return null;
}
