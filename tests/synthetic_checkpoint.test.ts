/**
 * The synthetic checkpoint (src/model/synthetic_checkpoint.ts): its bytes are a function of the position (a range
 * read in odd pieces equals the whole read), its values have the intended spread, and a model built on it loads and
 * generates through the ordinary path, sharded too.
 */
import { assert, assertEquals } from "./util/assert.ts";
import { syntheticCheckpoint, VICUNA_7B_CONFIG } from "../src/model/synthetic_checkpoint.ts";
import { openCheckpoint } from "../src/model/weights.ts";
import { loadModel } from "../src/model/model.ts";
import { SafetensorsFile } from "../src/model/safetensors.ts";

Deno.test("synthetic checkpoint: range reads are consistent, values spread as documented, the header is the 7B layout", async () => {
  const files = syntheticCheckpoint(VICUNA_7B_CONFIG, { seed: 3 });
  const weights = await openCheckpoint(files); // validates every tensor's shape and dtype against config.json
  const name = "language_model.model.layers.5.mlp.down_proj.weight";
  const info = weights.store.info(name);
  assertEquals(info.shape, [4096, 11008]);
  const source = await files.open("model.safetensors");
  assert(source.size > 14e9 && source.size < 15e9, `about 14.5 GB of f16, got ${source.size}`);
  const whole = await source.read(info.begin, 100_003);
  const pieces = [
    await source.read(info.begin, 7),
    await source.read(info.begin + 7, 8190),
    await source.read(info.begin + 8197, 91_806),
  ];
  const joined = new Uint8Array(100_003);
  let at = 0;
  for (const p of pieces) {
    joined.set(p, at);
    at += p.length;
  }
  assertEquals(joined, whole);
  const values = await weights.f32("language_model.model.layers.0.self_attn.q_proj.weight");
  let sum = 0;
  let squares = 0;
  for (const v of values) {
    sum += v;
    squares += v * v;
  }
  const mean = sum / values.length;
  const std = Math.sqrt(squares / values.length - mean * mean);
  assert(Math.abs(mean) < 1e-3 && Math.abs(std - 0.02) < 1e-3, `mean ${mean}, std ${std}`);
  const gains = await weights.f32("language_model.model.layers.0.input_layernorm.weight");
  assert(gains.every((g) => Math.abs(g - 1) < 0.04), "norm gains near 1");
  // Another seed gives other bytes; the same seed the same.
  const again = await (await syntheticCheckpoint(VICUNA_7B_CONFIG, { seed: 3 }).open("model.safetensors")).read(
    info.begin,
    64,
  );
  const other = await (await syntheticCheckpoint(VICUNA_7B_CONFIG, { seed: 4 }).open("model.safetensors")).read(
    info.begin,
    64,
  );
  assertEquals(again, whole.subarray(0, 64));
  assert(other.some((b, i) => b !== again[i]));
  assert((await SafetensorsFile.open(source)).metadata.synthetic === "ppllava-edge");
  await weights.close();
});

Deno.test("synthetic checkpoint: a small config loads and generates, in-process and in 2 workers alike", async () => {
  const tiny = JSON.parse(await Deno.readTextFile("models/ppllava-tiny/config.json"));
  const files = syntheticCheckpoint(tiny, { seed: 1 });
  const single = await loadModel(files, { workers: 0 });
  const sharded = await loadModel(files, { workers: 2, quantize: undefined });
  try {
    const request = { visuals: [], ids: [1, 3148, 1001, 29901, 1724], clipIds: [49406, 320, 49407], maxNewTokens: 5 };
    const a = await single.generateAll(request);
    const b = await sharded.generateAll(request);
    assertEquals(a.tokens.length, 5);
    assertEquals(b.tokens, a.tokens);
  } finally {
    single.dispose();
    sharded.dispose();
  }
});
