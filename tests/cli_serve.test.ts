/**
 * `ppllava serve` as a user starts it: with quantisation flags it loads the embedded model (LLM and vision tower in
 * q8) and answers the API on the port it prints; a bad flag is a usage error (exit 2) before anything loads.
 */
import { assert, assertEquals } from "./util/assert.ts";

const serve = (...args: string[]) =>
  new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", "serve", ...args],
    stdout: "piped",
    stderr: "piped",
  });

Deno.test("serve --quant q8 --quant-vision q8: loads, prints where it listens, and answers /v1/models", async () => {
  const child = serve("--quant", "q8", "--quant-vision", "q8", "--port", "0", "--id", "tiny-q8").spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let printed = "";
    while (!/http:\/\/\S+\/v1/.test(printed)) {
      const { value, done } = await reader.read();
      assert(!done, `serve exited before listening: ${printed}`);
      printed += value;
    }
    const base = printed.match(/(http:\/\/\S+\/v1)/)![1];
    const models = await (await fetch(`${base}/models`)).json();
    assertEquals(models.data.map((m: { id: string }) => m.id), ["tiny-q8"]);
  } finally {
    child.kill("SIGTERM");
    await reader.cancel();
    await child.stderr.cancel();
    await child.status;
  }
});

Deno.test("serve --quant q3: a usage error naming the allowed values, exit 2", async () => {
  const out = await serve("--quant", "q3").output();
  assertEquals(out.code, 2);
  assert(new TextDecoder().decode(out.stderr).includes("--quant q8|q4, got q3"));
});
