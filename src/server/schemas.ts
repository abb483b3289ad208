/**
 * zod schemas of the request bodies, following OpenAI's chat completions API. Videos come as `video_url` content
 * parts (the convention vLLM and LLaVA servers use); `num_frames` is the one PPLLaVA extension. Bounds that protect
 * the host come from `ServerLimits`, so the schema is built per app.
 */
import { z } from "zod";

export interface ServerLimits {
  /** Largest request body accepted, bytes (media inlined as data: URLs count). */
  maxBodyBytes: number;
  /** Largest `max_tokens` a request may ask for. */
  maxNewTokens: number;
  /** Most messages in one conversation. */
  maxMessages: number;
  /** Most frames a request may sample (PPLLaVA's BT-Adapter stops at 64: spec §2 `max_T`). */
  maxFrames: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxBodyBytes: 64 * 1024 * 1024,
  maxNewTokens: 1024,
  maxMessages: 64,
  maxFrames: 64,
};

const textPart = z.object({ type: z.literal("text"), text: z.string() });
const mediaUrl = z.string().min(1, "a media URL must not be empty");
const imagePart = z.object({
  type: z.literal("image_url"),
  image_url: z.object({ url: mediaUrl, detail: z.enum(["auto", "low", "high"]).optional() }),
});
const videoPart = z.object({ type: z.literal("video_url"), video_url: z.object({ url: mediaUrl }) });
const userContent = z.union([
  z.string(),
  z.array(z.discriminatedUnion("type", [textPart, imagePart, videoPart])).min(1),
]);
const plainContent = z.union([z.string(), z.array(textPart)]);

const message = z.discriminatedUnion("role", [
  z.object({ role: z.literal("system"), content: plainContent }),
  z.object({ role: z.literal("user"), content: userContent }),
  z.object({ role: z.literal("assistant"), content: plainContent }),
]);

export function chatCompletionSchema(limits: ServerLimits): z.ZodType<ChatCompletionRequest> {
  return z.object({
    model: z.string().min(1),
    messages: z.array(message).min(1).max(limits.maxMessages),
    stream: z.boolean().optional(),
    max_tokens: z.number().int().min(1).max(limits.maxNewTokens).optional(),
    max_completion_tokens: z.number().int().min(1).max(limits.maxNewTokens).optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    seed: z.number().int().optional(),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).optional(),
    n: z.literal(1).optional(),
    num_frames: z.number().int().min(2).max(limits.maxFrames).optional(),
  });
}

type TextPart = { type: "text"; text: string };
type MediaPart =
  | { type: "image_url"; image_url: { url: string; detail?: "auto" | "low" | "high" } }
  | { type: "video_url"; video_url: { url: string } };
type PlainContent = string | TextPart[];

/** A validated request (the public type; `chatCompletionSchema` checks that it matches the schema). */
export interface ChatCompletionRequest {
  model: string;
  messages: (
    | { role: "system"; content: PlainContent }
    | { role: "user"; content: string | (TextPart | MediaPart)[] }
    | { role: "assistant"; content: PlainContent }
  )[];
  stream?: boolean;
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string | string[];
  n?: 1;
  num_frames?: number;
}

/** `messages[0].content` from a zod issue path. */
export function paramName(path: readonly PropertyKey[]): string | null {
  if (path.length === 0) return null;
  return path.reduce<string>(
    (name, key) => typeof key === "number" ? `${name}[${key}]` : name ? `${name}.${String(key)}` : String(key),
    "",
  );
}
