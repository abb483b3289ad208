/**
 * PPLLaVA end to end (spec §3, §10): `loadModel(dir, { backend })` reads a checkpoint folder, and
 * `model.generate(request)` streams the answer to a prompt about one or more visual inputs:
 *
 *   F   = VisionTower(pixels)                (§3.3, CLIP + BT-Adapter; cached per content hash + sampling)
 *   e_t = ClipTextTower(clip ids)            (§3.5, §3.6: the raw question, 248 positions)
 *   V   = PGP(F, e_t)                        (§3.4: relevance, window pooling, projector)
 *   E   = merge(ids, V)                      (§3.7: each <image> id → its visual tokens)
 *   tokens = decode(LLaMA(E))                (§3.8: greedy / sampling / beam, KV cache)
 *
 * Visual inputs and frame rules:
 * - "video" (default): N frames of one video, T = N. T > max_T is `too_many_frames`; T smaller than the temporal
 *   kernel (2) is `too_few_frames`. An odd T runs all T frames through the vision tower (the BT-Adapter couples
 *   them), and the pooling drops the last frame, as upstream (floor((T−2)/2)+1 windows in time).
 * - "images": N images of one multi-image input (§4): the BT-Adapter runs with T = N, relevance joint, pooling
 *   (1,3,3); the prompt holds one `<image>` per image, each replaced by its image's tokens.
 * - "tiles": N anyres tiles of one image, each a one-frame video (B = N, T = 1), relevance joint over all tiles,
 *   pooling (1,3,3) → 64 tokens per tile, inserted in tile order as they are (no unpadding, no newline).
 * - "image": the same tiles (base + grid, from the media stage) of an image of `imageSize`, then the §4 packing:
 *   grid map, unpad to the aspect ratio, `image_newline` after each row, base tokens first (anyres.ts).
 *   The tiling itself (best pinpoint, resize, crop) belongs to preprocessing.
 * Pooling kernel/stride/output size can be overridden per request (`pooling`), "compress to any scale".
 */
import type { Backend, QuantDType, Tensor } from "../backend/backend.ts";
import { createWasmBackend, type RelaxedChoice } from "../backend/wasm/backend.ts";
import type { RelaxedDot } from "../backend/wasm/relaxed.ts";
import { directoryFiles, type FileSet } from "../util/random_access.ts";
import { clipTextConfig, ClipTextTower } from "./clip_text.ts";
import type { PPLLaVAConfig, Triple } from "./config.ts";
import { ModelError } from "./errors.ts";
import { contentHash, FeaturesCache } from "./features_cache.ts";
import {
  type Decoder,
  decodeTokens,
  type GeneratedToken,
  type GenerationOptions,
  type GenerationResult,
} from "./generate.ts";
import { Params, type Trace } from "./layers.ts";
import { Llama, llamaConfig, LlamaSession } from "./llama.ts";
import { DEFAULT_STALL_MS, ShardedLlama, type ShardedSession } from "./sharded_llama.ts";
import { assertFits, type MemoryPlan, planMemory, type PlanOptions } from "./memory_plan.ts";
import { quantization } from "./quant_checkpoint.ts";
import { mergeImageTokens } from "./merge.ts";
import { gridShape, packImageTokens } from "./anyres.ts";
import { pgpConfig, PgpProjector } from "./pgp.ts";
import { visionConfig, VisionTower } from "./vision.ts";
import { VisionWorkers } from "./vision_split.ts";
import { siglipVisionConfig, SiglipVisionTower } from "./siglip_vision.ts";
import { siglipTextConfig, SiglipTextTower } from "./siglip_text.ts";
import { openCheckpoint } from "./weights.ts";
import { CHAT_TEMPLATES, type ChatMessage, renderChat } from "./chat_template.ts";
import type { ClipTokenizer } from "./tokenizers/clip.ts";
import { SiglipTokenizer } from "./tokenizers/siglip.ts";
import { type TextTokenizer, textTowerTokenizerFromFiles, tokenizerFromFiles } from "./tokenizers/text_tokenizer.ts";

