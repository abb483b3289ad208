/**
 * `ppllava serve [--model DIR] [--id NAME] [--host H] [--port N] [--media-root DIR] [--max-body-mb N]
 *  [--max-queue N] [--quant q8|q4] [--quant-vision q8|q4] [--workers N|auto] [--vision-workers N|auto]`: the
 * OpenAI-compatible HTTP API on Deno. Default model: the embedded `models/ppllava-tiny`; quantisation as for `ask`
 * (docs/quantization.md); workers as `loadModel` decides ("auto") unless given.
 */
import { createApp } from "../server/app.ts";
import { createModelEngine } from "../server/engine.ts";
import { loadModel } from "../model/model.ts";
import { countFlag, numberFlag, parseArgs, quantFlag } from "./args.ts";
import { DEFAULT_MODEL } from "./ask.ts";

export async function serveCommand(args: string[]): Promise<number> {
  const { flags } = parseArgs(args, {
    model: "string",
    id: "string",
    host: "string",
    port: "string",
    "media-root": "string",
    "max-body-mb": "string",
    "max-queue": "string",
    quant: "string",
    "quant-vision": "string",
    workers: "string",
    "vision-workers": "string",
  });
  const modelDir = String(flags.model ?? DEFAULT_MODEL).replace(/\/$/, "");
  const id = String(flags.id ?? modelDir.split("/").at(-1));
  const model = await loadModel(modelDir, {
    quantize: quantFlag(flags, "quant"),
    quantizeVision: quantFlag(flags, "quant-vision"),
    workers: countFlag(flags, "workers"),
    visionWorkers: countFlag(flags, "vision-workers"),
  });
  const maxBodyMb = numberFlag(flags, "max-body-mb");
  const app = createApp({
    models: [{ id, created: Math.floor(Date.now() / 1000) }],
    engine: createModelEngine({
      model,
      id,
      mediaRoot: typeof flags["media-root"] === "string" ? flags["media-root"] : undefined,
      maxQueue: numberFlag(flags, "max-queue"),
    }),
    limits: maxBodyMb ? { maxBodyBytes: maxBodyMb * 1024 * 1024 } : {},
    onUnexpectedError: (error, request) => console.error(`${request.method} ${request.url}:`, error),
  });
  const server = Deno.serve({
    hostname: String(flags.host ?? "127.0.0.1"),
    port: numberFlag(flags, "port", 8787),
    onListen: ({ hostname, port }) => console.log(`serving ${id} on http://${hostname}:${port}/v1`),
  }, app.fetch);
  await server.finished;
  model.dispose();
  return 0;
}
