// Prompt relevance (spec §3.4 step C), two entry points over the same bindings:
//   cosine_logits: logits[n] = scale · ⟨v[n], t⟩ / (max(‖v[n]‖, 1e-12) · max(‖t‖, 1e-12))   one workgroup per token
//   softmax:       p[n] = exp(logits[n] − max) / Σ exp(logits − max)                          one workgroup in all
// WGSL has no f64, so sums are f32 with Kahan compensation per thread and a tree across threads; the WASM kernel
// (f64) is the reference this one is tested against.

struct Params {
  n: u32,
  dim: u32,
  scale: f32,
  // Rows per dispatch row: tokens beyond maxComputeWorkgroupsPerDimension spill into dispatch y.
  rows_per_y: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> visual: array<f32>;
@group(0) @binding(2) var<storage, read> text: array<f32>;
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;
@group(0) @binding(4) var<storage, read_write> probabilities: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;
const MAX_WORKGROUP_SIZE: u32 = 256u;

var<workgroup> dots: array<f32, MAX_WORKGROUP_SIZE>;
var<workgroup> row_norms: array<f32, MAX_WORKGROUP_SIZE>;
var<workgroup> text_norms: array<f32, MAX_WORKGROUP_SIZE>;

// Σ a·b with Kahan compensation; returns the compensated sum.
struct Kahan { sum: f32, carry: f32 }
fn kahan_add(k: Kahan, x: f32) -> Kahan {
  let y = x - k.carry;
  let t = k.sum + y;
  return Kahan(t, (t - k.sum) - y);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn cosine_logits(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let row = group.x + group.y * params.rows_per_y;
  if (row >= params.n) { return; }
  let base = row * params.dim;
  var dot = Kahan(0.0, 0.0);
  var vv = Kahan(0.0, 0.0);
  var tt = Kahan(0.0, 0.0);
  for (var i = lane; i < params.dim; i += WORKGROUP_SIZE) {
    let v = visual[base + i];
    let t = text[i];
    dot = kahan_add(dot, v * t);
    vv = kahan_add(vv, v * v);
    tt = kahan_add(tt, t * t);
  }
  dots[lane] = dot.sum;
  row_norms[lane] = vv.sum;
  text_norms[lane] = tt.sum;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      dots[lane] += dots[lane + stride];
      row_norms[lane] += row_norms[lane + stride];
      text_norms[lane] += text_norms[lane + stride];
    }
    workgroupBarrier();
  }
  if (lane == 0u) {
    let norms = max(sqrt(row_norms[0]), 1e-12) * max(sqrt(text_norms[0]), 1e-12);
    logits[row] = params.scale * (dots[0] / norms);
  }
}

var<workgroup> scratch: array<f32, MAX_WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax(@builtin(local_invocation_index) lane: u32) {
  var local_max = -3.4e38;
  for (var i = lane; i < params.n; i += WORKGROUP_SIZE) { local_max = max(local_max, logits[i]); }
  scratch[lane] = local_max;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) { scratch[lane] = max(scratch[lane], scratch[lane + stride]); }
    workgroupBarrier();
  }
  let global_max = scratch[0];
  workgroupBarrier();
  var total = Kahan(0.0, 0.0);
  for (var i = lane; i < params.n; i += WORKGROUP_SIZE) {
    let e = exp(logits[i] - global_max);
    probabilities[i] = e;
    total = kahan_add(total, e);
  }
  scratch[lane] = total.sum;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) { scratch[lane] += scratch[lane + stride]; }
    workgroupBarrier();
  }
  let inverse = 1.0 / scratch[0];
  for (var i = lane; i < params.n; i += WORKGROUP_SIZE) { probabilities[i] = probabilities[i] * inverse; }
}
