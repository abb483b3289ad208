/**
 * Weights and config loading (issue 5): small random checkpoints in the exact HF layout (spec §6), made by
 * tests/oracles/make_checkpoint.py into a temp folder, are read back in f32/f16/bf16, single file and sharded, and
 * every tensor is compared with NumPy's values (sha256 of the decoded f32 bytes). Every error path asserts its
 * typed error.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "./util/assert.ts";
import { ConfigError, parseConfig, parseConfigText } from "../src/model/config.ts";
import {
  type DType,
  readF32,
  readF64,
  readInts,
  SafetensorsFile,
  ShardedSafetensors,
  WeightsError,
} from "../src/model/safetensors.ts";
import { ModelWeights, openCheckpoint, weightLayout } from "../src/model/weights.ts";
import { bytesSource, directoryFiles, memoryFiles } from "../src/util/random_access.ts";
import { loadGolden } from "./util/golden.ts";
import { smallCheckpoints } from "./util/checkpoints.ts";

const VARIANTS = ["f32", "f16", "bf16", "f32-sharded", "f16-sharded", "bf16-sharded"];

const checkpoints = smallCheckpoints;

async function sha256(values: Float32Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", values.slice().buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

interface Checksum {
  shape: number[];
  sha256: string;
  sum: number;
}

for (const variant of VARIANTS) {
  Deno.test(`checkpoint ${variant}: every tensor of the §6 layout loads with NumPy's exact values`, async () => {
    const dir = await checkpoints();
    const table: Record<string, Checksum> = JSON.parse(await Deno.readTextFile(`${dir}/checksums.json`));
    const weights = await openCheckpoint(`${dir}/${variant}`);
    try {
      assertEquals(
        weights.config.torchDtype,
        { f32: "float32", f16: "float16", bf16: "bfloat16" }[variant.split("-")[0]],
      );
      assertEquals(new Set(weights.store.names()), new Set(Object.keys(table)));
      assertEquals(new Set(weights.layout.keys()), new Set(Object.keys(table)), "layout keys = checkpoint keys");
      assertEquals(weights.unexpectedTensors(), []);
      const dtype = variant.split("-")[0].toUpperCase();
      for (const [name, expected] of Object.entries(table)) {
        const info = weights.store.info(name);
        assertEquals(info.dtype, dtype, name);
        assertEquals([...info.shape], expected.shape, name);
        const values = await weights.f32(name);
        assertEquals(await sha256(values), expected.sha256, `values of ${name}`);
      }
    } finally {
      await weights.close();
    }
  });
}

Deno.test("config: the small checkpoint's config.json parses into the typed config", async () => {
  const dir = await checkpoints();
  const config = parseConfigText(await Deno.readTextFile(`${dir}/f32/config.json`));
  assertEquals(config.vision.hiddenSize, 64);
  assertEquals(config.vision.gridSize, 6);
  assertEquals(config.vision.btDepth, 4);
  assertEquals(config.vision.maxT, 8);
  assertEquals(config.clipText.positions, 248);
  assertEquals(config.clipText.keepPositions, 20);
  assertEquals(config.llm.vocabSize, 32064);
  assertEquals(config.llm.headDim, 16);
  assertEquals(config.pooling.kernel, [2, 3, 3]);
  assertEquals(config.pooling.outputShape, null);
  assertEquals(config.visionFeatureLayer, -2);
});

Deno.test("config: an empty config.json takes the §2 values of the released Vicuna-7B checkpoint", () => {
  const config = parseConfig({});
  assertEquals(config.vision.hiddenSize, 1024);
  assertEquals(config.vision.numLayers, 24);
  assertEquals(config.vision.gridSize, 24);
  assertEquals(config.vision.maxT, 64);
  assertEquals(config.clipText.hiddenSize, 768);
  assertEquals(config.clipText.positions, 248);
  assertEquals(config.llm.hiddenSize, 4096);
  assertEquals(config.llm.numKvHeads, 32);
  assertEquals(config.llm.rmsNormEps, 1e-5);
  assertEquals(config.pooling.temperature, 0.01);
  assertEquals(config.pooling.imageKernel, [1, 3, 3]);
  assertEquals(config.imageTokenIndex, 32000);
  // The §6 shapes of the real checkpoint.
  const layout = weightLayout(config);
  const shape = (name: string) => layout.get(name)?.shape;
  assertEquals(shape("vision_tower.vision_model.embeddings.position_embedding.weight"), [577, 1024]);
  assertEquals(shape("vision_tower.vision_model.embeddings.patch_embedding.weight"), [1024, 3, 14, 14]);
  assertEquals(shape("vision_tower.vision_model.btadapter_time_embed.weight"), [64, 1024]);
  assertEquals(shape("vision_tower.vision_model.btadapter_cls_token"), [1, 1, 1024]);
  assertEquals(shape("vision_tower.vision_model.btadapter_T_layers.3.temporal_fc.weight"), [1024, 1024]);
  assertEquals(shape("multi_modal_projector.clip_visual_projection.weight"), [768, 1024]);
  assertEquals(shape("multi_modal_projector.clip_text_model.embeddings.position_embedding"), [248, 768]);
  assertEquals(shape("multi_modal_projector.clip_text_model.embeddings.token_embedding.weight"), [49408, 768]);
  assertEquals(shape("multi_modal_projector.logit_scale"), []);
  assertEquals(shape("language_model.lm_head.weight"), [32064, 4096]);
  assertEquals(shape("image_newline"), [4096]);
  assertEquals(layout.has("vision_tower.vision_model.btadapter_T_layers.0.mlp.fc1.weight"), false);
  // Feature = hs[23]: CLIP layers 0..22 and BT layers 0..2 are read; layer 23, BT 3 and post_layernorm are not.
  assertEquals(layout.get("vision_tower.vision_model.encoder.layers.22.mlp.fc2.bias")?.needed, true);
  assertEquals(layout.get("vision_tower.vision_model.encoder.layers.23.mlp.fc2.bias")?.needed, false);
  assertEquals(layout.get("vision_tower.vision_model.btadapter_S_layers.2.layer_norm1.weight")?.needed, true);
  assertEquals(layout.get("vision_tower.vision_model.btadapter_S_layers.3.layer_norm1.weight")?.needed, false);
  assertEquals(layout.get("vision_tower.vision_model.post_layernorm.weight")?.needed, false);
});

const BAD_CONFIGS: Array<[string, Record<string, unknown>, string, ConfigError["code"]?]> = [
  ["patch size that does not divide the image", { vision_config: { patch_size: 13 } }, "vision_config.patch_size"],
  ["frame_shape against the patch grid", { frame_shape: [12, 12] }, "frame_shape"],
  ["negative pooling temperature", { pooling_temp: -1 }, "pooling_temp"],
  ["two-axis pooling kernel", { pooling_kernel: [2, 3] }, "pooling_kernel"],
  [
    "BT depth disagreeing with vision_config.depth",
    { btadapter_depth: 3, vision_config: { depth: 4 } },
    "btadapter_depth",
  ],
  ["max_T disagreeing", { max_T: 32, vision_config: { max_T: 64 } }, "max_T"],
  [
    "heads that do not divide the hidden size",
    { text_config: { num_attention_heads: 5 } },
    "text_config.num_attention_heads",
  ],
  [
    "kv heads that do not divide the heads",
    { text_config: { num_key_value_heads: 5 } },
    "text_config.num_key_value_heads",
  ],
  ["projector activation", { projector_hidden_act: "relu" }, "projector_hidden_act"],
  ["feature layer out of range", { vision_feature_layer: -30 }, "vision_feature_layer"],
  ["kernel and stride and output shape all set", { pllava_pooling_shape: [16, 8, 8] }, "pllava_pooling_shape"],
  ["neither kernel nor output shape", { pooling_kernel: null }, "pooling_kernel"],
  ["string where a number goes", { vision_config: { hidden_size: "1024" } }, "vision_config.hidden_size"],
  ["unknown select strategy", { vision_feature_select_strategy: "cls" }, "vision_feature_select_strategy"],
  ["an unknown model type (llava_onevision is the Qwen2 variant, tests/qwen_variant.test.ts)", {
    model_type: "qwen2_vl",
  }, "model_type"],
];
for (const [label, raw, field, code] of BAD_CONFIGS) {
  Deno.test(`config error: ${label} → ConfigError naming ${field}`, () => {
    const error = assertThrows(() => parseConfig(raw), ConfigError, field);
    assertEquals(error.field, field);
    assertEquals(error.code, code ?? "bad_field");
  });
}

Deno.test("config: output-size mode with the kernel nulled is accepted (get_size, output + stride)", () => {
  const config = parseConfig({ pllava_pooling_shape: [16, 8, 8], pooling_kernel: null });
  assertEquals(config.pooling.outputShape, [16, 8, 8]);
  assertEquals(config.pooling.kernel, null);
  assertEquals(config.pooling.stride, [2, 3, 3]);
});

Deno.test("config error: text that is not JSON, and a folder without config.json", async () => {
  assertEquals(assertThrows(() => parseConfigText("{nope"), ConfigError).code, "bad_json");
  const error = await assertRejects(() => openCheckpoint(memoryFiles({})), ConfigError, "config.json");
  assertEquals(error.code, "bad_json");
});

Deno.test("dtype probe: F16 (subnormals, ±0, ±inf, NaN), BF16, F32, F64, I32, I64 decode bit-exactly", async () => {
  const dir = await checkpoints();
  const expected = JSON.parse(await Deno.readTextFile(`${dir}/dtype_probe.json`));
  const file = await SafetensorsFile.fromBytes(await Deno.readFile(`${dir}/dtype_probe.safetensors`));
  assertEquals(file.metadata.note, "special values");
  const bits = (values: Float32Array) => [...new Uint32Array(values.buffer)];
  assertEquals(bits(await readF32(file, "f16")), expected.f16);
  assertEquals(bits(await readF32(file, "bf16")), expected.bf16);
  assertEquals(file.info("bf16").shape, [3, 4]);
  assertEquals(bits(await readF32(file, "f32")), expected.f32);
  const f64 = await readF64(file, "f64");
  assertEquals([...new BigUint64Array(f64.buffer)].map(String), expected.f64);
  assertEquals((await readInts(file, "i64")).map(String), expected.i64);
  assertEquals(await readInts(file, "i32"), expected.i32);
  await assertRejects(() => readF32(file, "i64"), WeightsError, "F32, F16 or BF16");
  await assertRejects(() => readInts(file, "f32"), WeightsError, "I64 or I32");
});

// ------------------------------------------------------------------------------------------------------------
// Error paths on edited copies of the f32 checkpoint

type Header = Record<
  string,
  { dtype: DType; shape: number[]; data_offsets: [number, number] } | Record<string, string>
>;

function splitFile(bytes: Uint8Array): { header: Header; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), data: bytes.subarray(8 + n) };
}

function joinFile(header: unknown, data: Uint8Array): Uint8Array {
  const text = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

async function editedCheckpoint(edit: (header: Header) => void): Promise<Record<string, Uint8Array>> {
  const dir = await checkpoints();
  const { header, data } = splitFile(await Deno.readFile(`${dir}/f32/model.safetensors`));
  edit(header);
  return {
    "config.json": await Deno.readFile(`${dir}/f32/config.json`),
    "model.safetensors": joinFile(header, data),
  };
}

const FC1 = "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight";
const LAST_LLM = "language_model.lm_head.weight";

Deno.test("weights error: a missing tensor names it", async () => {
  const files = await editedCheckpoint((h) => delete h[FC1]);
  const error = await assertRejects(() => openCheckpoint(memoryFiles(files)), WeightsError, FC1);
  assertEquals(error.code, "missing_tensor");
  assertEquals(error.tensor, FC1);
});

Deno.test("weights error: an unneeded tensor (vision post_layernorm) may be missing", async () => {
  const name = "vision_tower.vision_model.post_layernorm.weight";
  const weights = await openCheckpoint(memoryFiles(await editedCheckpoint((h) => delete h[name])));
  assertEquals(weights.has(name), false);
  await weights.close();
});

Deno.test("weights error: a transposed tensor (same bytes, wrong shape) names it and both shapes", async () => {
  const files = await editedCheckpoint((h) => {
    (h[FC1] as { shape: number[] }).shape = [64, 128];
  });
  const error = await assertRejects(
    () => openCheckpoint(memoryFiles(files)),
    WeightsError,
    "[64,128], expected [128,64]",
  );
  assertEquals(error.code, "bad_shape");
  assertEquals(error.tensor, FC1);
});

Deno.test("weights error: a shape whose bytes disagree with the offsets is rejected by the file itself", async () => {
  const files = await editedCheckpoint((h) => {
    (h[FC1] as { shape: number[] }).shape = [128, 65];
  });
  const error = await assertRejects(() => openCheckpoint(memoryFiles(files)), WeightsError, FC1);
  assertEquals(error.code, "bad_shape");
});

Deno.test("weights error: an unknown dtype, and a known non-weight dtype, name the tensor", async () => {
  const unknown = await editedCheckpoint((h) => {
    (h[FC1] as { dtype: string }).dtype = "F8_E9";
  });
  const error = await assertRejects(() => openCheckpoint(memoryFiles(unknown)), WeightsError, "F8_E9");
  assertEquals([error.code, error.tensor], ["bad_dtype", FC1]);
  const ints = await editedCheckpoint((h) => {
    (h[FC1] as { dtype: string }).dtype = "I32";
  });
  const second = await assertRejects(() => openCheckpoint(memoryFiles(ints)), WeightsError, "I32");
  assertEquals([second.code, second.tensor], ["bad_dtype", FC1]);
});

Deno.test("weights error: a header pointing past the end of the data", async () => {
  const files = await editedCheckpoint((h) => {
    const entry = h[LAST_LLM] as { data_offsets: [number, number] };
    entry.data_offsets = [entry.data_offsets[0] + 4, entry.data_offsets[1] + 4];
  });
  const error = await assertRejects(() => openCheckpoint(memoryFiles(files)), WeightsError, "past the");
  assertEquals([error.code, error.tensor], ["out_of_bounds", LAST_LLM]);
});

Deno.test("weights error: overlapping tensors", async () => {
  const files = await editedCheckpoint((h) => {
    const a = h[FC1] as { data_offsets: [number, number] };
    const b = h["vision_tower.vision_model.encoder.layers.0.mlp.fc2.weight"] as { data_offsets: [number, number] };
    b.data_offsets = [a.data_offsets[0], a.data_offsets[1]];
  });
  assertEquals(
    (await assertRejects(() => openCheckpoint(memoryFiles(files)), WeightsError, "overlap")).code,
    "bad_header",
  );
});

Deno.test("weights error: truncated files (in the length, in the header, in the data)", async () => {
  const dir = await checkpoints();
  const bytes = await Deno.readFile(`${dir}/f32/model.safetensors`);
  const tooShort = await assertRejects(() => SafetensorsFile.fromBytes(bytes.slice(0, 5)), WeightsError);
  assertEquals(tooShort.code, "truncated");
  const inHeader = await assertRejects(() => SafetensorsFile.fromBytes(bytes.slice(0, 200)), WeightsError, "header");
  assertEquals(inHeader.code, "truncated");
  const inData = await assertRejects(() => SafetensorsFile.fromBytes(bytes.slice(0, bytes.length - 10)), WeightsError);
  assertEquals(inData.code, "out_of_bounds");
  // A source that shrinks after its header was read (a file cut while open): the read is a typed error.
  const liar = { ...bytesSource(bytes, "liar"), read: bytesSource(bytes.slice(0, 100_000), "liar").read };
  const file = await SafetensorsFile.open({ ...liar, size: bytes.length });
  const late = await assertRejects(() => file.readRaw(LAST_LLM), WeightsError, LAST_LLM);
  assertEquals(late.code, "truncated");
});

Deno.test("weights error: a header that is not JSON, not an object, too long, or has bad offsets", async () => {
  const junk = joinFile({}, new Uint8Array(0));
  junk.set(new TextEncoder().encode("[]"), 8);
  assertEquals((await assertRejects(() => SafetensorsFile.fromBytes(junk), WeightsError, "object")).code, "bad_header");
  const text = new Uint8Array(16);
  new DataView(text.buffer).setBigUint64(0, 8n, true);
  text.set(new TextEncoder().encode("{notjson"), 8);
  assertEquals((await assertRejects(() => SafetensorsFile.fromBytes(text), WeightsError, "JSON")).code, "bad_header");
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 62n, true);
  assertEquals((await assertRejects(() => SafetensorsFile.fromBytes(huge), WeightsError, "length")).code, "bad_header");
  const reversed = joinFile({ x: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, new Uint8Array(4));
  const error = await assertRejects(() => SafetensorsFile.fromBytes(reversed), WeightsError, "data_offsets");
  assertEquals([error.code, error.tensor], ["bad_header", "x"]);
  const meta = joinFile({ __metadata__: { n: 1 } }, new Uint8Array(0));
  assertEquals(
    (await assertRejects(() => SafetensorsFile.fromBytes(meta), WeightsError, "__metadata__")).code,
    "bad_header",
  );
});

Deno.test("weights error: config and weights that disagree (vision hidden size) name the first tensor", async () => {
  const files = await editedCheckpoint(() => {});
  const config = JSON.parse(new TextDecoder().decode(files["config.json"]));
  config.vision_config.intermediate_size = 256;
  files["config.json"] = new TextEncoder().encode(JSON.stringify(config));
  const error = await assertRejects(() => openCheckpoint(memoryFiles(files)), WeightsError, "expected [256,64]");
  assertEquals([error.code, error.tensor], ["bad_shape", FC1]);
});

async function shardedFiles(): Promise<Record<string, Uint8Array>> {
  const dir = await checkpoints();
  const out: Record<string, Uint8Array> = {};
  for await (const entry of Deno.readDir(`${dir}/f16-sharded`)) {
    out[entry.name] = await Deno.readFile(`${dir}/f16-sharded/${entry.name}`);
  }
  return out;
}

function editIndex(files: Record<string, Uint8Array>, edit: (index: { weight_map: Record<string, string> }) => void) {
  const index = JSON.parse(new TextDecoder().decode(files["model.safetensors.index.json"]));
  edit(index);
  files["model.safetensors.index.json"] = new TextEncoder().encode(JSON.stringify(index));
}

Deno.test("sharded: the index and the shards are read lazily from memory (hosts without a file system)", async () => {
  const weights = await openCheckpoint(memoryFiles(await shardedFiles(), "mem"));
  assert(weights.store instanceof ShardedSafetensors);
  assertEquals(weights.store.info(LAST_LLM).file, "mem/model-00003-of-00003.safetensors");
  assertEquals((await weights.f32(LAST_LLM)).length, 32064 * 64);
  await weights.close();
});

Deno.test("sharded error: the index puts a tensor in a shard that lacks it", async () => {
  const files = await shardedFiles();
  editIndex(files, (index) => (index.weight_map[FC1] = "model-00003-of-00003.safetensors"));
  const error = await assertRejects(() => openCheckpoint(memoryFiles(files)), WeightsError, FC1);
  assertEquals([error.code, error.tensor], ["missing_tensor", FC1]);
});

Deno.test("sharded error: a shard file is missing, the index is malformed, or names a path", async () => {
  const missing = await shardedFiles();
  delete missing["model-00002-of-00003.safetensors"];
  const error = await assertRejects(() => openCheckpoint(memoryFiles(missing)), WeightsError, "model-00002");
  assertEquals(error.code, "no_weights");
  const malformed = await shardedFiles();
  editIndex(malformed, (index) => ((index as { weight_map: unknown }).weight_map = [1, 2]));
  assertEquals((await assertRejects(() => openCheckpoint(memoryFiles(malformed)), WeightsError)).code, "bad_index");
  const escaping = await shardedFiles();
  editIndex(escaping, (index) => (index.weight_map[FC1] = "../elsewhere.safetensors"));
  const third = await assertRejects(() => openCheckpoint(memoryFiles(escaping)), WeightsError, "elsewhere");
  assertEquals([third.code, third.tensor], ["bad_index", FC1]);
  const dropped = await shardedFiles();
  editIndex(dropped, (index) => delete index.weight_map[FC1]);
  const fourth = await assertRejects(() => openCheckpoint(memoryFiles(dropped)), WeightsError, FC1);
  assertEquals(fourth.code, "missing_tensor");
});

Deno.test("weights error: a folder with no weights, and a file path that does not exist", async () => {
  const dir = await checkpoints();
  const files = { "config.json": await Deno.readFile(`${dir}/f32/config.json`) };
  assertEquals((await assertRejects(() => openCheckpoint(memoryFiles(files)), WeightsError)).code, "no_weights");
  await assertRejects(() => openCheckpoint(`${dir}/nowhere`), ConfigError, "config.json");
  const error = await assertRejects(() => directoryFiles(dir).open("nothing.safetensors"), Error, "nothing");
  assertEquals((error as { code?: string }).code, "not_found");
});

Deno.test("ModelWeights.f32 refuses a key outside the layout", async () => {
  const weights = await openCheckpoint(`${(await checkpoints())}/bf16`);
  assert(weights instanceof ModelWeights);
  await assertRejects(() => weights.f32("vision_tower.nope"), WeightsError, "not a key");
  await weights.close();
});

Deno.test("golden file: magic, version and the named intermediates the graph is diffed against", async () => {
  const dir = await checkpoints();
  const golden = await loadGolden(`${dir}/golden.safetensors`);
  assertEquals(golden.metadata.format, "ppllava-golden");
  assertEquals(golden.metadata.version, "1");
  assertEquals(golden.shape("pgp.relevance"), [4, 6, 6]);
  assertEquals(golden.shape("pgp.pooled"), [8, 64]);
  assertEquals(golden.shape("vision.feature"), [4, 36, 64]);
  assertEquals(golden.shape("pgp.mode.image.pooled"), [16, 64]);
  const ids = await golden.ints("input.ids");
  assertEquals(golden.shape("llm.logits"), [ids.length - 1 + 8, 32064]);
  const relevance = await golden.f64("pgp.relevance");
  assert(Math.abs(relevance.reduce((a, b) => a + b, 0) - 1) < 1e-12, "the relevance map sums to 1");
  const greedy = await golden.ints("greedy.tokens");
  const beam = await golden.ints("beam.tokens");
  assertEquals(greedy.at(-1), 2, "the golden greedy run ends in EOS");
  assertEquals(beam.at(-1), 2, "the golden beam run ends in EOS");
  assert((await golden.f64("greedy.margins")).every((m) => m > 1e-2), "greedy argmaxes are decisive");
  assert((await golden.f64("beam.min_gap"))[0] > 1e-4, "beam rankings leave room for f32 rounding");
  assertEquals(golden.shape("odd.pgp.pooled"), [8, 64], "5 frames pool like 4: the last frame is dropped");
  assertEquals(golden.shape("tiles.pgp.pooled"), [12, 64], "3 image tiles × 2×2 windows");
  // A file of another format or version is refused.
  const other = await Deno.makeTempFile({ suffix: ".safetensors" });
  await Deno.copyFile(`${dir}/dtype_probe.safetensors`, other);
  await assertRejects(() => loadGolden(other), Error, "ppllava-golden");
  await Deno.remove(other);
});
