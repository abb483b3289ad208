/**
 * The Hono app through `app.request()` (no sockets) and through a real socket with the official `openai` client,
 * which parses error bodies exactly as OpenAI documents them.
 */
import OpenAI from "openai";
import { assert, assertEquals } from "./util/assert.ts";
import { createApp } from "../src/server/app.ts";

const models = [{ id: "ppllava-tiny", created: 1764000000 }];

async function errorOf(response: Response) {
  assertEquals(response.headers.get("content-type")?.startsWith("application/json"), true);
  const body = await response.json();
  assertEquals(Object.keys(body), ["error"]);
  assertEquals(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);
  assert(!/\n\s+at |\.ts:\d+/.test(body.error.message), "no stack trace in an error body");
  return body.error;
}

Deno.test("GET /healthz and /v1/models", async () => {
  const app = createApp({ models });
  const health = await app.request("/healthz");
  assertEquals(health.status, 200);
  const h = await health.json();
  assertEquals([h.status, h.models, h.ready], ["ok", ["ppllava-tiny"], false]);
  const list = await (await app.request("/v1/models")).json();
  assertEquals(list, {
    object: "list",
    data: [{ id: "ppllava-tiny", object: "model", created: 1764000000, owned_by: "ppllava-edge" }],
  });
  assertEquals((await (await app.request("/v1/models/ppllava-tiny")).json()).id, "ppllava-tiny");
});

Deno.test("unknown routes, wrong methods and unknown models are 4xx OpenAI errors", async () => {
  const app = createApp({ models });
  const cases: [string, RequestInit, number, string][] = [
    ["/nope", {}, 404, "not_found"],
    ["/v1/models", { method: "DELETE" }, 405, "method_not_allowed"],
    ["/healthz", { method: "POST" }, 405, "method_not_allowed"],
    ["/v1/models/other", {}, 404, "model_not_found"],
  ];
  for (const [path, init, status, code] of cases) {
    const response = await app.request(path, init);
    assertEquals(response.status, status, path);
    assertEquals((await errorOf(response)).code, code);
  }
});

const chat = (body: string, headers: Record<string, string> = { "content-type": "application/json" }) =>
  ({ method: "POST", headers, body });

Deno.test("chat completions: bad JSON, bad fields, wrong content type, too large, no model loaded", async () => {
  const app = createApp({ models, limits: { maxBodyBytes: 4096 } });
  const valid = { model: "ppllava-tiny", messages: [{ role: "user", content: "hi" }] };
  const cases: [RequestInit, number, string, string | null][] = [
    [chat("{not json"), 400, "invalid_json", null],
    [chat(JSON.stringify({ ...valid, messages: [] })), 400, "invalid_value", "messages"],
    [chat(JSON.stringify({ ...valid, temperature: 5 })), 400, "invalid_value", "temperature"],
    [chat(JSON.stringify({ ...valid, num_frames: 65 })), 400, "invalid_value", "num_frames"],
    [
      chat(JSON.stringify({ ...valid, messages: [{ role: "user", content: [{ type: "video_url", video_url: {} }] }] })),
      400,
      "invalid_value",
      "messages[0].content",
    ],
    [chat(JSON.stringify({ ...valid, model: "gpt-4" })), 404, "model_not_found", "model"],
    [chat(JSON.stringify(valid), { "content-type": "text/plain" }), 415, "unsupported_media_type", null],
    [chat(JSON.stringify({ ...valid, pad: "x".repeat(5000) })), 413, "request_too_large", null],
    [chat(JSON.stringify(valid)), 503, "model_not_loaded", null],
  ];
  for (const [init, status, code, param] of cases) {
    const response = await app.request("/v1/chat/completions", init);
    const error = await errorOf(response);
    assertEquals([response.status, error.code], [status, code], String(init.body).slice(0, 80));
    if (param !== null) assert(error.param?.startsWith(param), `param ${error.param} should start with ${param}`);
  }
});

Deno.test("an engine error is a 500 without details, and the app keeps serving", async () => {
  const reported: unknown[] = [];
  const app = createApp({
    models,
    engine: { handle: () => Promise.reject(new Error("secret internal detail")) },
    onUnexpectedError: (error) => reported.push(error),
  });
  const response = await app.request(
    "/v1/chat/completions",
    chat(JSON.stringify({ model: "ppllava-tiny", messages: [{ role: "user", content: "hi" }] })),
  );
  assertEquals(response.status, 500);
  const error = await errorOf(response);
  assertEquals(error.code, "internal_error");
  assert(!error.message.includes("secret"));
  assertEquals(reported.length, 1);
  assertEquals((await app.request("/healthz")).status, 200);
});

Deno.test("the official openai client lists models and parses our errors", async () => {
  const app = createApp({ models });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  try {
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${server.addr.port}/v1`, apiKey: "unused", maxRetries: 0 });
    const page = await client.models.list();
    assertEquals(page.data.map((m) => m.id), ["ppllava-tiny"]);
    try {
      await client.models.retrieve("missing");
      throw new Error("expected a NotFoundError");
    } catch (error) {
      assert(error instanceof OpenAI.NotFoundError, String(error));
      assertEquals([error.status, error.code, error.type], [404, "model_not_found", "invalid_request_error"]);
    }
    try {
      await client.chat.completions.create({ model: "ppllava-tiny", messages: [] });
      throw new Error("expected a BadRequestError");
    } catch (error) {
      assert(error instanceof OpenAI.BadRequestError, String(error));
      assertEquals([error.status, error.param], [400, "messages"]);
    }
  } finally {
    await server.shutdown();
  }
});
