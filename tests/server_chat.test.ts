/**
 * POST /v1/chat/completions on a real model (the small random checkpoint of tests/oracles/make_checkpoint.py with
 * the real LLaMA-2 and CLIP tokenizers), through a real socket and the official `openai` client: the answer equals
 * the library's own `model.generateAll` on the same video, streamed chunks join to it, and every refusal is a 4xx
 * OpenAI error that leaves the server serving.
 */
import OpenAI from "openai";
import { assert, assertEquals, assertRejects } from "./util/assert.ts";
import { createApp } from "../src/server/app.ts";
import { ApiError } from "../src/server/errors.ts";
import { createModelEngine, Queue } from "../src/server/engine.ts";
import { loadModel } from "../src/model/model.ts";
import { decodeVideo } from "../src/media/video.ts";
import { preprocess } from "../src/media/preprocess.ts";
import { realTokenizers, smallCheckpoints } from "./util/checkpoints.ts";

const { llama, clip } = realTokenizers();
const model = await loadModel(`${await smallCheckpoints()}/f32`, { tokenizers: { llama, clip } });
const video = await Deno.readFile("samples/red-square.mp4");
const videoUrl = `data:video/mp4;base64,${btoa(String.fromCharCode(...video))}`;
const QUESTION = "What colour is the square that moves?";
const FRAMES = 8;

/** The library's answer to QUESTION about the sample: what the server must reproduce. */
async function libraryAnswer(maxNewTokens: number): Promise<{ text: string; tokens: number[] }> {
  const decoded = await decodeVideo(video, { numFrames: FRAMES });
  const size = decoded.info.width * decoded.info.height * 3;
  const frames = decoded.indices.map((_, t) => ({
    data: decoded.data.subarray(t * size, (t + 1) * size),
    width: decoded.info.width,
    height: decoded.info.height,
  }));
  const pixels = await preprocess(frames, { variant: "vicuna", size: model.config.vision.imageSize });
  const result = await model.generateAll({ visuals: [{ pixels: pixels.data }], question: QUESTION, maxNewTokens });
  return { text: llama.decode(result.tokens, { skipSpecialTokens: true }), tokens: result.tokens };
}

function serve(options: Partial<Parameters<typeof createModelEngine>[0]> = {}) {
  const app = createApp({
    models: [{ id: "tiny" }],
    engine: createModelEngine({ model, id: "tiny", ...options }),
  });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${server.addr.port}/v1`, apiKey: "unused", maxRetries: 0 });
  return { app, server, client };
}

const userTurn = (text = QUESTION, url = videoUrl) => [{
  role: "user" as const,
  content: [{ type: "video_url", video_url: { url } }, { type: "text", text }],
}];

Deno.test("chat completion, plain and streamed, equals the library's answer on the same video", async () => {
  const expected = await libraryAnswer(6);
  const { server, client } = serve();
  try {
    const body = { model: "tiny", messages: userTurn(), max_tokens: 6, num_frames: FRAMES } as never;
    const completion = await client.chat.completions.create(body) as OpenAI.ChatCompletion;
    assertEquals(completion.choices[0].message.content, expected.text);
    assertEquals(completion.usage?.completion_tokens, expected.tokens.length);
    assert(["stop", "length"].includes(completion.choices[0].finish_reason));

    const stream = await client.chat.completions.create(
      { ...(body as object), stream: true } as never,
    ) as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>;
    const pieces: string[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      pieces.push(chunk.choices[0]?.delta?.content ?? "");
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assertEquals(pieces.join(""), expected.text);
    assertEquals(finish, completion.choices[0].finish_reason);
  } finally {
    await server.shutdown();
  }
});

Deno.test("chat completion refusals are 4xx OpenAI errors and the server keeps serving", async () => {
  const { app, server } = serve();
  const post = (body: unknown) =>
    app.request("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny", max_tokens: 2, ...(body as object) }),
    });
  const garbage = `data:video/mp4;base64,${btoa("not a video at all, just text")}`;
  const cases: [unknown, number, string][] = [
    [{ messages: userTurn(QUESTION, "https://example.com/v.mp4") }, 400, "remote_media_refused"],
    [{ messages: userTurn(QUESTION, "/etc/passwd") }, 400, "local_media_refused"],
    [{ messages: userTurn(QUESTION, "data:video/mp4;base64,@@@") }, 400, "invalid_media_url"],
    [{ messages: userTurn(QUESTION, garbage) }, 400, "media_invalid_data"],
    [{ messages: [{ role: "user", content: "no video here" }] }, 400, "missing_media"],
    [{ messages: [{ role: "system", content: "be brief" }, ...userTurn()] }, 400, "unsupported_message"],
    [
      {
        messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: videoUrl } }] }],
      },
      400,
      "unsupported_content",
    ],
    [{ messages: userTurn(), num_frames: 10 }, 400, "too_many_frames"],
  ];
  try {
    for (const [body, status, code] of cases) {
      const response = await post(body);
      const error = (await response.json()).error;
      assertEquals([response.status, error?.code], [status, code], JSON.stringify(body).slice(0, 120));
    }
    assertEquals((await post({ messages: userTurn(), num_frames: FRAMES })).status, 200);
  } finally {
    await server.shutdown();
  }
});

Deno.test("local media is read only inside the configured media root", async () => {
  const { app, server } = serve({ mediaRoot: `${Deno.cwd()}/samples` });
  try {
    const post = (url: string) =>
      app.request("/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "tiny", max_tokens: 2, num_frames: FRAMES, messages: userTurn(QUESTION, url) }),
      });
    assertEquals((await post(`${Deno.cwd()}/samples/red-square.mp4`)).status, 200);
    assertEquals((await post(`file://${Deno.cwd()}/samples/../README.md`)).status, 400);
    assertEquals((await post(`${Deno.cwd()}/samples/missing.mp4`)).status, 404);
  } finally {
    await server.shutdown();
  }
});

Deno.test("the queue runs one job at a time and refuses past its bound with 429", async () => {
  const queue = new Queue(1);
  let releaseFirst!: () => void;
  const order: string[] = [];
  const first = queue.run(() =>
    new Promise<void>((resolve) => (releaseFirst = resolve)).then(() => order.push("first"))
  );
  const second = queue.run(() => Promise.resolve(order.push("second")));
  await new Promise((resolve) => setTimeout(resolve, 10));
  const refused = await assertRejects(() => queue.run(() => Promise.resolve(0)), ApiError);
  assertEquals([refused.status, refused.code], [429, "queue_full"]);
  releaseFirst();
  await Promise.all([first, second]);
  assertEquals(order, ["first", "second"]);
  assertEquals(await queue.run(() => Promise.resolve("free again")), "free again");
});

Deno.test("a streaming client that disconnects aborts its generation; the next request is served", async () => {
  const { server, client } = serve();
  try {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: "tiny", messages: userTurn(), max_tokens: 50, num_frames: FRAMES, stream: true } as never,
      { signal: controller.signal },
    ) as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>;
    try {
      for await (const _ of stream) {
        controller.abort();
      }
    } catch (error) {
      assert((error as Error).name.includes("Abort"), String(error));
    }
    const expected = await libraryAnswer(3);
    const next = await client.chat.completions.create(
      { model: "tiny", messages: userTurn(), max_tokens: 3, num_frames: FRAMES } as never,
    ) as OpenAI.ChatCompletion;
    assertEquals(next.choices[0].message.content, expected.text);
  } finally {
    await server.shutdown();
  }
});
