/**
 * Serve the ppllava-edge app with Node 20+: `npm run build && node examples/node-serve.mjs` (Node imports the
 * built `dist/`). PORT (default 8787, 0 = any free port) and HOST (default 127.0.0.1) choose the address.
 */
import { serve } from "@hono/node-server";
import { createApp } from "ppllava-edge";

const app = createApp({ models: [{ id: "ppllava-tiny" }] });
serve(
  { fetch: app.fetch, port: Number(process.env.PORT ?? 8787), hostname: process.env.HOST ?? "127.0.0.1" },
  (info) => console.log(`listening on http://${info.address}:${info.port}`),
);
