/**
 * The Qwen2/SigLIP variant (spec §9, issue 6) on the WASM SIMD backend, diffed against the float64 PyTorch
 * forward of tests/oracles/qwen_reference.py on small random checkpoints that tests/oracles/make_qwen_checkpoint.py
 * writes into a temp folder once per test process (tests/util/checkpoints.ts; f32, bf16, bf16 sharded: the same
 * values).
 *
 * Bars (the Vicuna variant's, tests/model_graph.test.ts): relevance elementwise relative ≤ 1e-4 (floor 1e-3 of
 * the largest value); pooled tokens norm-relative ≤ 1e-4; every other named stage max |got − ref| ≤ 1e-5 of the
 * stage's scale; logits max abs ≤ 1e-3 (the last 4 prompt rows: the reference stores only those, the vocabulary is
 * 152064 wide); the same greedy tokens. Cases: a 4-frame video (every stage), an odd 5-frame video (vision + PGP),
 * one image (81→9 tokens + image_newline), three images (one <image> each), the text tower with a padding mask;
 * and the "wide" checkpoint (f32): the real head widths, SigLIP 72 and Qwen2 128 with 7 query heads per KV head.
 */
import { assert, assertEquals, assertThrows } from "./util/assert.ts";
import { type Golden, loadGolden } from "./util/golden.ts";
import type { Backend, Tensor } from "../src/backend/backend.ts";
import { ConfigError, parseConfig } from "../src/model/config.ts";
import { ModelError } from "../src/model/errors.ts";
import { loadModel, type PPLLaVAModel, type VisualKind } from "../src/model/model.ts";
import { poolingSizes } from "../src/model/pgp.ts";
import { weightLayout } from "../src/model/weights.ts";
import { SiglipTokenizer } from "../src/model/tokenizers/siglip.ts";
import { textTowerTokenizerFromFiles } from "../src/model/tokenizers/text_tokenizer.ts";
import { onevisionJson, QWEN_IMAGE_ID, qwenTokenizerFile } from "./util/qwen_files.ts";
import { modelProto } from "./util/sentencepiece_proto.ts";
import { qwenCheckpoints } from "./util/checkpoints.ts";

const VARIANTS = ["f32", "bf16", "bf16-sharded"];
const RELATIVE_BAR = 1e-4;
const FLOOR = 1e-3;
const LOGITS_BAR = 1e-3;
const STAGE_BAR = 1e-5;

type Shape = "small" | "wide";
const goldens = new Map<Shape, Promise<Golden>>();
const theGolden = (shape: Shape = "small") => {
  if (!goldens.has(shape)) {
    goldens.set(shape, qwenCheckpoints(shape).then((dir) => loadGolden(`${dir}/golden.safetensors`)));
  }
  return goldens.get(shape)!;
};

const models = new Map<string, Promise<PPLLaVAModel>>();
const model = (variant: string, shape: Shape = "small") => {
  const key = `${shape}/${variant}`;
  if (!models.has(key)) models.set(key, qwenCheckpoints(shape).then((dir) => loadModel(`${dir}/${variant}`)));
  return models.get(key)!;
};

function recorder(b: Backend) {
  const got = new Map<string, Float32Array>();
  const pending: Promise<unknown>[] = [];
  return {
    got,
    trace: (name: string, t: Tensor) => void pending.push(b.download(t).then((v) => got.set(name, v))),
    settled: () => Promise.all(pending),
  };
}

const worst = new Map<string, number>();
const note = (key: string, value: number) => worst.set(key, Math.max(worst.get(key) ?? 0, value));

