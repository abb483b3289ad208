/**
 * `ppllava convert SRC DST --quant q8|q4 [--quant-vision q8|q4]`: writes DST, an HF-layout checkpoint folder whose LLM
 * weights (and with --quant-vision the vision tower's linear weights) are quantised ahead of time
 * (docs/quantization.md), with SRC's config and tokenizer files copied. Streams tensor by tensor; `loadModel(DST)` then
 * loads the quantised tensors as they are.
 */
import { convertCheckpoint } from "../model/convert.ts";
import { parseArgs, quantFlag, UsageError } from "./args.ts";

export async function convertCommand(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, { quant: "string", "quant-vision": "string", quiet: "boolean" });
  if (positional.length !== 2) {
    throw new UsageError("usage: ppllava convert SRC DST --quant q8|q4 [--quant-vision q8|q4] [--quiet]");
  }
  const quant = quantFlag(flags, "quant");
  if (!quant) throw new UsageError("--quant q8|q4 is required");
  const [src, dst] = positional;
  const started = performance.now();
  const quantVision = quantFlag(flags, "quant-vision");
  const report = await convertCheckpoint(src, dst, {
    quant,
    quantVision,
    progress: flags.quiet ? undefined : (name, done, total) => console.error(`[${done}/${total}] ${name}`),
  });
  console.log(JSON.stringify({
    src,
    dst,
    quant,
    quantVision,
    files: report.files,
    quantized: report.quantized,
    copied: report.copied,
    bytesIn: report.bytesIn,
    bytesOut: report.bytesOut,
    seconds: Math.round((performance.now() - started) / 10) / 100,
  }));
  return 0;
}
