/**
 * Times this project and its peers in one run. The first case is ours, the rest are peers; each runs `warmup`
 * times untimed, then `reps` timed rounds run every case once in turn (interleaved, so a change of load on a shared
 * machine hits every case alike instead of whichever ran then). Prints median and spread per case, the ratio
 * peer/ours of medians (> 1 means we are faster), throughput when `work` is given, and writes
 * bench/results/<name>.json so numbers can be compared over time. A case may return `{ seconds }` to report a time it
 * measured itself (an external process timing its own loop, without its start-up).
 */

export interface BenchCase {
  label: string;
  run: () => unknown | Promise<unknown>;
}

export interface BenchSpec {
  name: string;
  cases: BenchCase[];
  reps?: number;
  warmup?: number;
  /** Work done by one run, for throughput: e.g. { amount: 2 * n ** 3, unit: "FLOP" }. */
  work?: { amount: number; unit: string };
  /** Free-form facts recorded with the result (shapes, thread counts, versions). */
  notes?: Record<string, unknown>;
}

export interface CaseResult {
  label: string;
  medianS: number;
  minS: number;
  maxS: number;
  samplesS: number[];
  throughput?: number;
  /** Median of this case over the median of ours (the first case): > 1 means ours is faster. */
  ratioToOurs: number;
}

export interface BenchResult {
  name: string;
  date: string;
  runtime: string;
  /** The CPU the run had: results move between hosts (bandwidth, SMT, AVX-VNNI for relaxed q8), so each file says. */
  host: HostInfo;
  unit?: string;
  notes?: Record<string, unknown>;
  cases: CaseResult[];
}

function isTimed(value: unknown): value is { seconds: number } {
  return typeof value === "object" && value !== null && typeof (value as { seconds?: unknown }).seconds === "number";
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function timeOnce(run: BenchCase["run"]): Promise<number> {
  const start = performance.now();
  const value = await run();
  const elapsed = (performance.now() - start) / 1000;
  return isTimed(value) ? value.seconds : elapsed;
}

function runtimeName(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${(globalThis as unknown as { process: { version: string } }).process.version}`;
}

export interface HostInfo {
  cpu: string;
  /** The CPU features that decide which kernels run and how fast (docs/quantization.md, "Products"). */
  features: string[];
  cpus: number;
}

let host: Promise<HostInfo> | null = null;

/** CPU model, family/model numbers and the SIMD features that matter here, from /proc/cpuinfo where there is one. */
export function hostInfo(): Promise<HostInfo> {
  host ??= (async () => {
    const cpus = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 0;
    try {
      const fs = await import("node:fs/promises");
      const text = await fs.readFile("/proc/cpuinfo", "utf8");
      const field = (name: string) => text.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, "m"))?.[1].trim() ?? "?";
      const flags = new Set(field("flags").split(/\s+/));
      const wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx_vnni_int8"];
      return {
        cpu: `${field("model name")} (family ${field("cpu family")}, model ${field("model")})`,
        features: wanted.filter((f) => flags.has(f)),
        cpus,
      };
    } catch {
      return { cpu: "unknown (no /proc/cpuinfo)", features: [], cpus };
    }
  })();
  return host;
}

function formatSeconds(s: number): string {
  if (s >= 1) return `${s.toFixed(3)} s`;
  if (s >= 1e-3) return `${(s * 1e3).toFixed(3)} ms`;
  return `${(s * 1e6).toFixed(1)} µs`;
}

function formatRate(rate: number, unit: string): string {
  const prefixes = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]] as const;
  for (const [scale, prefix] of prefixes) if (rate >= scale) return `${(rate / scale).toFixed(2)} ${prefix}${unit}/s`;
  return `${rate.toFixed(2)} ${unit}/s`;
}

export async function runBench(spec: BenchSpec): Promise<BenchResult> {
  if (spec.cases.length === 0) throw new Error(`bench ${spec.name}: no cases`);
  const reps = spec.reps ?? 7;
  const warmup = spec.warmup ?? 1;
  const measured = spec.cases.map(({ label }) => ({ label, samples: [] as number[] }));
  for (const benchCase of spec.cases) for (let w = 0; w < warmup; w++) await benchCase.run();
  for (let r = 0; r < reps; r++) {
    for (const [i, benchCase] of spec.cases.entries()) measured[i].samples.push(await timeOnce(benchCase.run));
  }
  const oursMedian = median(measured[0].samples);
  const cases: CaseResult[] = measured.map(({ label, samples }) => {
    const medianS = median(samples);
    return {
      label,
      medianS,
      minS: Math.min(...samples),
      maxS: Math.max(...samples),
      samplesS: samples,
      throughput: spec.work ? spec.work.amount / medianS : undefined,
      ratioToOurs: medianS / oursMedian,
    };
  });
  const result: BenchResult = {
    name: spec.name,
    date: new Date().toISOString(),
    runtime: runtimeName(),
    host: await hostInfo(),
    unit: spec.work?.unit,
    notes: spec.notes,
    cases,
  };
  printResult(result);
  await writeResult(result);
  return result;
}

export function printResult(result: BenchResult): void {
  console.log(`\n## ${result.name} (${result.runtime})`);
  const width = Math.max(...result.cases.map((c) => c.label.length));
  for (const c of result.cases) {
    const rate = c.throughput !== undefined && result.unit ? `  ${formatRate(c.throughput, result.unit)}` : "";
    const ratio = c === result.cases[0] ? "  (ours)" : `  ratio ${c.ratioToOurs.toFixed(2)}× ours`;
    console.log(
      `${c.label.padEnd(width)}  median ${formatSeconds(c.medianS)}  [${formatSeconds(c.minS)} – ${
        formatSeconds(c.maxS)
      }]${rate}${ratio}`,
    );
  }
}

async function writeResult(result: BenchResult): Promise<void> {
  const fs = await import("node:fs/promises");
  const dir = new URL("./results/", import.meta.url);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(new URL(`${result.name}.json`, dir), JSON.stringify(result, null, 2) + "\n");
}
