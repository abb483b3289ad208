/**
 * `ppllava eval DATA_DIR [--split test] [--limit N] [--format avi|gif] [--model DIR] [--quant q8|q4]
 *   [--quant-vision q8|q4] [--answers FILE] [--against FILE] [--json]`
 *
 * Runs a held-out set written by train/data.py (DATA_DIR/<split>.jsonl + DATA_DIR/videos/<split>/<id>.<format>)
 * through the runtime, end to end: decode, sample max_T frames (spec §3.1), preprocess, greedy answers. Reports per
 * question type the multiple-choice accuracy (the answer must be the right option's text) and the open accuracy
 * (exact match), the rate of rejected-style errors (the answer equals the DPO "rejected" answer), and the ablation
 * of issue 4: the small-object questions again with plain average pooling at the same token budget, compared question
 * by question (exact McNemar test, src/cli/paired.ts).
 *
 * `--answers FILE` writes every answer as a JSON line (video, question index, form mc / open / average, the text, right
 * or not, rejected-style or not). `--against FILE` reads such a file from another run over the same questions (say,
 * the SFT weights, to measure what DPO changed) and compares this run with it question by question: MC accuracy, open
 * accuracy and the rejected-style error rate, each with the questions that moved either way and the exact p-value.
 */
import { readFile, writeFile } from "node:fs/promises";
import { numberFlag, parseArgs, quantFlag, UsageError } from "./args.ts";
import { DEFAULT_MODEL } from "./ask.ts";
import { decodeVideo } from "../media/video.ts";
import { preprocess } from "../media/preprocess.ts";
import { loadModel, type PPLLaVAModel, type VisualInput } from "../model/model.ts";
import { describePaired, type Pair, pairedComparison } from "./paired.ts";

interface Question {
  type: string;
  question: string;
  mc_question: string;
  answer: string;
  rejected?: string;
}

/** One answer of a run, as `--answers` writes it and `--against` reads it. */
export interface AnswerRecord {
  video: string;
  /** The question's index in its video's `qa` list. */
  index: number;
  type: string;
  /** mc: the multiple-choice form; open: the open form; average: the MC form under plain average pooling. */
  form: "mc" | "open" | "average";
  answer: string;
  got: string;
  right: boolean;
  /** The answer is the DPO "rejected" one (MC only). */
  rejectedStyle: boolean;
}

const answerKey = (r: Pick<AnswerRecord, "video" | "index" | "form">) => `${r.video}#${r.index}#${r.form}`;

async function readAnswers(path: string): Promise<Map<string, AnswerRecord>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new UsageError(`--against: cannot read ${path}: ${(error as Error).message}`);
  }
  const out = new Map<string, AnswerRecord>();
  for (const [i, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    let record: AnswerRecord;
    try {
      record = JSON.parse(line);
    } catch {
      throw new UsageError(`--against: ${path} line ${i + 1} is not JSON (expected a file written by --answers)`);
    }
    if (typeof record.video !== "string" || typeof record.right !== "boolean" || !record.form) {
      throw new UsageError(`--against: ${path} line ${i + 1} is not an answer record (written by --answers)`);
    }
    out.set(answerKey(record), record);
  }
  return out;
}

