/**
 * Quantised checkpoints end to end: `convertCheckpoint` (ppllava convert) on the small random checkpoints, single
 * and sharded, writes files that say on their own which tensors are quantised and what they stand for; they load
 * and generate; and convert → load gives bit for bit the tensors (and tokens) of load-time quantisation.
 */
import { BackendError } from "../src/backend/backend.ts";
import { createWasmBackend } from "../src/backend/wasm/backend.ts";
import { main as cli } from "../src/cli/main.ts";
import { convertCheckpoint } from "../src/model/convert.ts";
import { ModelError } from "../src/model/errors.ts";
import { loadModel, type PPLLaVAModel } from "../src/model/model.ts";
import type { Llama } from "../src/model/llama.ts";
import {
  checkQuantizedTensor,
  isVisionLinear,
  parseQuantMetadata,
  QUANT_METADATA_KEY,
  quantization,
  quantizationFor,
} from "../src/model/quant_checkpoint.ts";
import { SafetensorsFile, WeightsError } from "../src/model/safetensors.ts";
import { assert, assertEquals, assertRejects } from "./util/assert.ts";
import { smallCheckpoints } from "./util/checkpoints.ts";

const root = await smallCheckpoints();
const PROMPT = {
  visuals: [],
  ids: [1, 3148, 1001, 29901, 1724, 338, 278],
  clipIds: [49406, 320, 49407],
  maxNewTokens: 6,
};

/** Each loaded tensor's precision as the model's Params recorded it. */
const precisionOf = (model: PPLLaVAModel) =>
  (model as unknown as { params: { precision: Map<string, string> } }).params.precision;

async function quantizedBytes(model: PPLLaVAModel): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const llm = (model.llm as Llama).w; // in-process (workers: 0 is the default for these small models)
  const byName = new Map<string, unknown>();
  llm.layers.forEach((l, i) => {
    const p = `language_model.model.layers.${i}`;
    byName.set(`${p}.self_attn.q_proj.weight`, l.q).set(`${p}.self_attn.k_proj.weight`, l.k);
    byName.set(`${p}.self_attn.v_proj.weight`, l.v).set(`${p}.self_attn.o_proj.weight`, l.o);
    byName.set(`${p}.mlp.gate_proj.weight`, l.gate).set(`${p}.mlp.up_proj.weight`, l.up).set(
      `${p}.mlp.down_proj.weight`,
      l.down,
    );
  });
  byName.set("language_model.model.embed_tokens.weight", llm.embedTokens).set(
    "language_model.lm_head.weight",
    llm.lmHead,
  );
  for (const [name, dtype] of precisionOf(model)) {
    if (dtype !== "q8" && dtype !== "q4") continue;
    out.set(name, await model.backend.downloadQuantized(byName.get(name) as never));
  }
  return out;
}

for (const [variant, quant] of [["f16", "q4"], ["bf16-sharded", "q8"], ["f32", "q4"]] as const) {
  Deno.test(`convert ${variant} --quant ${quant}: the file describes itself, loads, and equals load-time quantisation`, async () => {
    const src = `${root}/${variant}`;
    const dst = await Deno.makeTempDir({ prefix: "ppllava-quant-" });
    try {
      const report = await convertCheckpoint(src, `${dst}/out`, { quant });
      // 2 layers × 7 weights + lm_head (embed_tokens stays as stored).
      assertEquals(report.quantized, 15);
      for (const name of ["config.json", "generation_config.json"]) assert(await Deno.stat(`${dst}/out/${name}`));
      // The files alone say what is quantised, its dtype and logical shape.
      const declared = new Map<string, { dtype: string; shape: readonly number[] }>();
      for (const file of report.files) {
        const st = await SafetensorsFile.fromBytes(await Deno.readFile(`${dst}/out/${file}`));
        for (const [name, q] of parseQuantMetadata(st.metadata, file)) {
          declared.set(name, q);
          const codes = st.info(name), scales = st.info(`${name}.scales`);
          const g = Math.ceil(q.shape[1] / 32);
          assertEquals(
            [codes.dtype, ...codes.shape],
            q.dtype === "q8" ? ["I8", q.shape[0], g * 32] : ["U8", q.shape[0], g * 16],
          );
          assertEquals([scales.dtype, ...scales.shape], ["F32", q.shape[0], g]);
        }
      }
      assertEquals(declared.size, 15);
      assert(!declared.has("language_model.model.embed_tokens.weight"), "embed_tokens stays as stored");
      assertEquals(declared.get("language_model.lm_head.weight")?.dtype, "q8");
      for (const [name, q] of declared) assertEquals(q.dtype, quantizationFor(name, quant));
      assertEquals(declared.get("language_model.model.layers.0.mlp.down_proj.weight")?.shape, [64, 128]);

      const converted = await loadModel(`${dst}/out`);
      const atLoad = await loadModel(src, { quantize: quant });
      try {
        const [a, b] = [await quantizedBytes(converted), await quantizedBytes(atLoad)];
        assertEquals(a.size, 15);
        assertEquals([...a.keys()].sort(), [...b.keys()].sort());
        for (const [name, bytes] of a) assert(bytes.every((v, i) => v === b.get(name)![i]), `${name} differs`);
        const [ra, rb] = [await converted.generateAll(PROMPT), await atLoad.generateAll(PROMPT)];
        assertEquals(ra.tokens, rb.tokens);
        assert(ra.tokens.length > 0, "it generates");
      } finally {
        converted.dispose();
        atLoad.dispose();
      }
    } finally {
      await Deno.remove(dst, { recursive: true });
    }
  });
}

