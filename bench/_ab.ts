import { bandwidth, sevenB } from "./big_model.ts";
const bw2 = await bandwidth(2);
console.log(`bw2 ${(bw2.bytesPerSecond / 1e9).toFixed(1)} GB/s`);
for (const q of (Deno.args[0] ?? "q4").split(",")) {
  const r = await sevenB(q as "q4" | "q8", bw2.bytesPerSecond);
  console.log(`RESULT ${Deno.cwd()} ${q}: decode ${r.decodeTokensPerS.toFixed(2)} tok/s = ${r.percentOfRoofline.toFixed(1)}% of roofline; prefill ${r.prefillTokensPerS.toFixed(2)} tok/s; load ${r.loadS.toFixed(1)} s`);
}