export type VisualKind = "video" | "images" | "tiles" | "image";

export interface VisualInput {
  /** Normalised pixels (N, 3, S, S), row-major (see the media stage's `preprocess`). */
  pixels: Float32Array;
  /** Default "video". */
  kind?: VisualKind;
  /** "image": the original [height, width] in pixels (picks the grid from image_grid_pinpoints and unpads). */
  imageSize?: readonly [number, number];
  /** "image": [rows, cols] of grid tiles, when the preprocessing chose them (must agree with the tile count). */
  grid?: readonly [number, number];
  /** How the frames were taken (e.g. "32 frames, segment midpoints, 0–60 s"): part of the features-cache key. */
  sampling?: string;
  /** A key of the source content (e.g. a hash of the video file) that stands in for hashing the pixels. */
  contentKey?: string;
}

export interface PoolingOverride {
  kernel?: Triple | null;
  stride?: Triple | null;
  output?: Triple | null;
  /** "uniform" replaces the prompt-guided window weights by plain averages (the ablation baseline). */
  weights?: "prompt" | "uniform";
}

export interface ModelRequest {
  /** In the order of the `<image>` ids of `ids`: one id per input ("images": one per image). */
  visuals: readonly VisualInput[];
  /** The raw question (needs the model's tokenizers): the LLM prompt is `plain_v1` with one `<image>` per visual
   * input before the question (§3.7), the CLIP text is the question alone, truncated to 248 tokens (§3.5).
   * Or give the ids yourself with `ids` + `clipIds`. */
  question?: string;
  /** Earlier turns (`plain_v1` history: "USER: q1 ASSISTANT: a1</s>USER: q2 ASSISTANT: "), with `question`; the
   * media go before the first user message; the CLIP text is still the current question alone (§3.5). */
  history?: readonly { question: string; answer: string }[];
  /** Forced start of the answer (`ANSWER_PREFIX` of chat_template.ts), with `question`. */
  answerPrefix?: string;
  /** LLM prompt ids (`plain_v1`: "<s>USER: <image>\n{question} ASSISTANT: "), `<image>` = image_token_index. */
  ids?: ArrayLike<number>;
  /** CLIP ids of the raw question (§3.5), padded with EOS to 248 or not; `clipMask` optional. */
  clipIds?: ArrayLike<number>;
  clipMask?: ArrayLike<number>;
  pooling?: PoolingOverride;
  /** Named intermediates (the reference's names); with a trace the prefill also computes every position's logits. */
  trace?: Trace;
}

export type GenerateRequest = ModelRequest & GenerationOptions;

export interface ModelTokenizers {
  /** The checkpoint's LLM tokenizer (from its tokenizer.json / tokenizer.model when present): LLaMA's, or the
   * byte-level BPE of Qwen2 (spec §9), whichever tokenizer.json describes. */
  llama?: TextTokenizer;
  /** The PGP text tower's tokenizer: CLIP's (openai/clip-vit-large-patch14-336, Vicuna variant) or SigLIP's
   * SentencePiece (Qwen2 variant, spec §9). Loaded from the folder's `clip_tokenizer/` when it ships one (the
   * embedded models do), else passed in (the released checkpoints don't ship it). */
  clip?: ClipTokenizer | SiglipTokenizer;
}

/** A request with its ids resolved. */
interface Prompt {
  ids: ArrayLike<number>;
  clipIds: ArrayLike<number>;
  clipMask?: ArrayLike<number>;
}

