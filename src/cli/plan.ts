/**
 * `ppllava plan [DIR] [--quant q8|q4] [--quant-vision q8|q4] [--workers N|auto] [--vision-workers N|auto] [--frames T]
 *  [--context N] [--beams N] [--max-bytes B] [--synthetic-7b] [--json]`
 *
 * The memory plan of a checkpoint (src/model/memory_plan.ts) without loading it: bytes per tensor group as loaded,
 * the LLM shards and vision workers, each WASM instance's total against its 4 GiB, and the host total against the memory available.
 * Reads only config.json and the safetensors headers. Exit status 1 when it does not fit. `--synthetic-7b` plans
 * the Vicuna-7B shapes (spec §2) without any file.
 */
import { countFlag, numberFlag, parseArgs, quantFlag, UsageError } from "./args.ts";
import { DEFAULT_MODEL } from "./ask.ts";
import { formatPlan, planMemory } from "../model/memory_plan.ts";
import { openCheckpoint } from "../model/weights.ts";
import { quantization } from "../model/quant_checkpoint.ts";
import { syntheticCheckpoint, VICUNA_7B_CONFIG } from "../model/synthetic_checkpoint.ts";

const FLAGS = {
  quant: "string",
  "quant-vision": "string",
  workers: "string",
  "vision-workers": "string",
  frames: "string",
  context: "string",
  beams: "string",
  "max-bytes": "string",
  "synthetic-7b": "boolean",
  json: "boolean",
} as const;

export async function planCommand(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, { ...FLAGS });
  if (positional.length > 1) throw new UsageError("takes one checkpoint folder");
  const { quantize, quantizePolicy } = quantization(quantFlag(flags, "quant"), quantFlag(flags, "quant-vision"));
  const source = flags["synthetic-7b"] ? syntheticCheckpoint(VICUNA_7B_CONFIG) : positional[0] ?? DEFAULT_MODEL;
  const weights = await openCheckpoint(source);
  try {
    const plan = planMemory(weights.config, weights.store, {
      quantize,
      quantizePolicy,
      quantized: weights.quantized,
      workers: countFlag(flags, "workers"),
      visionWorkers: countFlag(flags, "vision-workers"),
      maxBytes: numberFlag(flags, "max-bytes"),
      request: {
        frames: numberFlag(flags, "frames"),
        contextPositions: numberFlag(flags, "context"),
        beams: numberFlag(flags, "beams"),
      },
    });
    console.log(flags.json ? JSON.stringify(plan, null, 2) : formatPlan(plan));
    return plan.fits ? 0 : 1;
  } finally {
    await weights.close();
  }
}
