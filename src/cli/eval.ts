/**
 * `ppllava eval DATA_DIR [--split test] [--limit N] [--format avi|gif] [--model DIR] [--json]`
 *
 * Runs a held-out set written by train/data.py (DATA_DIR/<split>.jsonl + DATA_DIR/videos/<split>/<id>.<format>)
 * through the runtime, end to end: decode, sample max_T frames (spec §3.1), preprocess, greedy answers. Reports per
 * question type the multiple-choice accuracy (the answer must be the right option's text) and the open accuracy
 * (exact match), the rate of rejected-style errors (the answer equals the DPO "rejected" answer), and the ablation
 * of issue 4: the small-object questions again with plain average pooling at the same token budget.
 */
import { readFile } from "node:fs/promises";
import { numberFlag, parseArgs, UsageError } from "./args.ts";
import { DEFAULT_MODEL } from "./ask.ts";
import { decodeVideo } from "../media/video.ts";
import { preprocess } from "../media/preprocess.ts";
import { loadModel, type PPLLaVAModel, type VisualInput } from "../model/model.ts";

interface Question {
  type: string;
  question: string;
  mc_question: string;
  answer: string;
  rejected?: string;
}

interface Tally {
  right: number;
  total: number;
}

const normalise = (text: string) => text.trim().toLowerCase().replace(/[.\s]+$/, "");
const rate = (t: Tally) => (t.total ? t.right / t.total : 0);
const bump = (map: Map<string, Tally>, key: string, right: boolean) => {
  const t = map.get(key) ?? { right: 0, total: 0 };
  t.total++;
  if (right) t.right++;
  map.set(key, t);
};

async function answer(
  model: PPLLaVAModel,
  visual: VisualInput,
  question: string,
  weights: "prompt" | "uniform" = "prompt",
): Promise<string> {
  const result = await model.generateAll({
    visuals: [visual],
    question,
    maxNewTokens: 16,
    pooling: { weights },
  });
  return normalise(model.tokenizers.llama!.decode(result.tokens, { skipSpecialTokens: true }));
}

export async function evalCommand(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, {
    split: "string",
    limit: "string",
    format: "string",
    model: "string",
    json: "boolean",
  });
  if (positional.length !== 1) throw new UsageError("needs DATA_DIR (as written by train/data.py)");
  const dir = positional[0].replace(/\/$/, "");
  const split = String(flags.split ?? "test");
  const format = String(flags.format ?? "avi");
  const limit = numberFlag(flags, "limit");
  let records: { id: string; qa: Question[] }[];
  try {
    records = (await readFile(`${dir}/${split}.jsonl`, "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l));
  } catch (error) {
    throw new UsageError(`cannot read ${dir}/${split}.jsonl: ${(error as Error).message}`);
  }
  if (limit !== undefined) records = records.slice(0, limit);
  const model = await loadModel(String(flags.model ?? DEFAULT_MODEL));
  if (!model.tokenizers.llama || !model.tokenizers.clip) throw new UsageError("the model folder ships no tokenizers");
  const { maxT, imageSize } = model.config.vision;

  const mc = new Map<string, Tally>(), open = new Map<string, Tally>(), ablation = new Map<string, Tally>();
  let rejected = 0, mcWrong = 0;
  const started = performance.now();
  for (const [i, record] of records.entries()) {
    const video = await decodeVideo(await readFile(`${dir}/videos/${split}/${record.id}.${format}`), {
      numFrames: maxT,
    });
    const size = video.info.width * video.info.height * 3;
    const frames = video.indices.map((_, t) => ({
      data: video.data.subarray(t * size, (t + 1) * size),
      width: video.info.width,
      height: video.info.height,
    }));
    const pixels = await preprocess(frames, { variant: model.config.preprocess, size: imageSize });
    const visual: VisualInput = { pixels: pixels.data, sampling: `${record.id}.${format}` };
    for (const q of record.qa) {
      const truth = normalise(q.answer);
      if (q.mc_question) {
        const got = await answer(model, visual, q.mc_question);
        bump(mc, q.type, got === truth);
        if (got !== truth) {
          mcWrong++;
          if (q.rejected && got === normalise(q.rejected)) rejected++;
        }
      }
      bump(open, q.type, (await answer(model, visual, q.question)) === truth);
      if (q.type === "small_object") {
        bump(ablation, "prompt-guided", (await answer(model, visual, q.mc_question)) === truth);
        bump(ablation, "average", (await answer(model, visual, q.mc_question, "uniform")) === truth);
      }
    }
    if (!flags.json) console.error(`[ppllava eval] ${i + 1}/${records.length} videos`);
  }
  model.dispose();

  const all = (map: Map<string, Tally>) =>
    [...map.values()].reduce((a, t) => ({ right: a.right + t.right, total: a.total + t.total }), {
      right: 0,
      total: 0,
    });
  const summary = {
    split,
    videos: records.length,
    seconds: (performance.now() - started) / 1000,
    multipleChoice: { overall: rate(all(mc)), byType: Object.fromEntries([...mc].map(([k, t]) => [k, rate(t)])) },
    open: { overall: rate(all(open)), byType: Object.fromEntries([...open].map(([k, t]) => [k, rate(t)])) },
    rejectedStyleErrorRate: mcWrong ? rejected / all(mc).total : 0,
    smallObjectAblation: {
      questions: ablation.get("average")?.total ?? 0,
      promptGuided: rate(ablation.get("prompt-guided") ?? { right: 0, total: 0 }),
      average: rate(ablation.get("average") ?? { right: 0, total: 0 }),
    },
  };
  if (flags.json) {
    console.log(JSON.stringify(summary));
  } else {
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    console.log(`${summary.videos} videos of ${split}, ${summary.seconds.toFixed(1)} s`);
    console.log(`multiple choice ${pct(summary.multipleChoice.overall)}, open ${pct(summary.open.overall)}`);
    for (const [type, t] of mc) {
      console.log(`  ${type.padEnd(16)} MC ${pct(rate(t))} (${t.total})  open ${pct(rate(open.get(type)!))}`);
    }
    console.log(`rejected-style errors: ${pct(summary.rejectedStyleErrorRate)} of MC questions`);
    const a = summary.smallObjectAblation;
    console.log(
      `small objects (${a.questions} MC): prompt-guided ${pct(a.promptGuided)} vs average pooling ${pct(a.average)} ` +
        `(margin ${(100 * (a.promptGuided - a.average)).toFixed(1)} points)`,
    );
  }
  return 0;
}
