/** `ppllava serve [--host H] [--port N] [--max-body-mb N]`: the HTTP API on Deno. */
import { createApp } from "../server/app.ts";
import { numberFlag, parseArgs } from "./args.ts";

export async function serveCommand(args: string[]): Promise<number> {
  const { flags } = parseArgs(args, { host: "string", port: "string", "max-body-mb": "string" });
  const maxBodyMb = numberFlag(flags, "max-body-mb");
  const app = createApp({
    models: [],
    limits: maxBodyMb ? { maxBodyBytes: maxBodyMb * 1024 * 1024 } : {},
    onUnexpectedError: (error, request) => console.error(`${request.method} ${request.url}:`, error),
  });
  const server = Deno.serve({
    hostname: String(flags.host ?? "127.0.0.1"),
    port: numberFlag(flags, "port", 8787),
    onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}`),
  }, app.fetch);
  await server.finished;
  return 0;
}
