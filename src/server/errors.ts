/**
 * OpenAI-style error bodies: `{"error": {"message", "type", "param", "code"}}`, the shape the official clients
 * parse. Every failure the server can produce goes through `ApiError`, so no handler writes an error by hand.
 */

export type ApiErrorType = "invalid_request_error" | "not_found_error" | "server_error";

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: 400 | 404 | 405 | 413 | 415 | 422 | 429 | 500 | 503,
    readonly type: ApiErrorType,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }

  toBody(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  toResponse(): Response {
    return Response.json(this.toBody(), { status: this.status });
  }
}

export const badRequest = (code: string, message: string, param: string | null = null) =>
  new ApiError(400, "invalid_request_error", code, message, param);