Deno.test("convert f16 --quant q4 --quant-vision q8: the vision linears too, equal to load-time quantizeVision", async () => {
  const src = `${root}/f16`;
  const dst = await Deno.makeTempDir({ prefix: "ppllava-quant-" });
  try {
    const report = await convertCheckpoint(src, `${dst}/out`, { quant: "q4", quantVision: "q8" });
    const converted = await loadModel(`${dst}/out`);
    const atLoad = await loadModel(src, { quantize: "q4", quantizeVision: "q8" });
    try {
      // Which tensors are quantised, and to what: the same in the file as at load time.
      const quantized = (m: PPLLaVAModel) => [...precisionOf(m)].filter(([, d]) => d === "q8" || d === "q4").sort();
      const [a, b] = [quantized(converted), quantized(atLoad)];
      assertEquals(a, b);
      const vision = a.filter(([name]) => isVisionLinear(name));
      assert(vision.length > 0 && vision.every(([, d]) => d === "q8"), JSON.stringify(vision));
      assertEquals(a.length - vision.length, 15, "the LLM's 15 as before");
      // The file declares every vision linear it holds (the loader reads only those below the feature layer).
      const declared = new Map<string, string>();
      for (const file of report.files) {
        const st = await SafetensorsFile.fromBytes(await Deno.readFile(`${dst}/out/${file}`));
        for (const [name, q] of parseQuantMetadata(st.metadata, file)) declared.set(name, q.dtype);
      }
      assertEquals(declared.size, report.quantized);
      for (const [name, dtype] of declared) assertEquals(dtype, isVisionLinear(name) ? "q8" : quantizationFor(name, "q4"));
      for (const [name] of vision) assert(declared.has(name), name);
      // The same bytes give the same vision features to the bit, and the same tokens.
      const pixels = new Float32Array(2 * 3 * converted.vision.config.imageSize ** 2).map((_, i) => Math.sin(i));
      const feature = async (m: PPLLaVAModel) => {
        const t = await m.features({ pixels, contentKey: `convert-${performance.now()}` });
        const values = await m.backend.download(t);
        t.dispose();
        return values;
      };
      assertEquals(await feature(converted), await feature(atLoad));
      assertEquals((await converted.generateAll(PROMPT)).tokens, (await atLoad.generateAll(PROMPT)).tokens);
    } finally {
      converted.dispose();
      atLoad.dispose();
    }
    await assertRejects(
      () => convertCheckpoint(src, `${dst}/other`, { quant: "q4", quantVision: "q5" as never }),
      WeightsError,
      "--quant-vision q5",
    );
  } finally {
    await Deno.remove(dst, { recursive: true });
  }
});

