// Runs under Node (dist/, node:worker_threads) and Bun (TypeScript source, Web Worker), from tests/sharded_llm.test.ts:
// the embedded model with its LLM in 2 workers and its vision tower's frames split with a third, and the same model
// all in-process, must give the same greedy tokens, and disposing must let the process end. Prints one JSON line.
import { loadModel } from "ppllava-edge";

const dir = new URL("../../models/ppllava-tiny", import.meta.url).pathname;
const sharded = await loadModel(dir, { workers: 2, visionWorkers: 1 });
const single = await loadModel(dir, { workers: 0, visionWorkers: 0 });
const s = single.vision.config.imageSize;
const pixels = new Float32Array(4 * 3 * s * s).map((_, i) => Math.sin(i * 0.001) * 0.5);
const request = { visuals: [{ pixels }], question: "What colour is the object moving down?", maxNewTokens: 6 };
const got = await sharded.generateAll(request);
const want = await single.generateAll(request);
sharded.dispose();
single.dispose();
console.log(JSON.stringify({ sharded: got.tokens, single: want.tokens }));
