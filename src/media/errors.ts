/** Typed media errors: every failure of opening, sampling or decoding is a `MediaError` with a `code`. */

export type MediaErrorCode = "unsupported" | "invalid_data" | "limit" | "bad_argument";

export class MediaError extends Error {
  override name = "MediaError";
  constructor(readonly code: MediaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