export interface LoadModelOptions {
  /** Default: the WASM SIMD backend. */
  backend?: Backend;
  tokenizers?: ModelTokenizers;
  /** Bound of the vision-features cache in bytes (default 256 MiB; 0 disables it). */
  featuresCacheBytes?: number;
  /** Run the LLM tensor-parallel in this many workers, each with its own WASM instance (sharded_llama.ts); the
   * vision tower, text tower, projector and token embedding stay on `backend`. Default "auto": the memory plan's
   * choice (0, the LLM on `backend`, when everything fits one instance). */
  workers?: number | "auto";
  /** Run the vision tower's CLIP layers split by frames over the main thread and this many workers, each with its own
   * WASM instance and copy of the per-frame vision weights (vision_split.ts); the BT-Adapter stays on `backend`, and
   * the features are the same to the bit. Default "auto": 1 on a host with a second core when the tower is heavy
   * enough to pay (CLIP-L: yes; the tiny test models: no) and the plan fits (memory_plan.ts); 0 for SigLIP. */
  visionWorkers?: number | "auto";
  /** With workers (LLM or vision): one silent this long during a call (no reply, no progress report) is stopped and
   * the call fails with `WorkerError("stalled")` instead of hanging (default 120 000 ms; 0 = never). */
  workerStallMs?: number;
  /** Limits and the request shape the memory plan checks before loading (memory_plan.ts). */
  memory?: Omit<PlanOptions, "workers" | "visionWorkers" | "featuresCacheBytes" | "quantize">;
  /** Quantise the LLM's weights as they load (docs/quantization.md); a checkpoint converted ahead of time
   * (`ppllava convert --quant`) loads its quantised tensors as they are, with or without this. */
  quantize?: QuantDType;
  /** Which tensors `quantize` applies to (default: `quantizationFor` of quant_checkpoint.ts, documented in
   * docs/quantization.md); for experiments such as bench/quant.ts. */
  quantizePolicy?: (name: string, mode: QuantDType) => QuantDType | null;
  /** Quantise the vision tower's linear weights too (CLIP/SigLIP and BT-Adapter q/k/v/out, fc1/fc2, temporal_fc), with
   * or without `quantize`: about 1.7× faster vision on the CPU path at a small cost in feature accuracy
   * (docs/quantization.md, "Which tensors are quantised"). Default: the vision tower keeps its stored precision. */
  quantizeVision?: QuantDType;
  /** q4 and q8 products on relaxed SIMD where the runtime computes them right (default true; the same bits either
   * way: src/backend/wasm/relaxed.ts). false keeps them in the kernels module, for comparisons (bench/relaxed_simd.ts).
   * Applies to the default backend, the LLM workers and the vision workers. */
  relaxedSimd?: boolean;
  /** q4's relaxed product on this 8-bit dot instead of the runtime's pick (WasmBackendOptions), for comparisons. */
  relaxedQ4Dot?: RelaxedDot;
}

export class PPLLaVAModel {
  readonly featuresCache: FeaturesCache;
  /** What `loadModel` planned: bytes per tensor group and instance, shards, limits (memory_plan.ts). */
  plan?: MemoryPlan;

  constructor(
    readonly config: PPLLaVAConfig,
    readonly backend: Backend,
    readonly vision: VisionTower | SiglipVisionTower,
    readonly text: ClipTextTower | SiglipTextTower,
    readonly pgp: PgpProjector,
    /** In-process, or split over workers (`loadModel(dir, { workers })`). */
    readonly llm: Llama | ShardedLlama,
    readonly params: Params,
    featuresCacheBytes: number,
    readonly tokenizers: ModelTokenizers = {},
    readonly imageNewline?: Tensor,
  ) {
    this.featuresCache = new FeaturesCache(featuresCacheBytes);
  }

