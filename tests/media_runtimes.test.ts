/** The media API gives the same frames under Node (built dist/) and Bun (TypeScript source) as under Deno. */
import { assertEquals } from "./util/assert.ts";
import { mediaDir, run } from "./util/media_fixtures.ts";
import { decodeVideo } from "../src/media/video.ts";

const bun = new URL("../node_modules/.bin/bun", import.meta.url).pathname;

for (
  const [runtime, command, module] of [["node", "node", "dist/media/video.js"], ["bun", bun, "src/media/video.ts"]]
) {
  Deno.test(`media under ${runtime}: 6 sampled frames of an MP4 equal Deno's`, async () => {
    const file = `${await mediaDir()}/mjpeg.mp4`;
    const line = new TextDecoder().decode(await run(command, ["tests/smoke/media.mjs", module, file])).trim();
    const theirs = JSON.parse(line.split("\n").at(-1)!);
    const ours = await decodeVideo(await Deno.readFile(file), { numFrames: 6 });
    let sum = 0;
    for (let i = 0; i < ours.data.length; i++) sum = (sum * 31 + ours.data[i]) >>> 0;
    assertEquals(theirs, { container: "mp4", indices: ours.indices, bytes: ours.data.length, sum });
  });
}