function stageError(got: Float32Array, ref: Float64Array): number {
  assertEquals(got.length, ref.length, "element count");
  let err = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    assert(Number.isFinite(got[i]), `element ${i} is ${got[i]}`);
    err = Math.max(err, Math.abs(got[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return err / scale;
}

function relativeError(got: Float32Array, ref: Float64Array): number {
  assertEquals(got.length, ref.length, "element count");
  const scale = ref.reduce((m, r) => Math.max(m, Math.abs(r)), 0);
  let err = 0;
  for (let i = 0; i < ref.length; i++) {
    assert(Number.isFinite(got[i]), `element ${i} is ${got[i]}`);
    err = Math.max(err, Math.abs(got[i] - ref[i]) / (Math.abs(ref[i]) + FLOOR * scale));
  }
  return err;
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

/** Relevance, pooled tokens and (with `logits`) the logits' last rows of one case against the reference. */
async function checkCase(g: Golden, label: string, prefix: string, got: Map<string, Float32Array>, logits = true) {
  const rel = relativeError(got.get("pgp.relevance")!, await g.f64(`${prefix}pgp.relevance`));
  note(`${label} pgp.relevance (elementwise relative)`, rel);
  assert(rel <= RELATIVE_BAR, `${label} relevance: relative error ${rel.toExponential(2)} > ${RELATIVE_BAR}`);
  const pooledRef = await g.f64(`${prefix}pgp.pooled`);
  note(`${label} pgp.pooled (elementwise relative)`, relativeError(got.get("pgp.pooled")!, pooledRef));
  const pooled = normRelative(got.get("pgp.pooled")!, pooledRef);
  note(`${label} pgp.pooled (norm relative)`, pooled);
  assert(pooled <= RELATIVE_BAR, `${label} pooled: norm-relative error ${pooled.toExponential(2)} > ${RELATIVE_BAR}`);
  const feature = stageError(got.get("vision.feature")!, await g.f64(`${prefix}vision.feature`));
  note(`${label} vision.feature (stage)`, feature);
  assert(feature <= STAGE_BAR, `${label} vision.feature: ${feature.toExponential(2)} > ${STAGE_BAR}`);
  if (!logits) return;
  const ref = await g.f64(`${prefix}llm.logits.tail`);
  const all = got.get("llm.logits")!;
  const e = stageError(all.subarray(all.length - ref.length), ref) *
    ref.reduce((m, r) => Math.max(m, Math.abs(r)), 0);
  note(`${label} llm.logits (max abs, last rows)`, e);
  assert(e <= LOGITS_BAR, `${label} logits: max abs error ${e} > ${LOGITS_BAR}`);
}

async function request(g: Golden, prefix: string, kind: VisualKind, trace?: (n: string, t: Tensor) => void) {
  const pixels = Float32Array.from(await g.f64(`${prefix}input.pixel_values`));
  return {
    visuals: [{ pixels, kind, imageSize: kind === "image" ? [132, 132] as const : undefined }],
    ids: await g.ints(`${prefix}input.ids`),
    clipIds: await g.ints("input.clip_ids"),
    trace,
    maxNewTokens: 12,
  };
}

for (const [variant, shape] of [...VARIANTS.map((v) => [v, "small"] as const), ["f32", "wide"] as const]) {
  const label = shape === "wide" ? `wide ${variant}` : variant;
  Deno.test(`qwen ${label}: video, every named stage, logits and greedy tokens match the float64 reference`, async () => {
    const g = await theGolden(shape);
    const m = await model(variant, shape);
    const { trace, got, settled } = recorder(m.backend);
    const result = await m.generateAll(await request(g, "", "video", trace));
    await settled();
    for (const required of ["vision.hs.2", "text.pooled", "pgp.text_embed", "pgp.visual_embeds", "llm.layers.0"]) {
      assert(got.has(required), `${required} was not traced`);
    }
    for (const [name, value] of got) {
      if (["llm.logits", "pgp.relevance", "pgp.pooled"].includes(name)) continue;
      assert(g.names().includes(name), `the reference has no stage ${name}`);
      const e = stageError(value, await g.f64(name));
      note(`${label} ${name.replace(/\.\d+$/, ".*")} (stage)`, e);
      assert(e <= STAGE_BAR, `${label} ${name}: error ${e.toExponential(2)} of its scale > ${STAGE_BAR}`);
    }
    await checkCase(g, `${label} video`, "", got);
    assertEquals(result.tokens, await g.ints("greedy.tokens"), "greedy tokens");
  });

  if (shape === "wide") continue;
  Deno.test(`qwen ${variant}: one image, three images, odd T, masked text match the reference`, async () => {
    const g = await theGolden();
    const m = await model(variant);
    for (const [prefix, kind] of [["image.", "image"], ["multi.", "images"]] as const) {
      const { trace, got, settled } = recorder(m.backend);
      const result = await m.generateAll(await request(g, prefix, kind, trace));
      await settled();
      await checkCase(g, `${variant} ${kind}`, prefix, got);
      assertEquals(result.tokens, await g.ints(`${prefix}greedy.tokens`), `${kind} greedy tokens`);
    }
    const b = m.backend;
    const { trace, got, settled } = recorder(b);
    const clipIds = await g.ints("input.clip_ids");
    const odd = { pixels: Float32Array.from(await g.f64("odd.input.pixel_values")) };
    const feature = await m.features(odd, trace);
    b.scope(() => m.pgp.forward(b, feature, m.text.forward(b, clipIds), { video: true, trace }));
    const masked = b.scope(() => m.text.forward(b, clipIds, paddingMask(clipIds)));
    const maskedEmbed = await b.download(masked);
    masked.dispose();
    feature.dispose();
    await settled();
    await checkCase(g, `${variant} odd T=5`, "odd.", got, false);
    assertEquals(got.get("pgp.pooled")!.length, 2 * 9 * 32, "5 frames pool to 2 time windows (the last is dropped)");
    const e = stageError(maskedEmbed, await g.f64("masked.pgp.text_embed"));
    note(`${variant} masked pgp.text_embed (stage)`, e);
    assert(e <= STAGE_BAR, `masked text embedding: ${e.toExponential(2)} > ${STAGE_BAR}`);
    const unmasked = await g.f64("pgp.text_embed");
    assert(stageError(maskedEmbed, unmasked) > 1e-2, "the mask must change the pooled text state");
  });
}

/** The golden's padding mask: ones up to and including the first EOS (1), zeros after. */
function paddingMask(ids: number[]): number[] {
  const end = ids.indexOf(1) + 1;
  return ids.map((_, i) => (i < end ? 1 : 0));
}

Deno.test("qwen config: the onevision defaults, the variant's fields, and typed errors that name the field", () => {
  const c = parseConfig({ model_type: "llava_onevision" });
  assertEquals(c.modelType, "llava_onevision");
  assertEquals([c.vision.arch, c.vision.hiddenSize, c.vision.numLayers, c.vision.gridSize], ["siglip", 1152, 26, 27]);
  assertEquals([c.llm.numHeads, c.llm.numKvHeads, c.llm.ropeTheta, c.llm.attentionBias], [28, 4, 1e6, true]);
  assertEquals([c.clipText.arch, c.clipText.positions, c.clipText.vocabSize], ["siglip", 196, 32000]);
  assertEquals([c.imageTokenIndex, c.padTokenId, c.eosTokenIds], [151646, 151643, [151645, 151643]]);
  assertEquals([c.chatTemplate, c.preprocess, c.visionFeatureLayer], ["plain_qwen", "qwen", -1]);
  assertEquals(c.pooling.frameShape, [27, 27]);
  const vicuna = parseConfig({});
  assertEquals([vicuna.vision.arch, vicuna.llm.attentionBias, vicuna.eosTokenIds], ["clip", false, [2]]);

  const cases: [Record<string, unknown>, string, string][] = [
    [{ valuew_plus: true }, "unsupported", "valuew_plus"],
    [{ btadapter: true }, "bad_field", "btadapter"],
    [{ qwen: false }, "bad_field", "qwen"],
    [{ text_config: { num_key_value_heads: 5 } }, "bad_field", "text_config.num_key_value_heads"],
    [{ text_config: { model_type: "llama" } }, "bad_field", "text_config.model_type"],
    [{ text_config: { use_sliding_window: true } }, "bad_field", "text_config.use_sliding_window"],
    [{ frame_shape: [24, 24] }, "bad_field", "frame_shape"],
    [{ vision_feature_select_strategy: "default" }, "bad_field", "vision_feature_select_strategy"],
    [
      { clip_text_config: { hidden_size: 768, num_attention_heads: 12 } },
      "bad_field",
      "clip_text_config.projection_size",
    ],
    [{ vision_config: { hidden_act: "quick_gelu" } }, "bad_field", "vision_config.hidden_act"],
  ];
  for (const [extra, code, field] of cases) {
    const error = assertThrows(() => parseConfig({ model_type: "llava_onevision", ...extra }), ConfigError);
    assertEquals([error.code, error.field], [code, field], JSON.stringify(extra));
    assert(error.message.includes(field), `the message names ${field}: ${error.message}`);
  }
  const other = assertThrows(() => parseConfig({ model_type: "qwen2_vl" }), ConfigError);
  assert(other.message.includes("llava_onevision"), other.message);
});

Deno.test("qwen pooling: 32 frames of 27×27 patches → 16·9·9 = 1296 tokens; an image → 81; odd T drops a frame", () => {
  const c = parseConfig({ model_type: "llava_onevision" });
  const p = c.pooling;
  const count = (frames: number, video: boolean) =>
    poolingSizes([frames, ...p.frameShape], {
      kernel: video ? p.kernel : p.imageKernel,
      stride: video ? p.stride : p.imageStride,
      output: video ? p.outputShape : null,
    }).reduce((n, s) => n * s.output, 1);
  assertEquals(count(32, true), 1296);
  assertEquals(count(33, true), 1296);
  assertEquals(count(64, true), 2592);
  assertEquals(count(1, false), 81);
  assertEquals(count(3, false), 243);
});

Deno.test("qwen layout: SigLIP, the patch head, the SigLIP text head and Qwen2's q/k/v biases", () => {
  const layout = weightLayout(parseConfig({ model_type: "llava_onevision" }));
  const shape = (key: string) => layout.get(key)?.shape;
  const v = "vision_tower.vision_model";
  const p = "multi_modal_projector";
  assertEquals(shape(`${v}.embeddings.patch_embedding.bias`), [1152]);
  assertEquals(shape(`${v}.embeddings.position_embedding.weight`), [729, 1152]);
  assertEquals(layout.has(`${v}.embeddings.class_embedding`), false);
  assertEquals(layout.has(`${v}.pre_layrnorm.weight`), false);
  assertEquals(shape(`${p}.clip_visual_head.attention.in_proj_weight`), [3456, 1152]);
  assertEquals(layout.get(`${p}.clip_visual_head.probe`)?.needed, false);
  assertEquals(shape(`${p}.clip_text_model.embeddings.position_embedding`), [196, 1152]);
  assertEquals(shape(`${p}.clip_text_model.head.weight`), [1152, 1152]);
  assertEquals(shape(`${p}.logit_bias`), [1]);
  assertEquals(shape("language_model.model.layers.27.self_attn.k_proj.bias"), [512]);
  assertEquals(shape("language_model.model.layers.0.self_attn.q_proj.bias"), [3584]);
  assertEquals(layout.has("language_model.model.layers.0.self_attn.o_proj.bias"), false);
  assertEquals(layout.has(`${p}.clip_visual_projection.weight`), false);
});

Deno.test("qwen reference self-checks (check_qwen_reference.py: torch modules, GQA by hand, cache) pass", async () => {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: ["tests/oracles/check_qwen_reference.py"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert(out.success, text);
  assert(text.includes("all qwen reference self-checks passed"), text);
});

Deno.test("qwen prompt: a question renders plain_qwen; without SigLIP ids it is a typed error", async () => {
  const m = await model("f32");
  const seen: string[] = [];
  // A recording tokenizer: the rendered text is what this test is about (the real one is tested below).
  const tokenizer = { encode: (text: string) => (seen.push(text), [151644, 151646, 151645]) };
  Object.assign(m.tokenizers, { llama: tokenizer });
  try {
    const visuals = [{ pixels: new Float32Array(2 * 3 * 132 * 132) }];
    const prompt = m.prompt({ visuals, question: "what is he doing?", clipIds: [5, 6, 1] });
    assertEquals(seen, ["<|im_start|>user\n<image>\nwhat is he doing?<|im_end|>\n<|im_start|>assistant\n"]);
    assertEquals(Array.from(prompt.clipIds), [5, 6, 1]);
    const error = assertThrows(() => m.prompt({ visuals, question: "what?" }), ModelError);
    assertEquals(error.code, "bad_input");
    assert(error.message.includes("clipIds"), error.message);
  } finally {
    Object.assign(m.tokenizers, { llama: undefined });
  }
});

const QWEN_TOKENIZER = await qwenTokenizerFile("tokenizer.json");

Deno.test({
  name: "qwen prompt: loadModel finds Qwen2's tokenizer.json and SigLIP's spiece.model, and a question generates",
  ignore: !QWEN_TOKENIZER,
  async fn() {
    const dir = await qwenCheckpoints("small");
    const folder = await Deno.makeTempDir({ prefix: "qwen-tok-" });
    try {
      for (const name of ["config.json", "model.safetensors"]) {
        await Deno.symlink(`${dir}/f32/${name}`, `${folder}/${name}`);
      }
      await Deno.writeTextFile(`${folder}/tokenizer.json`, JSON.stringify(onevisionJson(QWEN_TOKENIZER!)));
      await Deno.mkdir(`${folder}/clip_tokenizer`);
      // A hand-made SigLIP unigram model (SigLIP's own spiece.model is not reachable here): <pad> 0, </s> 1, <unk> 2.
      const pieces: [string, number, number][] = [["<pad>", 0, 3], ["</s>", 0, 3], ["<unk>", 0, 2]];
      for (const [i, piece] of ["▁", "▁what", "▁is", "▁he", "▁doing", "?", "w", "h", "a", "t"].entries()) {
        pieces.push([piece, -1 - i, 1]);
      }
      const spiece = modelProto(pieces, 1, "nmt_nfkc");
      await Deno.writeFile(`${folder}/clip_tokenizer/spiece.model`, spiece);
      const m = await loadModel(folder);
      {
        assert(m.tokenizers.clip instanceof SiglipTokenizer, "SigLIP's tokenizer from clip_tokenizer/spiece.model");
        const visuals = [{ pixels: new Float32Array(2 * 3 * 132 * 132) }];
        const question = "What is he doing?";
        const prompt = m.prompt({ visuals, question });
        const siglip = SiglipTokenizer.fromSentencePieceModel(spiece).encode(question, { maxLength: 196 });
        assertEquals(Array.from(prompt.clipIds), siglip.inputIds);
        assertEquals(
          Array.from(prompt.clipIds).slice(0, 6),
          [4, 5, 6, 7, 1, 1],
          "lower-cased, ? removed, EOS, pad </s>",
        );
        const ids = Array.from(prompt.ids);
        assertEquals(ids.slice(0, 4), [151644, 872, 198, QWEN_IMAGE_ID], "<|im_start|>user\\n<image>");
        assertEquals(ids.slice(-5), [151645, 198, 151644, 77091, 198], "<|im_end|>\\n<|im_start|>assistant\\n");
        const result = await m.generateAll({ visuals, question, maxNewTokens: 3 });
        assert(result.tokens.length >= 1 && result.tokens.length <= 3, `${result.tokens}`);
        // A CLIP tokenizer on a SigLIP tower is refused by name.
        const clipJson = {
          model: { type: "BPE", vocab: { "a</w>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2 }, merges: [] },
        };
        Object.assign(m.tokenizers, { clip: textTowerTokenizerFromFiles({ tokenizerJson: { ...clipJson } }) });
        const error = assertThrows(() => m.prompt({ visuals, question }), ModelError);
        assert(error.message.includes("SigLIP"), error.message);
      }
    } finally {
      await Deno.remove(folder, { recursive: true });
    }
  },
});

Deno.test("qwen summary: measured errors", async () => {
  await theGolden();
  for (const [key, value] of [...worst].sort()) console.log(`${key}: ${value.toExponential(2)}`);
  for (const m of models.values()) (await m).dispose();
});
