/** `ppllava decode`: the raw frames it writes and the JSON it prints, checked against ffmpeg and the spec formula. */
import { assert, assertEquals, assertRejects } from "./util/assert.ts";
import { ffmpegDecode, ffprobe, mediaDir, run } from "./util/media_fixtures.ts";
import { UsageError } from "../src/cli/args.ts";
import { decodeCommand } from "../src/cli/decode.ts";

async function cli(args: string[]): Promise<Record<string, unknown>> {
  const script = `import { decodeCommand } from "./src/cli/decode.ts"; Deno.exit(await decodeCommand(${
    JSON.stringify(args)
  }));`;
  const out = await run(Deno.execPath(), ["eval", script]);
  return JSON.parse(new TextDecoder().decode(out));
}

Deno.test("ppllava decode --all: every frame of an APNG, exactly ffmpeg's, and the JSON matches ffprobe", async () => {
  const dir = await mediaDir();
  const path = `${dir}/anim.apng`;
  const out = `${dir}/cli-all.rgb`;
  const json = await cli([path, "--all", "--out", out]);
  const probe = await ffprobe(path);
  assertEquals(json.container, "apng");
  assertEquals([json.width, json.height, json.frameCount], [probe.width, probe.height, probe.ptsS.length]);
  assertEquals(json.indices, probe.ptsS.map((_, i) => i));
  (json.ptsS as number[]).forEach((t, i) => assert(Math.abs(t - probe.ptsS[i]) <= 2e-6));
  const written = await Deno.readFile(out);
  const theirs = await ffmpegDecode(path, "rgb24");
  assertEquals(written.length, theirs.length);
  assert(written.every((v, i) => v === theirs[i]), "frames differ from ffmpeg's");
});

Deno.test("ppllava decode --num-frames 5 --pix-fmt yuv420p: spec indices, frames equal ffmpeg's planes", async () => {
  const dir = await mediaDir();
  const path = `${dir}/yuv420.y4m`;
  const out = `${dir}/cli-5.yuv`;
  const json = await cli([path, "--num-frames", "5", "--pix-fmt", "yuv420p", "--out", out]);
  const indices = json.indices as number[];
  // 10 frames, N = 5: seg = 9/5 = 1.8; int(0.9 + round(1.8·i)) for i = 0..4 → int(0.9 + [0, 2, 4, 5, 7]).
  assertEquals(indices, [0, 2, 4, 5, 7]);
  const all = await ffmpegDecode(path, "yuv420p");
  const size = 64 * 48 * 3 / 2;
  const written = await Deno.readFile(out);
  assertEquals(written.length, size * 5);
  indices.forEach((index, k) => {
    const expected = all.subarray(index * size, (index + 1) * size);
    assert(written.subarray(k * size, (k + 1) * size).every((v, i) => v === expected[i]), `frame ${index}`);
  });
});

Deno.test("ppllava decode: mistakes are usage errors", async () => {
  await assertRejects(() => decodeCommand(["x.mp4"]), UsageError, "--out");
  await assertRejects(() => decodeCommand(["x.mp4", "--out", "y", "--num-frames", "4", "--fps", "2"]), UsageError);
  await assertRejects(() => decodeCommand(["x.mp4", "--out", "y", "--pix-fmt", "nv12"]), UsageError);
  await assertRejects(() => decodeCommand(["x.mp4", "--out", "y", "--num-frames", "2.5"]), UsageError);
  await assertRejects(() => decodeCommand(["x.mp4", "--out", "y", "--bogus"]), UsageError);
});
