/**
 * The same package on the three runtimes: the smoke script under Node (built dist/) and Bun (TypeScript source),
 * and each runtime's example server answering /healthz, /v1/models and a bad request over a real socket.
 * Node needs `npm run build` first; the test command (scripts/test) does it.
 */
import { assert, assertEquals } from "./util/assert.ts";

const bin = (name: string) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;

async function run(command: string, args: string[]) {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

for (const [runtime, command] of [["node", "node"], ["bun", bin("bun")]]) {
  Deno.test(`the package works under ${runtime}`, async () => {
    const { code, stdout, stderr } = await run(command, ["tests/smoke/package.mjs"]);
    const line = stdout.trim().split("\n").at(-1) ?? "";
    assert(line.startsWith("{"), `no result line from ${runtime}: ${stdout}\n${stderr}`);
    const result = JSON.parse(line);
    assertEquals(result.errors, [], `${runtime} smoke failures`);
    assertEquals([code, result.passed, result.failed], [0, 3, 0]);
  });
}

const servers: [string, string, string[]][] = [
  // The deno binary itself: node_modules/.bin/deno is a Node wrapper that does not pass SIGTERM on, so killing it
  // left the example server running after the tests.
  ["deno", Deno.execPath(), ["run", "--allow-net", "--allow-read", "--allow-env", "examples/deno-serve.ts"]],
  ["bun", bin("bun"), ["examples/bun-serve.ts"]],
  ["node", "node", ["examples/node-serve.mjs"]],
];

for (const [runtime, command, args] of servers) {
  Deno.test(`${runtime} serves /healthz, /v1/models and OpenAI errors from the same app`, async () => {
    const child = new Deno.Command(command, {
      args,
      env: { PORT: "0", HOST: "127.0.0.1" },
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let url: string | undefined;
    try {
      let seen = "";
      const deadline = Date.now() + 20_000;
      while (!url && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
        url = seen.match(/listening on (http:\/\/[^\s]+)/)?.[1];
      }
      assert(url, `${runtime} did not report its address: ${seen}`);
      const health = await fetch(`${url}/healthz`);
      assertEquals([health.status, (await health.json()).status], [200, "ok"]);
      const models = await (await fetch(`${url}/v1/models`)).json();
      assertEquals(models.data.map((m: { id: string }) => m.id), ["ppllava-tiny"]);
      const bad = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{oops",
      });
      assertEquals([bad.status, (await bad.json()).error.code], [400, "invalid_json"]);
    } finally {
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.status;
    }
    // Stopping the process stops the server: nothing keeps listening after the test.
    const after = await fetch(`${url}/healthz`).then((r) => r.body?.cancel().then(() => r.status), () => "refused");
    assertEquals(after, "refused", `${runtime}: the server still answers after SIGTERM`);
  });
}