  /** The ids of a request: given, or tokenized from `question`. */
  prompt(request: ModelRequest): Prompt {
    if (request.ids !== undefined && request.clipIds !== undefined) {
      return { ids: request.ids, clipIds: request.clipIds, clipMask: request.clipMask };
    }
    const { llama, clip } = this.tokenizers;
    const siglipTower = this.config.clipText.arch === "siglip";
    if (clip && request.clipIds === undefined && (clip instanceof SiglipTokenizer) !== siglipTower) {
      throw new ModelError(
        "bad_input",
        `the text tower is ${siglipTower ? "SigLIP's" : "CLIP's"} but the loaded text-tower tokenizer is ` +
          `${siglipTower ? "CLIP's" : "SigLIP's"}: ship the matching files in clip_tokenizer/ (SigLIP: spiece.model ` +
          "or a Unigram tokenizer.json; CLIP: vocab.json + merges.txt) or pass clipIds",
      );
    }
    if (request.question === undefined || !llama || (!clip && request.clipIds === undefined)) {
      throw new ModelError(
        "bad_input",
        "a request needs ids + clipIds, or a question and a model loaded with both tokenizers (llama, clip)",
      );
    }
    const media = this.#mediaTokens(request.visuals);
    const messages: ChatMessage[] = [];
    for (const turn of [...(request.history ?? []), { question: request.question, answer: undefined }]) {
      messages.push({ role: "user", content: turn.question, media: messages.length === 0 ? media : 0 });
      if (turn.answer !== undefined) messages.push({ role: "assistant", content: turn.answer });
    }
    const text = renderChat(CHAT_TEMPLATES[this.config.chatTemplate], messages, { answerPrefix: request.answerPrefix });
    if (request.clipIds !== undefined) {
      return { ids: llama.encode(text), clipIds: request.clipIds, clipMask: request.clipMask };
    }
    const encoded = clip!.encode(request.question, { maxLength: this.text.config.positions });
    return { ids: llama.encode(text), clipIds: encoded.inputIds, clipMask: encoded.attentionMask };
  }

