/**
 * The code no test imports still type-checks and lints: bench/ (run by hand and by `npm run bench`, never by the
 * tests) and the Deno example. A type error there used to go unnoticed until someone ran the bench.
 */
import { assert } from "./util/assert.ts";

const deno = Deno.execPath();

async function run(args: string[]): Promise<{ ok: boolean; text: string }> {
  const out = await new Deno.Command(deno, { args, stdout: "piped", stderr: "piped", env: { NO_COLOR: "1" } })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { ok: out.success, text };
}

async function files(dir: string, suffix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(suffix)) names.push(`${dir}/${entry.name}`);
  }
  return names.sort();
}

Deno.test("bench/*.ts and examples/deno-serve.ts type-check", async () => {
  const targets = [...await files("bench", ".ts"), "examples/deno-serve.ts"];
  assert(targets.length > 3, `found ${targets}`);
  const { ok, text } = await run(["check", ...targets]);
  assert(ok, text);
});

Deno.test("deno lint passes on src/, tests/ and bench/", async () => {
  const { ok, text } = await run(["lint", "src/", "tests/", "bench/"]);
  assert(ok, text);
});
