/**
 * Typed errors of the model graph and of generation. Weights and config problems are `WeightsError` /
 * `ConfigError` (safetensors.ts, config.ts); these are about the inputs of one request.
 */
export type ModelErrorCode =
  | "too_many_frames" // T > max_T (§2: the BT-Adapter's time table has max_T rows)
  | "too_few_frames" // fewer frames than the temporal kernel (§3.4 step E: T ≥ 2 for video)
  | "prompt_too_long" // CLIP ids longer than the text tower's positions (248), or an LLM context overflow
  | "bad_input" // shapes, ids or options that do not fit the model
  | "bad_pooling" // a pooling mode `get_size` cannot size (§3.4 step E)
  | "too_large"; // the model or a request would not fit the memory limits (memory_plan.ts), refused before loading

export class ModelError extends Error {
  override name = "ModelError";
  readonly code: ModelErrorCode;
  constructor(code: ModelErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** Generation was cancelled through its `AbortSignal`. Same name as the DOM's, so `error.name === "AbortError"`
 * checks written for fetch work here too. */
export class AbortError extends Error {
  override name = "AbortError";
  readonly code = "aborted";
  constructor(message = "generation was aborted", options?: ErrorOptions) {
    super(message, options);
  }
}
