/**
 * Serve the ppllava-edge app with Bun: `bun examples/bun-serve.ts` (the package resolves to its TypeScript source).
 * PORT (default 8787, 0 = any free port) and HOST (default 127.0.0.1) choose the address.
 */
import { createApp } from "ppllava-edge";

const app = createApp({ models: [{ id: "ppllava-tiny" }] });
const server = Bun.serve({
  port: Number(process.env.PORT ?? 8787),
  hostname: process.env.HOST ?? "127.0.0.1",
  fetch: app.fetch,
});
console.log(`listening on http://${server.hostname}:${server.port}`);
