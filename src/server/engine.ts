/**
 * The chat engine behind `POST /v1/chat/completions`: OpenAI messages → media decoded and preprocessed for the
 * model → `model.generate` → one `chat.completion`, or `chat.completion.chunk` events over SSE ending in
 * `data: [DONE]`. One generation runs at a time (the WASM backend is single-threaded); waiting requests queue up to
 * `maxQueue`, past which the answer is 429. A client that disconnects aborts its generation.
 */
import { streamSSE } from "hono/streaming";
import type { ChatEngine } from "./app.ts";
import { ApiError, badRequest } from "./errors.ts";
import { type MediaUrlPolicy, resolveMediaUrl } from "./media_url.ts";
import type { ChatCompletionRequest } from "./schemas.ts";
import { decodeVideo, type MediaLimits } from "../media/video.ts";
import { MediaError } from "../media/errors.ts";
import { preprocess } from "../media/preprocess.ts";
import type { GenerateRequest, PPLLaVAModel, VisualInput } from "../model/model.ts";
import { AbortError, ModelError } from "../model/errors.ts";
import type { FinishReason, GenerationResult } from "../model/generate.ts";

export interface ModelEngineOptions {
  model: PPLLaVAModel;
  /** The id clients name in `model`. */
  id: string;
  mediaRoot?: string;
  /** Largest media payload per part (default 32 MiB). */
  maxMediaBytes?: number;
  mediaLimits?: Partial<MediaLimits>;
  /** Requests waiting for the model beyond the running one (default 8). */
  maxQueue?: number;
  /** `max_tokens` when the request gives none (default 200, the reference's). */
  defaultMaxTokens?: number;
}

type Message = ChatCompletionRequest["messages"][number];

/** A FIFO lock: one holder, and at most `max` waiting behind it (more → 429). */
export class Queue {
  #tail: Promise<void> = Promise.resolve();
  #busy = false;
  #waiting = 0;
  constructor(private readonly max: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.#busy && this.#waiting >= this.max) {
      throw new ApiError(
        429,
        "invalid_request_error",
        "queue_full",
        `the model is busy (${this.max} requests waiting)`,
      );
    }
    this.#waiting++;
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((resolve) => (release = resolve));
    await previous;
    this.#waiting--;
    this.#busy = true;
    try {
      return await job();
    } finally {
      this.#busy = false;
      release();
    }
  }
}

const finishReason = (reason: FinishReason) => (reason === "length" ? "length" : "stop");