Deno.test("quantised loading: bad options, bad metadata and a backend without q8/q4 are typed errors", async () => {
  await assertRejects(() => loadModel(`${root}/f32`, { quantize: "q3" as never }), ModelError, "quantize");
  await assertRejects(() => loadModel(`${root}/f32`, { quantizeVision: "q3" as never }), ModelError, "quantizeVision");
  const dst = await Deno.makeTempDir({ prefix: "ppllava-quant-" });
  try {
    await Deno.writeTextFile(`${dst}/x`, "");
    await assertRejects(() => convertCheckpoint(`${root}/f32`, dst, { quant: "q8" }), WeightsError, "not empty");
  } finally {
    await Deno.remove(dst, { recursive: true });
  }
  const bad = (meta: unknown) => parseQuantMetadata({ [QUANT_METADATA_KEY]: JSON.stringify(meta) }, "f");
  const ok = { format: "ppllava-groupwise", version: 1, group_size: 32, scale_dtype: "F32", tensors: {} };
  assertEquals(bad(ok).size, 0);
  for (
    const meta of [{ ...ok, group_size: 64 }, { ...ok, version: 2 }, {
      ...ok,
      tensors: { a: { dtype: "q5", shape: [1, 2] } },
    }]
  ) {
    try {
      bad(meta);
      throw new Error("accepted");
    } catch (error) {
      assert(error instanceof WeightsError && error.code === "bad_header", String(error));
    }
  }
  // A backend that says it lacks q8 linear makes load-time quantisation refuse with a reason.
  const wasm = await createWasmBackend();
  const limited = new Proxy(wasm, {
    get(t, p) {
      if (p === "supports") {
        return (op: string, d?: string[]) => !(d ?? []).includes("q4") && t.supports(op as never, d as never);
      }
      const v = Reflect.get(t, p, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
  await assertRejects(
    () => loadModel(`${root}/f32`, { quantize: "q4", backend: limited }),
    BackendError,
    "cannot run q4",
  );
});

Deno.test("quantization(): the vision option adds the vision tower's linear weights and nothing else", () => {
  const names = [
    "vision_tower.vision_model.encoder.layers.3.self_attn.q_proj.weight",
    "vision_tower.vision_model.encoder.layers.0.mlp.fc2.weight",
    "vision_tower.vision_model.btadapter_S_layers.1.self_attn.out_proj.weight",
    "vision_tower.vision_model.btadapter_T_layers.0.temporal_fc.weight",
  ];
  const kept = [
    "vision_tower.vision_model.embeddings.patch_embedding.weight",
    "vision_tower.vision_model.encoder.layers.3.self_attn.q_proj.bias",
    "vision_tower.vision_model.btadapter_time_embed.weight",
    "multi_modal_projector.clip_text_model.encoder.layers.0.self_attn.q_proj.weight",
    "multi_modal_projector.linear_1.weight",
    "language_model.model.embed_tokens.weight",
  ];
  const llm = ["language_model.model.layers.0.mlp.up_proj.weight", "language_model.lm_head.weight"];
  for (const name of names) assert(isVisionLinear(name), name);
  for (const name of [...kept, ...llm]) assert(!isVisionLinear(name), name);
  // Without the vision option: exactly the LLM policy.
  const plain = quantization("q4", undefined);
  assertEquals(plain.quantize, "q4");
  for (const name of [...names, ...kept, ...llm]) assertEquals(plain.quantizePolicy!(name, "q4"), quantizationFor(name, "q4"));
  // Vision alone: the vision linears in its mode, nothing else (the LLM keeps its stored precision).
  const vision = quantization(undefined, "q8");
  assertEquals(vision.quantize, "q8");
  for (const name of names) assertEquals(vision.quantizePolicy!(name, vision.quantize!), "q8");
  for (const name of [...kept, ...llm]) assertEquals(vision.quantizePolicy!(name, vision.quantize!), null);
  // Both: each part its own mode.
  const both = quantization("q4", "q8");
  for (const name of names) assertEquals(both.quantizePolicy!(name, both.quantize!), "q8");
  for (const name of [...kept, ...llm]) assertEquals(both.quantizePolicy!(name, both.quantize!), quantizationFor(name, "q4"));
});

Deno.test("a declared quantised tensor must have codes and scales of the shapes its declaration implies", () => {
  const infos: Record<string, { dtype: string; shape: number[] }> = {
    w: { dtype: "U8", shape: [3, 32] }, // q4 [3, 40]: G = 2 groups → codes [3, 32], scales [3, 2]
    "w.scales": { dtype: "F32", shape: [3, 2] },
  };
  const store = {
    has: (n: string) => n in infos,
    info: (n: string) => ({ name: n, ...infos[n] }),
  } as never;
  checkQuantizedTensor(store, "w", { dtype: "q4", shape: [3, 40] });
  const fails = (q: { dtype: "q8" | "q4"; shape: [number, number] }, what: string) => {
    try {
      checkQuantizedTensor(store, "w", q);
    } catch (error) {
      assert(error instanceof WeightsError && error.message.includes(what), String(error));
      return;
    }
    throw new Error(`accepted ${JSON.stringify(q)}`);
  };
  fails({ dtype: "q8", shape: [3, 40] }, "I8 [3,64]");
  fails({ dtype: "q4", shape: [3, 70] }, "U8 [3,48]");
  delete infos["w.scales"];
  fails({ dtype: "q4", shape: [3, 40] }, "w.scales is missing");
});

Deno.test("ppllava convert: usage errors exit 2; a run writes a loadable folder", async () => {
  const dst = await Deno.makeTempDir({ prefix: "ppllava-quant-cli-" });
  try {
    assertEquals(await cli(["convert", `${root}/f16`, `${dst}/a`, "--quant", "q5"]), 2);
    assertEquals(await cli(["convert", `${root}/f16`]), 2);
    assertEquals(await cli(["convert", `${root}/f16`, `${dst}/a`, "--quant", "q8", "--quiet"]), 0);
    const model = await loadModel(`${dst}/a`);
    try {
      assertEquals((model.llm as Llama).w.layers[0].gate.dtype, "q8");
      assertEquals((model.llm as Llama).w.embedTokens.dtype, "f16");
    } finally {
      model.dispose();
    }
    // A second run into the same, now non-empty, folder is a typed error (exit 1), not an overwrite.
    assertEquals(await cli(["convert", `${root}/f16`, `${dst}/a`, "--quant", "q8", "--quiet"]), 1);
  } finally {
    await Deno.remove(dst, { recursive: true });
  }
});
