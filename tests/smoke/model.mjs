// Loads a checkpoint folder with the package's `loadModel` the way a user of this runtime would (`ppllava-edge`:
// Node gets dist/, Bun the TypeScript source) and decodes the prompt of a JSON file (pixels, ids, clipIds) greedily
// and with 5 beams. Prints one JSON line: { runtime, greedy, beam }.
import { loadModel } from "ppllava-edge";
import { readFile } from "node:fs/promises";

const [dir, inputs] = process.argv.slice(2);
const { pixels, ids, clipIds, maxNewTokens } = JSON.parse(await readFile(inputs, "utf8"));
const model = await loadModel(dir);
const request = { visuals: [{ pixels: Float32Array.from(pixels) }], ids, clipIds, maxNewTokens };
const greedy = await model.generateAll(request);
const beam = await model.generateAll({ ...request, numBeams: 5 });
model.dispose();
const runtime = globalThis.Bun ? `bun ${Bun.version}` : `node ${process.version}`;
console.log(JSON.stringify({ runtime, greedy: greedy.tokens, beam: beam.tokens }));
