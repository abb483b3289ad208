/**
 * Finds a WebGPU device on whatever runtime this is: `navigator.gpu` on Deno (wgpu) and in browsers, the `webgpu`
 * npm package (Dawn, N-API) on Bun and Node. Reports the adapter and its limits, and says plainly why there is no
 * GPU path when there is none, so callers fall back to WASM SIMD with a reason they can log.
 */

export type GpuSource = "navigator.gpu" | "webgpu package";

export interface GpuInfo {
  source: GpuSource;
  vendor: string;
  architecture: string;
  description: string;
  /** A software or fallback adapter (lavapipe, SwiftShader): exact but slow; fine for tests, not for speed. */
  isFallbackAdapter: boolean;
  features: string[];
  limits: {
    maxBufferSize: number;
    maxStorageBufferBindingSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupSizeX: number;
    maxComputeWorkgroupsPerDimension: number;
  };
}

export class NoGpuError extends Error {
  override name = "NoGpuError";
  constructor(readonly reasons: string[]) {
    super(`no WebGPU path on this host: ${reasons.join("; ")}`);
  }
}

export interface GpuHandle {
  device: GPUDevice;
  info: GpuInfo;
}

/** GPUBufferUsage / GPUMapMode values, so kernels need no globals that only some runtimes define. */
export const BufferUsage = {
  MAP_READ: 0x1,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
} as const;
export const MapMode = { READ: 0x1 } as const;

async function findGpus(reasons: string[]): Promise<{ gpu: GPU; source: GpuSource }[]> {
  const found: { gpu: GPU; source: GpuSource }[] = [];
  const navigatorGpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (navigatorGpu) found.push({ gpu: navigatorGpu, source: "navigator.gpu" });
  else reasons.push("navigator.gpu is not defined");
  if (!(globalThis as { Deno?: unknown }).Deno) {
    try {
      // A variable specifier keeps bundlers and Deno's checker from resolving this optional dependency.
      const specifier = "webgpu";
      const dawn = await import(specifier) as { create(flags: string[]): GPU };
      found.push({ gpu: dawn.create([]), source: "webgpu package" });
    } catch (error) {
      reasons.push(`the webgpu package is not usable (${String(error).split("\n")[0]})`);
    }
  }
  return found;
}

function describe(adapter: GPUAdapter, source: GpuSource): GpuInfo {
  const info = adapter.info;
  const limits = adapter.limits;
  return {
    source,
    vendor: info?.vendor ?? "",
    architecture: info?.architecture ?? "",
    description: info?.description || info?.device || "unknown adapter",
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter),
    features: [...adapter.features].sort(),
    limits: {
      maxBufferSize: limits.maxBufferSize,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
    },
  };
}

/**
 * A device with the adapter's full buffer limits (model weights need large storage buffers).
 * Throws NoGpuError with every reason tried when no adapter or device can be had.
 */
export async function requestGpu(
  options: { powerPreference?: GPUPowerPreference } = {},
): Promise<GpuHandle> {
  const reasons: string[] = [];
  for (const { gpu, source } of await findGpus(reasons)) {
    let adapter: GPUAdapter | null = null;
    try {
      adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? "high-performance" });
    } catch (error) {
      reasons.push(`${source}: requestAdapter failed (${String(error)})`);
      continue;
    }
    if (!adapter) {
      reasons.push(`${source}: no adapter (no GPU driver, or the driver lacks features WebGPU needs)`);
      continue;
    }
    try {
      const device = await adapter.requestDevice({
        requiredLimits: {
          maxBufferSize: adapter.limits.maxBufferSize,
          maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        },
      });
      return { device, info: describe(adapter, source) };
    } catch (error) {
      reasons.push(`${source}: requestDevice failed (${String(error)})`);
    }
  }
  throw new NoGpuError(reasons);
}

/** The adapter this host would use, or why there is none; creates no device. */
export async function probeGpu(): Promise<{ available: true; info: GpuInfo } | { available: false; reasons: string[] }> {
  try {
    const { device, info } = await requestGpu();
    device.destroy();
    return { available: true, info };
  } catch (error) {
    if (error instanceof NoGpuError) return { available: false, reasons: error.reasons };
    throw error;
  }
}
