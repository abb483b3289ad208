// Decodes 6 sampled frames of one file with the media API under this runtime and prints one JSON line:
//   node tests/smoke/media.mjs dist/media/video.js FILE      bun tests/smoke/media.mjs src/media/video.ts FILE
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

const [modulePath, file] = process.argv.slice(2);
const { decodeVideo } = await import(pathToFileURL(resolve(modulePath)).href);
const out = await decodeVideo(new Uint8Array(readFileSync(file)), { numFrames: 6 });
let sum = 0;
for (let i = 0; i < out.data.length; i++) sum = (sum * 31 + out.data[i]) >>> 0;
console.log(JSON.stringify({ container: out.info.container, indices: out.indices, bytes: out.data.length, sum }));
