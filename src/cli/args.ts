/** A small, strict argument parser for the CLI verbs: unknown flags and missing values are errors, not ignored. */

export class UsageError extends Error {
  override name = "UsageError";
}

export interface FlagSpec {
  /** "string" flags take a value, "boolean" flags do not. */
  [flag: string]: "string" | "boolean";
}

export interface ParsedArgs {
  flags: Record<string, string | boolean>;
  positional: string[];
}

export function parseArgs(args: string[], spec: FlagSpec): ParsedArgs {
  const flags: Record<string, string | boolean> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("--") || arg === "--") {
      positional.push(...(arg === "--" ? args.slice(i + 1) : [arg]));
      if (arg === "--") break;
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    const kind = spec[name];
    if (!kind) {
      throw new UsageError(`unknown option --${name} (known: ${Object.keys(spec).map((f) => `--${f}`).join(", ")})`);
    }
    if (kind === "boolean") {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
    } else {
      const value = inline ?? args[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      flags[name] = value;
    }
  }
  return { flags, positional };
}

export function numberFlag(flags: ParsedArgs["flags"], name: string, fallback?: number): number | undefined {
  const value = flags[name];
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (typeof value !== "string" || value.trim() === "" || !Number.isFinite(parsed)) {
    throw new UsageError(`--${name} must be a number, got ${String(value)}`);
  }
  return parsed;
}

/** A worker-count flag: "auto" (also when absent) or an integer ≥ 0. */
export function countFlag(flags: ParsedArgs["flags"], name: string): number | "auto" {
  if (flags[name] === undefined || flags[name] === "auto") return "auto";
  const value = numberFlag(flags, name)!;
  if (!(Number.isInteger(value) && value >= 0)) {
    throw new UsageError(`--${name} must be auto or an integer ≥ 0, got ${value}`);
  }
  return value;
}

/** A quantisation flag (--quant, --quant-vision): q8, q4 or absent. */
export function quantFlag(flags: ParsedArgs["flags"], name: string): "q8" | "q4" | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  if (value !== "q8" && value !== "q4") throw new UsageError(`--${name} q8|q4, got ${String(value)}`);
  return value;
}
