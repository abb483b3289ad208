/**
 * The WGSL relevance kernel against the WASM one (f64 inside) under Deno's WebGPU — on CI that is Mesa's lavapipe.
 * Without an adapter the tests are skipped, unless PPLLAVA_REQUIRE_GPU=1 (CI sets it) makes that a failure.
 */
import { assert, assertEquals, assertRejects } from "./util/assert.ts";
import { loadKernels } from "../src/backend/wasm/loader.ts";
import { relevanceWasm } from "../src/backend/wasm/relevance.ts";
import { NoGpuError, probeGpu, requestGpu } from "../src/backend/webgpu/device.ts";
import { GpuKernelError, GpuRelevance } from "../src/backend/webgpu/relevance.ts";
import { gaussian, maxRelativeError } from "./util/random.ts";

const required = Deno.env.get("PPLLAVA_REQUIRE_GPU") === "1";
const probe = await probeGpu();
if (required && !probe.available) throw new Error(`PPLLAVA_REQUIRE_GPU=1 but ${probe.reasons.join("; ")}`);
const ignore = !probe.available;

// The f32 kernel's error budget on p, relative. A logit is scale·cos; an f32 cosine carries a relative error of a
// few ulp (sums, sqrt, division: ≲ 4·2⁻²⁴), so a logit is off by up to scale·|cos|·4·2⁻²⁴ ≤ 2.4e-5 at scale 100,
// and p[n] = exp(logit[n] − logit_max)/Z inherits that twice (token n and the max): ≤ 4.8e-5. Measured on lavapipe:
// 4.3e-6 at 18432×768 (|cos| ≈ 0.04) and 2.3e-5 at dim 4 (|cos| up to 1).
const GPU_TOLERANCE = 5e-5;

Deno.test({
  name: "webgpu: the adapter is described with its limits",
  ignore,
  fn() {
    if (!probe.available) return;
    assert(probe.info.description.length > 0);
    assert(probe.info.limits.maxStorageBufferBindingSize >= 128 * 1024 * 1024);
  },
});

for (const [n, dim] of [[1, 1], [7, 3], [576 * 8, 768], [301, 1027]]) {
  Deno.test({
    name: `webgpu relevance n=${n} dim=${dim} matches the WASM kernel`,
    ignore,
    async fn() {
      const { device } = await requestGpu();
      try {
        const relevance = await GpuRelevance.create(device);
        const visual = gaussian(n * dim, 10 + n);
        const text = gaussian(dim, 20 + dim);
        const expected = relevanceWasm(await loadKernels(), visual, text);
        const actual = await relevance.run(visual, text);
        const error = maxRelativeError(actual, expected, 1e-30);
        assert(error <= GPU_TOLERANCE, `max relative error ${error} > ${GPU_TOLERANCE}`);
      } finally {
        device.destroy();
      }
    },
  });
}

Deno.test({
  name: "webgpu relevance: more tokens than one dispatch dimension, and a bad shape is a typed error",
  ignore,
  async fn() {
    const { device } = await requestGpu();
    try {
      const relevance = await GpuRelevance.create(device);
      const n = device.limits.maxComputeWorkgroupsPerDimension + 5;
      const visual = gaussian(n * 4, 3);
      const text = gaussian(4, 4);
      const actual = await relevance.run(visual, text);
      const expected = relevanceWasm(await loadKernels(), visual, text);
      assert(maxRelativeError(actual, expected, 1e-30) <= GPU_TOLERANCE);
      const error = await assertRejects(() => relevance.run(new Float32Array(5), new Float32Array(2)), GpuKernelError);
      assertEquals(error.code, "bad_shape");
    } finally {
      device.destroy();
    }
  },
});

Deno.test("webgpu: NoGpuError lists every reason tried", () => {
  const error = new NoGpuError(["navigator.gpu is not defined", "the webgpu package is not usable"]);
  assert(error.message.includes("navigator.gpu is not defined; the webgpu package is not usable"));
});
