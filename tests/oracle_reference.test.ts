/**
 * The float64 PyTorch reference (tests/oracles/ppllava_reference.py) checked against independent formulations:
 * torch's MultiheadAttention, RoPE as a complex rotation, avg_pool3d for uniform window weights, the spec's
 * get_size numbers, KV-cache decode = full forward, 1-beam search = greedy, the single-frame temporal layer.
 */
import { assert } from "./util/assert.ts";

Deno.test("PyTorch reference self-checks (check_reference.py) pass", async () => {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: ["tests/oracles/check_reference.py"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert(out.success, text);
  assert(text.includes("all reference self-checks passed"), text);
});
