/**
 * LLaVA-NeXT anyres packing of an image's tiles (spec §4, src/model/anyres.ts). The PyTorch reference has no anyres
 * path, so the oracles here are closed forms worked by hand from upstream's formulas: the pinpoint choice, the
 * unpad box, and the exact position of every token (tile, row, col encoded in its values), plus the spec's own
 * count (a square image on a 2×2 grid → 64 + 16·17 = 336 tokens).
 */
import { assert, assertEquals, assertRejects } from "./util/assert.ts";
import { createWasmBackend } from "../src/backend/wasm/backend.ts";
import { gridShape, packImageTokens, selectBestResolution, unpadBox } from "../src/model/anyres.ts";
import { ModelError } from "../src/model/errors.ts";
import { loadModel } from "../src/model/model.ts";

const PINPOINTS: [number, number][] = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]];

Deno.test("select_best_resolution: most effective pixels, then least waste ([h, w] throughout)", () => {
  // 336²: every 1× fit keeps 112896 pixels; [336, 672] wastes the least (first of the tie with [672, 336]).
  assertEquals(selectBestResolution([336, 336], PINPOINTS), [336, 672]);
  // 1000²: [672, 672] keeps 672² = 451584, more than any other.
  assertEquals(selectBestResolution([1000, 1000], PINPOINTS), [672, 672]);
  // 300×1000 (wide): [336, 1008] scales by 1.008 and keeps all 300000 pixels.
  assertEquals(selectBestResolution([300, 1000], PINPOINTS), [336, 1008]);
  assertEquals(gridShape([300, 1000], PINPOINTS, 336), [1, 3]);
  assertEquals(gridShape([1000, 1000], PINPOINTS, 336), [2, 2]);
});

Deno.test("unpad_image: the axis that does not fit loses (current − int(round(orig·scale, 7))) // 2 per side", () => {
  // 8×16 map, 100×300 image: 300/100 > 16/8, new height int(100·16/300) = 5, pad (8 − 5) // 2 = 1 → rows 1..7.
  assertEquals(unpadBox(8, 16, [100, 300]), [1, 7, 0, 16]);
  // 16×8 map, 300×100 image: new width 5, pad 1 → cols 1..7.
  assertEquals(unpadBox(16, 8, [300, 100]), [0, 16, 1, 7]);
  // Same aspect ratio: nothing removed.
  assertEquals(unpadBox(16, 16, [500, 500]), [0, 16, 0, 16]);
  // 49·(16/147) = 5.333… → 5 kept rows of 16, pad 5 → rows 5..11 (6 rows: upstream slices pad..current−pad).
  assertEquals(unpadBox(16, 16, [49, 147]), [5, 11, 0, 16]);
});

/** Pooled tokens whose 2 channels are (tile, row·8 + col): positions can be read back from the values. */
function encoded(tiles: number): Float32Array {
  const out = new Float32Array(tiles * 64 * 2);
  for (let t = 0; t < tiles; t++) {
    for (let i = 0; i < 64; i++) out.set([t, i], (t * 64 + i) * 2);
  }
  return out;
}

