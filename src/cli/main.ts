/**
 * `ppllava <verb>`: ask | convert | decode | eval | plan | serve | gpu. Run with Deno: `deno run -A src/cli/main.ts <verb> …`
 * (`npm run ppllava -- <verb> …`). Errors print one line and exit with a non-zero status; no stack traces for
 * mistakes a user can fix.
 */
import { UsageError } from "./args.ts";
import { askCommand } from "./ask.ts";
import { convertCommand } from "./convert.ts";
import { planCommand } from "./plan.ts";
import { decodeCommand } from "./decode.ts";
import { evalCommand } from "./eval.ts";
import { gpuCommand } from "./gpu.ts";
import { serveCommand } from "./serve.ts";

type Command = (args: string[]) => Promise<number>;

const commands: Record<string, { run: Command; summary: string }> = {
  ask: { run: askCommand, summary: "answer a question about a video (default: the embedded model and its sample)" },
  decode: {
    run: decodeCommand,
    summary: "decode sampled (or all) frames of a video to raw RGB/YUV, with a JSON summary",
  },
  convert: { run: convertCommand, summary: "quantise a checkpoint folder ahead of time (--quant q8|q4 [--quant-vision q8|q4])" },
  plan: {
    run: planCommand,
    summary: "the memory plan of a checkpoint (bytes per part, shards, limits) without loading it",
  },
  eval: { run: evalCommand, summary: "accuracy on a held-out set of train/data.py, with the PGP-vs-average ablation" },
  serve: { run: serveCommand, summary: "serve the OpenAI-compatible HTTP API" },
  gpu: { run: gpuCommand, summary: "report the WebGPU adapter and limits, or why there is none" },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    "usage: ppllava <command> [options]",
    "",
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
  ].join("\n");
}

export async function main(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (!verb || verb === "--help" || verb === "-h") {
    console.log(usage());
    return verb ? 0 : 2;
  }
  const command = commands[verb];
  if (!command) {
    console.error(`ppllava: unknown command '${verb}'\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`ppllava ${verb}: ${error.message}`);
      return 2;
    }
    const named = error as { name?: string; code?: string; message?: string };
    if (named?.code && named.message) {
      // Typed errors (KernelError, MediaError, …) are explained by their message.
      console.error(`ppllava ${verb}: ${named.name ?? "error"} (${named.code}): ${named.message}`);
      return 1;
    }
    throw error;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