  /** Typed errors for every input problem, before any compute. */
  check(request: ModelRequest, prompt: Prompt = this.prompt(request)): void {
    const { imageSize } = this.vision.config;
    const frameValues = 3 * imageSize * imageSize;
    for (const [i, visual] of request.visuals.entries()) {
      const n = visual.pixels.length / frameValues;
      if (!Number.isInteger(n) || n < 1) {
        throw new ModelError(
          "bad_input",
          `visual ${i}: ${visual.pixels.length} values are not whole ${imageSize}×${imageSize} RGB frames`,
        );
      }
      const kind = visual.kind ?? "video";
      if (kind === "image") this.#imageGrid(visual, n);
      if (kind !== "tiles" && kind !== "image") this.vision.checkFrames(n);
      if (kind === "video" && n < 2) {
        throw new ModelError(
          "too_few_frames",
          `a video needs at least 2 frames (the temporal pooling kernel), got ${n}`,
        );
      }
      this.pgp.sizes(n, this.#poolOptions(kind, request.pooling));
    }
    this.text.usedIds(prompt.clipIds, prompt.clipMask);
  }

  /** Vision features F (T, P, D) of one input, cached by content hash + kind + sampling. The caller disposes the
   * handle it gets: a view over the cache's storage, which stays alive until both the cache and the caller let go
   * (so an eviction while a request still uses it frees nothing under it). */
  async features(visual: VisualInput, trace?: Trace): Promise<Tensor> {
    const kind = visual.kind ?? "video";
    const content = visual.contentKey ?? await contentHash(visual.pixels);
    const key = `${content}|${kind}|${visual.sampling ?? ""}|${visual.pixels.length}`;
    const b = this.backend;
    const cached = this.featuresCache.get(key);
    if (cached) return b.reshape(cached, cached.shape);
    const s = this.vision.config.imageSize;
    const n = visual.pixels.length / (3 * s * s);
    const pixels = b.upload(visual.pixels, [n, 3, s, s]);
    let feature: Tensor;
    try {
      feature = await this.vision.forward(b, pixels, kind === "tiles" || kind === "image" ? n : 1, trace);
    } finally {
      pixels.dispose();
    }
    const handle = b.reshape(feature, feature.shape);
    if (!this.featuresCache.set(key, feature)) feature.dispose();
    return handle;
  }

  /** Prompt embeddings (L, H): text tower, PGP per visual input, merge. The caller disposes the result. */
  async embed(request: ModelRequest, prompt: Prompt = this.prompt(request)): Promise<Tensor> {
    this.check(request, prompt);
    const features: Tensor[] = [];
    for (const visual of request.visuals) features.push(await this.features(visual, request.trace));
    const b = this.backend;
    try {
      return b.scope(() => {
        const textEmbed = this.text.forward(b, prompt.clipIds, prompt.clipMask, request.trace);
        const pooled = request.visuals.flatMap((visual, i) => {
          const tokens = this.pgp.forward(b, features[i], textEmbed, {
            ...this.#poolOptions(visual.kind ?? "video", request.pooling),
            trace: request.trace,
          });
          const count = features[i].shape[0];
          if (visual.kind === "images") {
            // §4 multi-image: one <image> per image, each taking its own frame's pooled tokens.
            const per = tokens.shape[0] / count;
            return Array.from({ length: count }, (_, k) => b.slice(tokens, 0, k * per, (k + 1) * per));
          }
          if (visual.kind !== "image") return [tokens];
          const grid = this.#imageGrid(visual, count);
          return [packImageTokens(b, tokens, count, grid, visual.imageSize!, this.imageNewline)];
        });
        const embeds = mergeImageTokens(
          b,
          (ids) => this.llm.embed(b, ids),
          prompt.ids,
          pooled,
          this.config.imageTokenIndex,
          this.config.padTokenId,
        );
        request.trace?.("llm.embeds", embeds);
        return embeds;
      });
    } finally {
      for (const f of features) f.dispose();
    }
  }

  /** Streams the answer's token ids; the generator's return value is the whole result. */
  async *generate(request: GenerateRequest): AsyncGenerator<GeneratedToken, GenerationResult> {
    const prompt = this.prompt(request);
    const embeds = await this.embed(request, prompt);
    const b = this.backend;
    const length = embeds.shape[0];
    let session: LlamaSession | ShardedSession | undefined;
    try {
      const capacity = length + (request.maxNewTokens ?? 200);
      session = this.llm instanceof ShardedLlama
        ? this.llm.session(b, capacity)
        : new LlamaSession(b, this.llm, capacity);
      const s = session;
      const decoder: Decoder = {
        vocabSize: this.llm.config.vocabSize,
        prefill: () => {
          const batched = b.reshape(embeds, [1, length, embeds.shape[1]]);
          return s.run(batched, { allLogits: request.trace !== undefined, trace: request.trace }).finally(() =>
            batched.dispose()
          );
        },
        step: (tokens) => s.step(tokens),
        reorder: (from) => s.reorder(from),
      };
      const promptIds = Array.from(prompt.ids).filter((id) => id !== this.config.imageTokenIndex);
      const llama = this.tokenizers.llama;
      const withEos = { ...request, eosTokenIds: request.eosTokenIds ?? this.config.eosTokenIds };
      const options = llama && !request.decode
        ? { ...withEos, decode: (ids: readonly number[]) => llama.decode(ids, { skipSpecialTokens: true }) }
        : withEos;
      const stream = llama?.createStreamDecoder({ skipSpecialTokens: true });
      const tokens = decodeTokens(decoder, options, promptIds);
      for (;;) {
        const next = await tokens.next();
        // The stream decoder holds an unfinished UTF-8 byte run; what is left of it at the end is the result's
        // `textTail`, so the streamed pieces plus the tail are exactly the decoded answer.
        if (next.done) return stream ? { ...next.value, textTail: stream.flush() } : next.value;
        yield stream ? { ...next.value, text: stream.push(next.value.id) } : next.value;
      }
    } finally {
      session?.dispose();
      embeds.dispose();
    }
  }

  /** `generate` to the end. */
  async generateAll(request: GenerateRequest): Promise<GenerationResult> {
    const it = this.generate(request);
    for (;;) {
      const next = await it.next();
      if (next.done) return next.value;
    }
  }

  dispose(): void {
    this.featuresCache.clear();
    if (this.llm instanceof ShardedLlama) this.llm.dispose();
    if (this.vision instanceof VisionTower) this.vision.workers?.dispose();
    this.params.dispose();
  }

  /** `<image>` tokens the visual inputs take: one each, one per image of an "images" input. */
  #mediaTokens(visuals: readonly VisualInput[]): number {
    const frame = 3 * this.vision.config.imageSize ** 2;
    return visuals.reduce(
      (n, v) => n + (v.kind === "images" ? Math.max(1, Math.floor(v.pixels.length / frame)) : 1),
      0,
    );
  }

