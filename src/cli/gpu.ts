/** `ppllava gpu`: which WebGPU adapter this host would use, with its limits, as JSON; or why there is none. */
import { probeGpu } from "../backend/webgpu/device.ts";

export async function gpuCommand(_args: string[]): Promise<number> {
  const probe = await probeGpu();
  console.log(JSON.stringify(probe, null, 2));
  return probe.available ? 0 : 1;
}
