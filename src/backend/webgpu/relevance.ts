/** The relevance kernel on WebGPU (shaders/relevance.wgsl), the GPU twin of src/backend/wasm/relevance.ts. */
import { readPackageText } from "../../util/files.ts";
import { BufferUsage, MapMode } from "./device.ts";

export class GpuKernelError extends Error {
  override name = "GpuKernelError";
  constructor(readonly code: "bad_shape" | "limit" | "gpu", message: string) {
    super(message);
  }
}

const WORKGROUP_SIZE = 64;

export class GpuRelevance {
  private constructor(
    private readonly device: GPUDevice,
    private readonly logitsPipeline: GPUComputePipeline,
    private readonly softmaxPipeline: GPUComputePipeline,
  ) {}

  static async create(device: GPUDevice): Promise<GpuRelevance> {
    const module = device.createShaderModule({ code: await readPackageText("shaders/relevance.wgsl") });
    const pipeline = (entryPoint: string) =>
      device.createComputePipelineAsync({
        layout: "auto",
        compute: { module, entryPoint, constants: { WORKGROUP_SIZE } },
      });
    return new GpuRelevance(device, await pipeline("cosine_logits"), await pipeline("softmax"));
  }

  /** p[n] = softmax_n(scale · cos(visual[n], text)); visual (n, dim) row-major, text (dim). */
  async run(visual: Float32Array, text: Float32Array, scale = 100): Promise<Float32Array> {
    const dim = text.length;
    if (dim === 0 || visual.length === 0 || visual.length % dim !== 0) {
      throw new GpuKernelError("bad_shape", `relevance: ${visual.length} values are not a multiple of dim ${dim}`);
    }
    const n = visual.length / dim;
    const limits = this.device.limits;
    if (visual.byteLength > limits.maxStorageBufferBindingSize) {
      throw new GpuKernelError(
        "limit",
        `relevance: ${visual.byteLength} bytes of visual tokens exceed this device's storage binding limit ` +
          `(${limits.maxStorageBufferBindingSize}); split the video`,
      );
    }
    const rowsPerY = Math.min(n, limits.maxComputeWorkgroupsPerDimension);
    const device = this.device;
    const created: GPUBuffer[] = [];
    const buffer = (size: number, usage: number, data?: Float32Array | Uint32Array) => {
      const b = device.createBuffer({ size: Math.max(16, Math.ceil(size / 16) * 16), usage });
      created.push(b);
      if (data) device.queue.writeBuffer(b, 0, data as Float32Array<ArrayBuffer>);
      return b;
    };
    try {
      const params = new ArrayBuffer(16);
      new Uint32Array(params, 0, 2).set([n, dim]);
      new Float32Array(params, 8, 1)[0] = scale;
      new Uint32Array(params, 12, 1)[0] = rowsPerY;
      const paramsBuffer = buffer(16, BufferUsage.UNIFORM | BufferUsage.COPY_DST, new Uint32Array(params));
      const visualBuffer = buffer(visual.byteLength, BufferUsage.STORAGE | BufferUsage.COPY_DST, visual);
      const textBuffer = buffer(text.byteLength, BufferUsage.STORAGE | BufferUsage.COPY_DST, text);
      const logits = buffer(n * 4, BufferUsage.STORAGE);
      const probabilities = buffer(n * 4, BufferUsage.STORAGE | BufferUsage.COPY_SRC);
      const readback = buffer(n * 4, BufferUsage.MAP_READ | BufferUsage.COPY_DST);
      const bind = (pipeline: GPUComputePipeline, buffers: [number, GPUBuffer][]) =>
        device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: buffers.map(([binding, resource]) => ({ binding, resource: { buffer: resource } })),
        });

      device.pushErrorScope("validation");
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(this.logitsPipeline);
      pass.setBindGroup(
        0,
        bind(this.logitsPipeline, [[0, paramsBuffer], [1, visualBuffer], [2, textBuffer], [3, logits]]),
      );
      pass.dispatchWorkgroups(rowsPerY, Math.ceil(n / rowsPerY));
      pass.setPipeline(this.softmaxPipeline);
      pass.setBindGroup(0, bind(this.softmaxPipeline, [[0, paramsBuffer], [3, logits], [4, probabilities]]));
      pass.dispatchWorkgroups(1);
      pass.end();
      encoder.copyBufferToBuffer(probabilities, 0, readback, 0, n * 4);
      device.queue.submit([encoder.finish()]);
      const validation = await device.popErrorScope();
      if (validation) throw new GpuKernelError("gpu", `relevance: ${validation.message}`);
      await readback.mapAsync(MapMode.READ);
      const result = new Float32Array(readback.getMappedRange().slice(0, n * 4));
      readback.unmap();
      return result;
    } finally {
      for (const b of created) b.destroy();
    }
  }
}