  /** The grid of an "image" input, checked against its tile count (1 base + rows·cols, or 1 alone). */
  #imageGrid(visual: VisualInput, tiles: number): readonly [number, number] {
    if (!visual.imageSize) throw new ModelError("bad_input", `an "image" input needs its original imageSize [h, w]`);
    const grid = visual.grid ??
      gridShape(visual.imageSize, this.config.imageGridPinpoints, this.vision.config.imageSize);
    if (tiles !== 1 && tiles !== 1 + grid[0] * grid[1]) {
      throw new ModelError(
        "bad_input",
        `an image on a ${grid[0]}×${grid[1]} grid comes as 1 + ${grid[0] * grid[1]} tiles (or 1), got ${tiles}`,
      );
    }
    return grid;
  }

  #poolOptions(kind: VisualKind, override?: PoolingOverride) {
    return { video: kind === "video", ...(kind === "image" ? {} : override ?? {}) };
  }
}

/** Opens a checkpoint folder (config.json + safetensors, single or sharded; f32/f16/bf16) and loads every part. */
export async function loadModel(dir: string | FileSet, options: LoadModelOptions = {}): Promise<PPLLaVAModel> {
  for (const key of ["quantize", "quantizeVision"] as const) {
    const mode = options[key];
    if (mode !== undefined && mode !== "q8" && mode !== "q4") {
      throw new ModelError("bad_input", `${key}: ${JSON.stringify(mode)}; allowed: "q8", "q4" or none`);
    }
  }
  const { quantize, quantizePolicy } = quantization(options.quantize, options.quantizeVision, options.quantizePolicy);
  const weights = await openCheckpoint(dir);
  let plan: MemoryPlan;
  try {
    // Refuse before allocating anything: the plan reads only config.json and the safetensors headers.
    const onWasm = !options.backend || options.backend.name.startsWith("wasm");
    plan = planMemory(weights.config, weights.store, {
      ...options.memory,
      instanceBytes: onWasm ? options.memory?.instanceBytes : Infinity,
      workers: options.workers ?? "auto",
      visionWorkers: options.visionWorkers ?? "auto",
      featuresCacheBytes: options.featuresCacheBytes,
      quantize,
      quantizePolicy,
      quantized: weights.quantized,
    });
    assertFits(plan);
  } catch (error) {
    await weights.close();
    throw error;
  }
  const relaxed: RelaxedChoice = { relaxedSimd: options.relaxedSimd, relaxedQ4Dot: options.relaxedQ4Dot };
  const backend = options.backend ?? await createWasmBackend(relaxed);
  const params = new Params(backend, weights, { quantize, quantizePolicy });
  let sharded: ShardedLlama | undefined;
  let frameWorkers: VisionWorkers | undefined;
  try {
    const config = weights.config;
    const stallMs = options.workerStallMs ?? DEFAULT_STALL_MS;
    const llm = plan.workers > 0
      ? sharded = await ShardedLlama.load(params, llamaConfig(config), {
        workers: plan.workers,
        tiedEmbeddings: config.llm.tieWordEmbeddings,
        quantize,
        quantizePolicy,
        stallMs,
        relaxed,
      })
      : await Llama.load(params, llamaConfig(config), config.llm.tieWordEmbeddings);
    if (plan.visionWorkers > 0) {
      const workers = plan.visionWorkers;
      frameWorkers = await VisionWorkers.load(params, visionConfig(config), {
        workers,
        stallMs,
        quantize,
        quantizePolicy,
        relaxed,
      });
    }
    const model = new PPLLaVAModel(
      config,
      backend,
      config.vision.arch === "siglip"
        ? await SiglipVisionTower.load(params, siglipVisionConfig(config))
        : await VisionTower.load(params, visionConfig(config), frameWorkers),
      config.clipText.arch === "siglip"
        ? await SiglipTextTower.load(params, siglipTextConfig(config))
        : await ClipTextTower.load(params, clipTextConfig(config)),
      await PgpProjector.load(params, pgpConfig(config)),
      llm,
      params,
      options.featuresCacheBytes ?? 256 * 2 ** 20,
      {
        llama: options.tokenizers?.llama ?? await llmTokenizerOf(dir),
        clip: options.tokenizers?.clip ?? await clipTokenizerOf(dir),
      },
      config.useImageNewline ? await params.vector("image_newline") : undefined,
    );
    model.plan = plan;
    return model;
  } catch (error) {
    sharded?.dispose();
    frameWorkers?.dispose();
    params.dispose();
    throw error;
  } finally {
    await weights.close();
  }
}