/** Pairs this run's answers of one form with the other run's; every question must be in both, with the same truth. */
function pairUp(
  mine: AnswerRecord[],
  theirs: Map<string, AnswerRecord>,
  form: AnswerRecord["form"],
  property: (r: AnswerRecord) => boolean,
  path: string,
): Pair[] {
  return mine.filter((r) => r.form === form).map((r) => {
    const other = theirs.get(answerKey(r));
    if (!other || other.answer !== r.answer) {
      throw new UsageError(
        `--against: ${path} has ${other ? "another answer for" : "no"} question ${r.index} (${form}) of video ` +
          `${r.video}: it must come from a run over the same questions (same data folder, split and --limit)`,
      );
    }
    return { base: property(other), other: property(r) };
  });
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
    quant: "string",
    "quant-vision": "string",
    answers: "string",
    against: "string",
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
  const against = flags.against === undefined ? undefined : await readAnswers(String(flags.against));
  const model = await loadModel(String(flags.model ?? DEFAULT_MODEL), {
    quantize: quantFlag(flags, "quant"),
    quantizeVision: quantFlag(flags, "quant-vision"),
  });
  if (!model.tokenizers.llama || !model.tokenizers.clip) throw new UsageError("the model folder ships no tokenizers");
  const { maxT, imageSize } = model.config.vision;

  const mc = new Map<string, Tally>(), open = new Map<string, Tally>(), ablation = new Map<string, Tally>();
  const answers: AnswerRecord[] = [];
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
    for (const [index, q] of record.qa.entries()) {
      const truth = normalise(q.answer);
      const note = (form: AnswerRecord["form"], got: string) => {
        const right = got === truth;
        const rejectedStyle = form === "mc" && !right && !!q.rejected && got === normalise(q.rejected);
        answers.push({ video: record.id, index, type: q.type, form, answer: truth, got, right, rejectedStyle });
        return { right, rejectedStyle };
      };
      let mcRight = false;
      if (q.mc_question) {
        const outcome = note("mc", await answer(model, visual, q.mc_question));
        mcRight = outcome.right;
        bump(mc, q.type, outcome.right);
        if (!outcome.right) mcWrong++;
        if (outcome.rejectedStyle) rejected++;
      }
      bump(open, q.type, note("open", await answer(model, visual, q.question)).right);
      if (q.type === "small_object" && q.mc_question) {
        // The prompt-guided answer is the MC answer above (greedy, same input); only average pooling runs again.
        bump(ablation, "prompt-guided", mcRight);
        bump(ablation, "average", note("average", await answer(model, visual, q.mc_question, "uniform")).right);
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
  const small = answers.filter((r) => r.type === "small_object" && r.form === "mc");
  const averaged = new Map(
    answers.filter((r) => r.form === "average").map((r) => [answerKey({ ...r, form: "mc" }), r]),
  );
  const ablationPaired = pairedComparison(
    small.map((r) => ({ base: averaged.get(answerKey(r))!.right, other: r.right })),
  );
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
      // questions only average pooling got right, only prompt-guided pooling got right, and the exact p-value
      onlyAverage: ablationPaired.onlyBase,
      onlyPromptGuided: ablationPaired.onlyOther,
      p: ablationPaired.p,
    },
    ...(against && {
      against: {
        file: String(flags.against),
        multipleChoice: pairedComparison(pairUp(answers, against, "mc", (r) => r.right, String(flags.against))),
        open: pairedComparison(pairUp(answers, against, "open", (r) => r.right, String(flags.against))),
        rejectedStyle: pairedComparison(pairUp(answers, against, "mc", (r) => r.rejectedStyle, String(flags.against))),
      },
    }),
  };
  if (flags.answers !== undefined) {
    await writeFile(String(flags.answers), answers.map((r) => JSON.stringify(r)).join("\n") + "\n");
  }
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
        `(margin ${(100 * (a.promptGuided - a.average)).toFixed(1)} points; right only with prompt-guided ` +
        `${a.onlyPromptGuided}, only with average ${a.onlyAverage}; exact McNemar p = ${a.p.toPrecision(2)})`,
    );
    if (summary.against) {
      const { file, multipleChoice, open, rejectedStyle } = summary.against;
      console.log(`against ${file}, question by question (that run → this one):`);
      console.log(`  MC accuracy            ${describePaired(multipleChoice, "right there", "right here")}`);
      console.log(`  open accuracy          ${describePaired(open, "right there", "right here")}`);
      console.log(`  rejected-style errors  ${describePaired(rejectedStyle, "there", "here")}`);
    }
  }
  return 0;
}
