/**
 * Serve the ppllava-edge app with Deno: `deno run --allow-net --allow-read --allow-env examples/deno-serve.ts`.
 * PORT (default 8787, 0 = any free port) and HOST (default 127.0.0.1) choose the address.
 */
import { createApp } from "../src/mod.ts";

const app = createApp({ models: [{ id: "ppllava-tiny" }] });
Deno.serve({
  port: Number(Deno.env.get("PORT") ?? 8787),
  hostname: Deno.env.get("HOST") ?? "127.0.0.1",
  onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}`),
}, app.fetch);
