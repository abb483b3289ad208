/**
 * ppllava-edge: the public API, nothing else. Each stage is usable on its own (see README).
 */
export { createApp, VERSION } from "./server/app.ts";
export type { AppOptions, ChatEngine, ModelCard } from "./server/app.ts";
export { ApiError } from "./server/errors.ts";
export { DEFAULT_LIMITS } from "./server/schemas.ts";
export type { ChatCompletionRequest, ServerLimits } from "./server/schemas.ts";

export { KernelError, loadKernels, WasmKernels } from "./backend/wasm/loader.ts";
export type { KernelErrorCode } from "./backend/wasm/loader.ts";
export { relevanceWasm } from "./backend/wasm/relevance.ts";
export { relaxedSimdSupport } from "./backend/wasm/relaxed.ts";
export type { RelaxedSupport } from "./backend/wasm/relaxed.ts";
export type { RelevanceOptions } from "./backend/wasm/relevance.ts";

export { NoGpuError, probeGpu, requestGpu } from "./backend/webgpu/device.ts";
export type { GpuHandle, GpuInfo } from "./backend/webgpu/device.ts";
export { GpuKernelError, GpuRelevance } from "./backend/webgpu/relevance.ts";

export { loadModel, PPLLaVAModel } from "./model/model.ts";
export type {
  GenerateRequest,
  LoadModelOptions,
  ModelRequest,
  ModelTokenizers,
  PoolingOverride,
  VisualInput,
  VisualKind,
} from "./model/model.ts";
export { getSize, PgpProjector, promptGuidedPooling } from "./model/pgp.ts";
export type { AxisSize, PoolingMode, PoolOptions } from "./model/pgp.ts";
export { AbortError, ModelError } from "./model/errors.ts";
export type { ModelErrorCode } from "./model/errors.ts";
export { decodeTokens } from "./model/generate.ts";
export type { Decoder, FinishReason, GeneratedToken, GenerationOptions, GenerationResult } from "./model/generate.ts";
export type { Trace } from "./model/layers.ts";
export { FeaturesCache } from "./model/features_cache.ts";
export { gridShape, packImageTokens, selectBestResolution, unpadBox } from "./model/anyres.ts";

export { decodeImageSequence, decodeVideo, DEFAULT_MEDIA_LIMITS, openVideo, Video } from "./media/video.ts";
export type { DecodedVideo, DecodeVideoOptions, MediaLimits, PixFmt, VideoInfo } from "./media/video.ts";
export { sampleFrames } from "./media/sampling.ts";
export type { SampleOptions, SamplingInfo } from "./media/sampling.ts";
export { MediaError } from "./media/errors.ts";
export type { MediaErrorCode } from "./media/errors.ts";
export { frameSize, preprocess, resizeRgb } from "./media/preprocess.ts";
export type { PixelTensor, PreprocessOptions, PreprocessVariant, RgbFrame } from "./media/preprocess.ts";
export { yuvToRgb } from "./media/pixels.ts";

export { LlamaTokenizer } from "./model/tokenizers/llama.ts";
export { ByteLevelBpeTokenizer } from "./model/tokenizers/byte_level_bpe.ts";
export { SIGLIP_MAX_LENGTH, SiglipTokenizer } from "./model/tokenizers/siglip.ts";
export {
  type StreamDecoder,
  type TextTokenizer,
  textTowerTokenizerFromFiles,
  tokenizerFromFiles,
} from "./model/tokenizers/text_tokenizer.ts";
export { ClipTokenizer } from "./model/tokenizers/clip.ts";
export { TokenizerError } from "./model/tokenizers/errors.ts";
export { ANSWER_PREFIX, CHAT_TEMPLATES, ChatTemplateError, renderChat, renderQuestion } from "./model/chat_template.ts";
export type { ChatMessage, ChatTemplate } from "./model/chat_template.ts";

export { createModelEngine } from "./server/engine.ts";
export type { ModelEngineOptions } from "./server/engine.ts";
