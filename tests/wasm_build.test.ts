/** The committed wasm/ppllava_kernels.wasm and wasm/ppllava_relaxed.wasm must be exactly what a fresh build of
 * kernels-rs/ (its crates, and relaxed/*.wat) makes. */
import { assert } from "./util/assert.ts";

Deno.test("wasm/ppllava_kernels.wasm and ppllava_relaxed.wasm equal a fresh, reproducible build of kernels-rs/", async () => {
  const output = await new Deno.Command("bash", { args: ["scripts/build-wasm", "--check"], stderr: "piped" }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert(output.code === 0, `scripts/build-wasm --check failed:\n${stderr}`);
});
