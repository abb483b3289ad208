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
export type { RelevanceOptions } from "./backend/wasm/relevance.ts";

export { NoGpuError, probeGpu, requestGpu } from "./backend/webgpu/device.ts";
export type { GpuHandle, GpuInfo } from "./backend/webgpu/device.ts";
export { GpuKernelError, GpuRelevance } from "./backend/webgpu/relevance.ts";
