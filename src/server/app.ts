/**
 * The HTTP surface: `createApp(options)` returns a Hono app whose `fetch(Request) → Response` runs unchanged on
 * Deno (`Deno.serve`), Bun (`Bun.serve`) and Node (`@hono/node-server`). OpenAI-compatible routes; every failure,
 * unknown routes and bad JSON included, is an OpenAI-style error body with the right status, never a stack trace.
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ApiError, badRequest } from "./errors.ts";
import {
  type ChatCompletionRequest,
  chatCompletionSchema,
  DEFAULT_LIMITS,
  paramName,
  type ServerLimits,
} from "./schemas.ts";

export interface ModelCard {
  id: string;
  /** Unix seconds. */
  created?: number;
  ownedBy?: string;
}

/** What answers a validated chat completion (`createModelEngine` in engine.ts). It gets the Hono context for
 * streaming (`streamSSE`) and the client's abort signal (`c.req.raw.signal`). */
export interface ChatEngine {
  handle(request: ChatCompletionRequest, c: Context): Promise<Response>;
}

export interface AppOptions {
  models?: ModelCard[];
  engine?: ChatEngine;
  limits?: Partial<ServerLimits>;
  /** Where unexpected errors are reported (their details never reach the client). */
  onUnexpectedError?: (error: unknown, request: Request) => void;
}

export const VERSION = "0.1.0";

export function createApp(options: AppOptions = {}): Hono {
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const models = options.models ?? [];
  const chatSchema = chatCompletionSchema(limits);
  const started = Date.now();
  const app = new Hono();

  app.get("/healthz", (c) =>
    c.json({
      status: "ok",
      version: VERSION,
      uptimeS: Math.round((Date.now() - started) / 1000),
      models: models.map((m) => m.id),
      ready: Boolean(options.engine),
    }));

  app.get("/v1/models", (c) => c.json({ object: "list", data: models.map(modelObject) }));

  app.get("/v1/models/:id", (c) => {
    const model = models.find((m) => m.id === c.req.param("id"));
    if (!model) throw modelNotFound(c.req.param("id"));
    return c.json(modelObject(model));
  });

  app.post(
    "/v1/chat/completions",
    bodyLimit({
      maxSize: limits.maxBodyBytes,
      onError: () => {
        throw new ApiError(
          413,
          "invalid_request_error",
          "request_too_large",
          `the request body exceeds ${limits.maxBodyBytes} bytes`,
        );
      },
    }),
    async (c) => {
      const contentType = c.req.header("content-type") ?? "";
      if (!contentType.toLowerCase().startsWith("application/json")) {
        throw new ApiError(
          415,
          "invalid_request_error",
          "unsupported_media_type",
          `expected Content-Type: application/json, got ${contentType || "none"}`,
        );
      }
      let body: unknown;
      try {
        body = JSON.parse(await c.req.text());
      } catch (error) {
        throw badRequest("invalid_json", `the request body is not valid JSON: ${(error as Error).message}`);
      }
      const parsed = chatSchema.safeParse(body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw badRequest("invalid_value", issue.message, paramName(issue.path));
      }
      if (!models.some((m) => m.id === parsed.data.model)) throw modelNotFound(parsed.data.model, "model");
      if (!options.engine) {
        throw new ApiError(503, "server_error", "model_not_loaded", "no model is loaded on this server yet");
      }
      return await options.engine.handle(parsed.data, c);
    },
  );

  // Known paths with the wrong method get 405, anything else 404; both as OpenAI error bodies.
  for (const path of ["/healthz", "/v1/models", "/v1/models/:id", "/v1/chat/completions"]) {
    app.all(path, (c) => {
      throw new ApiError(
        405,
        "invalid_request_error",
        "method_not_allowed",
        `${c.req.method} is not allowed on ${c.req.path}`,
      );
    });
  }
  app.notFound((c) =>
    new ApiError(404, "invalid_request_error", "not_found", `unknown route: ${c.req.method} ${c.req.path}`)
      .toResponse()
  );
  app.onError((error, c) => {
    if (error instanceof ApiError) return error.toResponse();
    options.onUnexpectedError?.(error, c.req.raw);
    return new ApiError(500, "server_error", "internal_error", "the server hit an unexpected error").toResponse();
  });
  return app;
}

function modelObject(model: ModelCard) {
  return { id: model.id, object: "model", created: model.created ?? 0, owned_by: model.ownedBy ?? "ppllava-edge" };
}

function modelNotFound(id: string, param: string | null = null): ApiError {
  return new ApiError(404, "invalid_request_error", "model_not_found", `the model '${id}' does not exist`, param);
}