export function createModelEngine(options: ModelEngineOptions): ChatEngine {
  const { model, id } = options;
  const policy: MediaUrlPolicy = { mediaRoot: options.mediaRoot, maxMediaBytes: options.maxMediaBytes ?? 32 * 2 ** 20 };
  const queue = new Queue(options.maxQueue ?? 8);
  const vision = model.config.vision;

  async function videoInput(url: string, frames: number, param: string): Promise<VisualInput> {
    const bytes = await resolveMediaUrl(url, policy, param);
    try {
      const video = await decodeVideo(bytes, { numFrames: frames, limits: options.mediaLimits });
      const frameBytes = video.info.width * video.info.height * 3;
      const rgb = video.indices.map((_, t) => ({
        data: video.data.subarray(t * frameBytes, (t + 1) * frameBytes),
        width: video.info.width,
        height: video.info.height,
      }));
      const pixels = await preprocess(rgb, { variant: model.config.preprocess, size: vision.imageSize });
      return { pixels: pixels.data, kind: "video", sampling: `${frames} segment midpoints` };
    } catch (error) {
      if (error instanceof MediaError) throw badRequest(`media_${error.code}`, error.message, param);
      throw error;
    }
  }

  /** OpenAI messages → the model's request: media in order, the last user text as the question, earlier turns. */
  async function toModelRequest(request: ChatCompletionRequest): Promise<GenerateRequest> {
    const frames = request.num_frames ?? Math.min(32, vision.maxT - (vision.maxT % 2));
    const visuals: VisualInput[] = [];
    const turns: { role: "user" | "assistant"; text: string }[] = [];
    for (const [m, message] of request.messages.entries()) {
      if (message.role === "system") {
        throw badRequest(
          "unsupported_message",
          "system messages are not supported by plain_v1 models",
          `messages[${m}]`,
        );
      }
      const parts = typeof message.content === "string"
        ? [{ type: "text" as const, text: message.content }]
        : message.content;
      const texts: string[] = [];
      for (const [p, part] of parts.entries()) {
        const param = `messages[${m}].content[${p}]`;
        if (part.type === "text") texts.push(part.text);
        else if (part.type === "video_url") visuals.push(await videoInput(part.video_url.url, frames, param));
        else throw badRequest("unsupported_content", "image_url parts are not supported yet; send a video_url", param);
      }
      turns.push({ role: message.role, text: texts.join("\n") });
    }
    const last = turns.at(-1);
    if (!last || last.role !== "user") {
      throw badRequest("invalid_value", "the last message must be the user's", "messages");
    }
    const history: { question: string; answer: string }[] = [];
    for (let i = 0; i + 1 < turns.length - 1; i += 2) {
      if (turns[i].role !== "user" || turns[i + 1].role !== "assistant") {
        throw badRequest("invalid_value", "messages must alternate user and assistant", `messages[${i}]`);
      }
      history.push({ question: turns[i].text, answer: turns[i + 1].text });
    }
    if (visuals.length === 0) throw badRequest("missing_media", "the conversation has no video_url part", "messages");
    return {
      visuals,
      question: last.text,
      history,
      maxNewTokens: request.max_completion_tokens ?? request.max_tokens ?? options.defaultMaxTokens ?? 200,
      doSample: request.temperature !== undefined && request.temperature > 0,
      temperature: request.temperature,
      topP: request.top_p,
      seed: request.seed,
      stopStrings: request.stop === undefined ? undefined : [request.stop].flat(),
    };
  }

  function requestError(error: unknown): never {
    if (error instanceof ModelError) throw badRequest(error.code, error.message);
    throw error;
  }

  return {
    async handle(request, c) {
      const signal = c.req.raw.signal;
      const created = Math.floor(Date.now() / 1000);
      const completionId = `chatcmpl-${crypto.randomUUID()}`;
      const generateRequest = await toModelRequest(request);
      // Everything that can be refused is refused here, before a queue slot or a stream is taken.
      const promptTokens = (() => {
        try {
          const prompt = model.prompt(generateRequest);
          model.check(generateRequest, prompt);
          return prompt.ids.length;
        } catch (error) {
          return requestError(error);
        }
      })();
      const chunk = (delta: Record<string, string>, finish: string | null) =>
        JSON.stringify({
          id: completionId,
          object: "chat.completion.chunk",
          created,
          model: id,
          choices: [{ index: 0, delta, finish_reason: finish }],
        });

      if (!request.stream) {
        return await queue.run(async () => {
          const pieces: string[] = [];
          let result: GenerationResult;
          try {
            const stream = model.generate({ ...generateRequest, signal });
            for (;;) {
              const next = await stream.next();
              if (next.done) {
                result = next.value;
                if (result.textTail) pieces.push(result.textTail);
                break;
              }
              if (next.value.text) pieces.push(next.value.text);
            }
          } catch (error) {
            return requestError(error);
          }
          return Response.json({
            id: completionId,
            object: "chat.completion",
            created,
            model: id,
            choices: [{
              index: 0,
              message: { role: "assistant", content: pieces.join("") },
              finish_reason: finishReason(result.finishReason),
            }],
            usage: {
              prompt_tokens: promptTokens,
              completion_tokens: result.tokens.length,
              total_tokens: promptTokens + result.tokens.length,
            },
          });
        });
      }

      // Streaming: the queue slot is taken before the response starts, so a full queue is still a plain 429.
      const abort = new AbortController();
      signal.addEventListener("abort", () => abort.abort(), { once: true });
      let started!: () => void;
      const slot = new Promise<void>((resolve) => (started = resolve));
      let finished!: () => void;
      const done = new Promise<void>((resolve) => (finished = resolve));
      const queued = queue.run(() => {
        started();
        return done;
      });
      await Promise.race([slot, queued]);
      return streamSSE(
        c,
        async (sse) => {
          sse.onAbort(() => abort.abort());
          try {
            await sse.writeSSE({ data: chunk({ role: "assistant", content: "" }, null) });
            const stream = model.generate({ ...generateRequest, signal: abort.signal });
            for (;;) {
              const next = await stream.next();
              if (next.done) {
                if (next.value.textTail) await sse.writeSSE({ data: chunk({ content: next.value.textTail }, null) });
                await sse.writeSSE({ data: chunk({}, finishReason(next.value.finishReason)) });
                break;
              }
              if (next.value.text) await sse.writeSSE({ data: chunk({ content: next.value.text }, null) });
            }
            await sse.writeSSE({ data: "[DONE]" });
          } catch (error) {
            if (!(error instanceof AbortError)) {
              const message = error instanceof ModelError ? error.message : "the server hit an unexpected error";
              await sse.writeSSE({
                data: JSON.stringify({
                  error: { message, type: "server_error", param: null, code: "generation_failed" },
                }),
              });
            }
          } finally {
            finished();
          }
        },
      );
    },
  };
}