/** The checkpoint's LLM tokenizer, when the folder has tokenizer.json or tokenizer.model. */
export async function llmTokenizerOf(dir: string | FileSet): Promise<TextTokenizer | undefined> {
  const files = typeof dir === "string" ? directoryFiles(dir) : dir;
  const json = async (name: string) => (await files.exists(name)) ? JSON.parse(await files.readText(name)) : undefined;
  const tokenizerJson = await json("tokenizer.json");
  const hasModel = await files.exists("tokenizer.model");
  if (tokenizerJson === undefined && !hasModel) return undefined;
  return tokenizerFromFiles({
    tokenizerJson,
    tokenizerModel: hasModel ? await readAll(files, "tokenizer.model") : undefined,
    tokenizerConfig: await json("tokenizer_config.json"),
    addedTokensJson: await json("added_tokens.json"),
    specialTokensMap: await json("special_tokens_map.json"),
  });
}

/**
 * The text tower's tokenizer when the folder ships it in `clip_tokenizer/`, as the embedded models do: CLIP's
 * (vocab.json + merges.txt, or a BPE tokenizer.json) or SigLIP's (spiece.model, or a Unigram tokenizer.json). The
 * released checkpoints ship neither (their towers are openai/clip-vit-large-patch14-336 / google/siglip-so400m).
 */
async function clipTokenizerOf(dir: string | FileSet): Promise<ClipTokenizer | SiglipTokenizer | undefined> {
  const files = typeof dir === "string" ? directoryFiles(dir) : dir;
  const has = (name: string) => files.exists(`clip_tokenizer/${name}`);
  return textTowerTokenizerFromFiles({
    vocabJson: await has("vocab.json") ? JSON.parse(await files.readText("clip_tokenizer/vocab.json")) : undefined,
    mergesTxt: await has("merges.txt") ? await files.readText("clip_tokenizer/merges.txt") : undefined,
    tokenizerJson: await has("tokenizer.json")
      ? JSON.parse(await files.readText("clip_tokenizer/tokenizer.json"))
      : undefined,
    spieceModel: await has("spiece.model") ? await readAll(files, "clip_tokenizer/spiece.model") : undefined,
  });
}

async function readAll(files: FileSet, name: string): Promise<Uint8Array> {
  const source = await files.open(name);
  try {
    return await source.read(0, source.size);
  } finally {
    await source.close();
  }
}
