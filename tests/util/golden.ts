/**
 * Reads the golden file of tests/oracles/make_checkpoint.py (a safetensors file with `__metadata__.format =
 * "ppllava-golden"` and `version = "1"`): named float64 intermediates of the PyTorch reference, and I64 ids.
 */
import { readF64, readInts, SafetensorsFile } from "../../src/model/safetensors.ts";

export const GOLDEN_FORMAT = "ppllava-golden";
export const GOLDEN_VERSION = "1";

export interface Golden {
  metadata: Readonly<Record<string, string>>;
  names(): string[];
  shape(name: string): readonly number[];
  f64(name: string): Promise<Float64Array>;
  ints(name: string): Promise<number[]>;
}

export async function loadGolden(path: string): Promise<Golden> {
  const file = await SafetensorsFile.fromBytes(await Deno.readFile(path), path);
  if (file.metadata.format !== GOLDEN_FORMAT) {
    throw new Error(`${path}: format ${file.metadata.format}, expected ${GOLDEN_FORMAT}`);
  }
  if (file.metadata.version !== GOLDEN_VERSION) {
    throw new Error(`${path}: golden version ${file.metadata.version}; this reader knows ${GOLDEN_VERSION}`);
  }
  return {
    metadata: file.metadata,
    names: () => file.names(),
    shape: (name) => file.info(name).shape,
    f64: (name) => readF64(file, name),
    ints: (name) => readInts(file, name),
  };
}