Deno.test("packing: base first, grid map row-major with a newline after every row, unpadded", async () => {
  const b = await createWasmBackend();
  const newline = b.upload(new Float32Array([-1, -1]), [2]);
  const cases: Array<[string, [number, number], [number, number], number]> = [
    ["square image, 2×2 grid (the spec's 336)", [2, 2], [500, 500], 64 + 16 * 17],
    ["wide image, 1×2 grid: rows 1..7 of 8", [1, 2], [100, 300], 64 + 6 * 17],
  ];
  for (const [label, grid, size, count] of cases) {
    const tiles = 1 + grid[0] * grid[1];
    const pooled = b.upload(encoded(tiles), [tiles * 64, 2]);
    const out = b.scope(() => packImageTokens(b, pooled, tiles, grid, size, newline));
    const values = await b.download(out);
    assertEquals(out.shape, [count, 2], label);
    for (let i = 0; i < 64; i++) assertEquals([values[2 * i], values[2 * i + 1]], [0, i], `${label}: base ${i}`);
    const [top, bottom, left, right] = unpadBox(grid[0] * 8, grid[1] * 8, size);
    const width = right - left + 1;
    for (let r = top; r < bottom; r++) {
      for (let k = 0; k < width; k++) {
        const at = 64 + (r - top) * width + k;
        const got = [values[2 * at], values[2 * at + 1]];
        if (k === width - 1) {
          assertEquals(got, [-1, -1], `${label}: newline after row ${r}`);
          continue;
        }
        const c = left + k;
        const tile = 1 + Math.floor(r / 8) * grid[1] + Math.floor(c / 8);
        assertEquals(got, [tile, (r % 8) * 8 + (c % 8)], `${label}: map (${r}, ${c})`);
      }
    }
    out.dispose();
    pooled.dispose();
  }
  // A lone tile: its 64 tokens and one newline (65, spec §4 step 5).
  const one = b.upload(encoded(1), [64, 2]);
  const lone = b.scope(() => packImageTokens(b, one, 1, [1, 2], [336, 336], newline));
  assertEquals(lone.shape, [65, 2]);
  assertEquals(Array.from((await b.download(lone)).slice(128)), [-1, -1]);
  lone.dispose();
  one.dispose();
  newline.dispose();
});

Deno.test("model: an 'image' input is tiled, pooled (1,3,3), packed and merged; tile counts are checked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ppllava-anyres-" });
  try {
    const made = await new Deno.Command("/usr/bin/python3", {
      args: ["tests/oracles/make_checkpoint.py", dir, "--no-golden"],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert(made.success, new TextDecoder().decode(made.stderr));
    const m = await loadModel(`${dir}/f32`);
    try {
      const tile = 3 * 84 * 84;
      const pixels = new Float32Array(3 * tile).map((_, i) => Math.sin(i * 0.37));
      const ids = [1, 3148, 29901, 29871, 32000, 13, 5816, 29973, 319, 1799, 9047, 13566, 29901, 29871];
      const clipIds = [49406, 768, 533, 49407];
      const seen = new Map<string, readonly number[]>();
      const newlines: Float32Array[] = [];
      const visual = { pixels, kind: "image" as const, imageSize: [100, 300] as const, grid: [1, 2] as const };
      await m.generateAll({
        visuals: [visual],
        ids,
        clipIds,
        maxNewTokens: 1,
        trace: (name, t) => {
          seen.set(name, t.shape);
          if (name === "llm.embeds") void m.backend.download(t).then((v) => newlines.push(v));
        },
      });
      await Promise.resolve();
      // The small checkpoint's tiles are 6×6 patches, so (1,3,3) pooling leaves 2×2 tokens per tile (64 at 336²).
      assertEquals(seen.get("pgp.pooled"), [3 * 4, 64], "3 tiles × 4 tokens before packing");
      // 2×4 map; 300/100 > 4/2, new height int(100·4/300) = 1, pad (2 − 1) // 2 = 0: both rows stay.
      assertEquals(seen.get("llm.embeds"), [ids.length - 1 + 4 + 2 * 5, 64], "text + base + 2 rows × (4 + 1)");
      // The newline rows of the merge hold image_newline exactly.
      const newline = await m.backend.download(m.imageNewline!);
      const row = 4 + 4 + 4; // after "<s>USER: ", the base tile and the first map row
      assertEquals(Array.from(newlines[0].slice(row * 64, row * 64 + 64)), Array.from(newline));
      const wrong = await assertRejects(
        () => m.generateAll({ visuals: [{ ...visual, grid: [2, 2] }], ids, clipIds, maxNewTokens: 1 }),
        ModelError,
        "1 + 4 tiles",
      );
      assertEquals(wrong.code, "bad_input");
    } finally {
      m.dispose();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
