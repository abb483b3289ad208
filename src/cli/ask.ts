/**
 * `ppllava ask [VIDEO] [--question Q] [--model DIR] [--num-frames N] [--start S] [--end S] [--max-tokens N]
 *  [--beams N] [--temperature T] [--seed N] [--quant q8|q4] [--quant-vision q8|q4] [--workers N|auto]
 *  [--vision-workers N|auto] [--verbose]
 *  [--json]`
 *
 * The main job: decode the sampled frames of VIDEO (segment midpoints, spec §3.1), preprocess them for the model
 * (spec §3.2), and stream the model's answer to the question to stdout. Progress of each stage goes to stderr.
 * Defaults: the embedded model `models/ppllava-tiny` and its bundled sample video and question.
 */
import { readFile } from "node:fs/promises";
import { countFlag, numberFlag, parseArgs, quantFlag, UsageError } from "./args.ts";
import { decodeVideo } from "../media/video.ts";
import { preprocess } from "../media/preprocess.ts";
import { loadModel } from "../model/model.ts";
import { formatPlan } from "../model/memory_plan.ts";
import { loadKernels } from "../backend/wasm/loader.ts";
import { relaxedSimdSupport } from "../backend/wasm/relaxed.ts";

const PACKAGE_ROOT = new URL("../../", import.meta.url);
export const DEFAULT_MODEL = new URL("models/ppllava-tiny/", PACKAGE_ROOT).pathname;

const FLAGS = {
  question: "string",
  model: "string",
  "num-frames": "string",
  start: "string",
  end: "string",
  "max-tokens": "string",
  beams: "string",
  temperature: "string",
  seed: "string",
  json: "boolean",
  verbose: "boolean",
  quant: "string",
  "quant-vision": "string",
  workers: "string",
  "vision-workers": "string",
} as const;

/** The bundled sample of a model folder: `samples.json` `[{ video, question, answer? }]`, paths relative to it. */
interface BundledSample {
  video: string;
  question: string;
  answer?: string;
}

async function bundledSample(modelDir: string): Promise<BundledSample | undefined> {
  try {
    const samples = JSON.parse(await readFile(`${modelDir}/samples.json`, "utf8")) as BundledSample[];
    const first = samples[0];
    return first && { ...first, video: new URL(first.video, `file://${modelDir}/`).pathname };
  } catch {
    return undefined;
  }
}

const seconds = (start: number) => ((performance.now() - start) / 1000).toFixed(2);

export async function askCommand(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, { ...FLAGS });
  if (positional.length > 1) throw new UsageError("takes one VIDEO (or none for the bundled sample)");
  const modelDir = String(flags.model ?? DEFAULT_MODEL).replace(/\/$/, "");
  const sample = await bundledSample(modelDir);
  const videoPath = positional[0] ?? sample?.video;
  if (!videoPath) throw new UsageError(`no VIDEO given and ${modelDir}/samples.json names no sample`);
  const question = typeof flags.question === "string"
    ? flags.question
    : positional[0] === undefined
    ? sample?.question
    : undefined;
  if (!question) throw new UsageError("needs --question Q");
  const integer = (name: string, fallback?: number) => {
    const value = numberFlag(flags, name, fallback);
    if (value !== undefined && !(Number.isInteger(value) && value >= 1)) {
      throw new UsageError(`--${name} must be a positive integer, got ${value}`);
    }
    return value;
  };
  const log = (line: string) => console.error(`[ppllava] ${line}`);

  let start = performance.now();
  const model = await loadModel(modelDir, {
    quantize: quantFlag(flags, "quant"),
    quantizeVision: quantFlag(flags, "quant-vision"),
    workers: countFlag(flags, "workers"),
    visionWorkers: countFlag(flags, "vision-workers"),
  });
  if (flags.verbose && model.plan) { for (const line of formatPlan(model.plan).split("\n")) log(`plan: ${line}`); }
  // Which quantised products run on relaxed SIMD on this runtime and CPU, or why not (the speed differs by up to 1.7×).
  if (flags.verbose) log(`kernels: ${(await relaxedSimdSupport(await loadKernels())).reason}`);
  const vision = model.config.vision;
  log(
    `model ${modelDir}: vision ${vision.imageSize}² / patch ${vision.patchSize}, up to ${vision.maxT} frames (${
      seconds(start)
    } s)`,
  );

  // The frame count must be even for video pooling (kt = 2) and at most max_T (spec §8.4).
  const numFrames = integer("num-frames", Math.min(32, vision.maxT))!;
  start = performance.now();
  const bytes = new Uint8Array(await readFile(videoPath));
  const video = await decodeVideo(bytes, {
    numFrames,
    start: numberFlag(flags, "start"),
    end: numberFlag(flags, "end"),
  });
  const { info } = video;
  log(
    `decoded ${videoPath}: ${info.container}/${info.codec} ${info.width}×${info.height}, ${info.frameCount} frames ` +
      `at ${info.fps.toFixed(2)} fps; sampled ${video.indices.length} [${video.indices.join(", ")}] (${
        seconds(start)
      } s)`,
  );

  start = performance.now();
  const frameBytes = info.width * info.height * 3;
  const frames = video.indices.map((_, t) => ({
    data: video.data.subarray(t * frameBytes, (t + 1) * frameBytes),
    width: info.width,
    height: info.height,
  }));
  const pixels = await preprocess(frames, { variant: model.config.preprocess, size: vision.imageSize });
  log(`preprocessed to (${pixels.shape.join(", ")}) (${seconds(start)} s)`);

  start = performance.now();
  log(`question: ${question}`);
  const answer: string[] = [];
  const stream = model.generate({
    visuals: [{ pixels: pixels.data, kind: "video", sampling: `${videoPath}#${video.indices.join(",")}` }],
    question,
    maxNewTokens: integer("max-tokens", 64),
    numBeams: integer("beams", 1),
    doSample: flags.temperature !== undefined,
    temperature: numberFlag(flags, "temperature"),
    seed: integer("seed"),
  });
  let result;
  for (;;) {
    const next = await stream.next();
    if (next.done) {
      result = next.value;
      if (result.textTail) {
        answer.push(result.textTail);
        if (!flags.json) await writeStdout(result.textTail);
      }
      break;
    }
    if (next.value.text) {
      answer.push(next.value.text);
      if (!flags.json) await writeStdout(next.value.text);
    }
  }
  if (!flags.json) await writeStdout("\n");
  log(`${result.tokens.length} tokens, finished by ${result.finishReason} (${seconds(start)} s)`);
  if (flags.json) {
    console.log(JSON.stringify({
      video: videoPath,
      question,
      answer: answer.join("").trim(),
      tokens: result.tokens,
      finishReason: result.finishReason,
      frames: video.indices,
    }));
  }
  model.dispose();
  return 0;
}

async function writeStdout(text: string): Promise<void> {
  const { stdout } = await import("node:process");
  await new Promise<void>((resolve, reject) => stdout.write(text, (error) => (error ? reject(error) : resolve())));
}
