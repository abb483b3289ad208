/**
 * `ppllava convert SRC DST --quant q8|q4`: writes DST, an HF-layout checkpoint folder whose LLM weights are
 * quantised ahead of time (docs/quantization.md), with SRC's config and tokenizer files copied. Streams tensor by
 * tensor; `loadModel(DST)` then loads the quantised tensors as they are.
 */
import { convertCheckpoint } from "../model/convert.ts";
import { parseArgs, UsageError } from "./args.ts";

export async function convertCommand(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, { quant: "string", quiet: "boolean" });
  if (positional.length !== 2) throw new UsageError("usage: ppllava convert SRC DST --quant q8|q4 [--quiet]");
  const quant = flags.quant;
  if (quant !== "q8" && quant !== "q4") {
    throw new UsageError(`--quant must be q8 or q4, got ${String(quant ?? "nothing")}`);
  }
  const [src, dst] = positional;
  const started = performance.now();
  const report = await convertCheckpoint(src, dst, {
    quant,
    progress: flags.quiet ? undefined : (name, done, total) => console.error(`[${done}/${total}] ${name}`),
  });
  console.log(JSON.stringify({
    src,
    dst,
    quant,
    files: report.files,
    quantized: report.quantized,
    copied: report.copied,
    bytesIn: report.bytesIn,
    bytesOut: report.bytesOut,
    seconds: Math.round((performance.now() - started) / 10) / 100,
  }));
  return 0;
}
