/**
 * One-node ONNX models for timing onnxruntime on the quantised-matmul shapes (protobuf written by hand; field numbers
 * from onnx.proto). Unlike onnx_model.ts the weights are kept as byte chunks (7B shapes are hundreds of MB):
 * - `f32MatMul`: C = MatMul(A, B), B (K, N) f32 initializer;
 * - `int8MatMul`: com.microsoft DynamicQuantizeMatMul(A, B int8 (K, N), b_scale (N), b_zero_point (N)): A is
 *   quantised per tensor at run time, B per output column (ORT's int8 path for linear layers);
 * - `int4MatMul`: com.microsoft MatMulNBits(A, B uint8 (N, K/32, 16), scales (N·K/32)), bits 4, block 32: group-wise
 *   int4 like our q4 (ORT's zero point defaults to 8, i.e. symmetric codes stored offset by 8);
 * - `int8BlockMatMul`: the same op with bits 8 (B (N, K/32, 32), zero point 128): exactly our q8 format, so the
 *   like-for-like int8 peer (DynamicQuantizeMatMul's one scale per tensor / column is coarser and cheaper).
 */

type Part = Uint8Array;

class Proto {
  parts: Part[] = [];
  length = 0;

  #push(p: Part): void {
    this.parts.push(p);
    this.length += p.length;
  }

  varint(value: number): this {
    const out: number[] = [];
    let v = BigInt(value);
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) byte |= 0x80;
      out.push(byte);
    } while (v > 0n);
    this.#push(Uint8Array.from(out));
    return this;
  }

  key(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }

  int(field: number, value: number): this {
    return this.key(field, 0).varint(value);
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2).varint(data.length);
    this.#push(data);
    return this;
  }

  string(field: number, text: string): this {
    return this.bytes(field, new TextEncoder().encode(text));
  }

  message(field: number, build: (w: Proto) => void): this {
    const inner = new Proto();
    build(inner);
    this.key(field, 2).varint(inner.length);
    for (const p of inner.parts) this.#push(p);
    return this;
  }

  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) out.set(p, at), at += p.length;
    return out;
  }
}

const FLOAT = 1, UINT8 = 2, INT8 = 3;
const ATTR_INT = 2;

interface Initializer {
  name: string;
  type: number;
  dims: number[];
  data: ArrayBufferView;
}

function model(
  op: { type: string; domain?: string; inputs: string[]; attrs?: Record<string, number> },
  inits: Initializer[],
  m: number,
  k: number,
  n: number,
): Uint8Array {
  return new Proto()
    .int(1, 8)
    .string(2, "ppllava-bench")
    .message(8, (o) => o.string(1, "").int(2, 17))
    .message(8, (o) => o.string(1, "com.microsoft").int(2, 1))
    .message(7, (g) => {
      g.message(1, (node) => {
        for (const i of op.inputs) node.string(1, i);
        node.string(2, "C").string(3, "op").string(4, op.type);
        if (op.domain) node.string(7, op.domain);
        for (const [name, value] of Object.entries(op.attrs ?? {})) {
          node.message(5, (a) => a.string(1, name).int(3, value).int(20, ATTR_INT));
        }
      });
      g.string(2, "bench");
      for (const t of inits) {
        g.message(5, (tensor) => {
          for (const d of t.dims) tensor.int(1, d);
          tensor.int(2, t.type).string(8, t.name);
          tensor.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
        });
      }
      const info = (w: Proto, name: string, dims: number[]) =>
        w.string(1, name).message(2, (type) =>
          type.message(1, (tt) =>
            tt.int(1, FLOAT).message(2, (shape) => {
              for (const d of dims) shape.message(1, (dim) => dim.int(1, d));
            })));
      g.message(11, (i) => info(i, "A", [m, k]));
      g.message(12, (o) => info(o, "C", [m, n]));
    })
    .concat();
}

/** C (m, n) = A (m, k) · W (n, k)ᵀ with W given row-major (N, K) like a checkpoint: B = Wᵀ is baked in. */
export function f32MatMul(m: number, k: number, n: number, w: Float32Array): Uint8Array {
  const b = new Float32Array(k * n);
  for (let j = 0; j < n; j++) for (let t = 0; t < k; t++) b[t * n + j] = w[j * k + t];
  return model({ type: "MatMul", inputs: ["A", "B"] }, [{ name: "B", type: FLOAT, dims: [k, n], data: b }], m, k, n);
}

/** DynamicQuantizeMatMul with W quantised symmetric int8 per output column (absmax/127). */
export function int8MatMul(m: number, k: number, n: number, w: Float32Array): Uint8Array {
  const b = new Int8Array(k * n);
  const scales = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let absmax = 0;
    for (let t = 0; t < k; t++) absmax = Math.max(absmax, Math.abs(w[j * k + t]));
    const d = absmax / 127 || 1;
    scales[j] = d;
    for (let t = 0; t < k; t++) b[t * n + j] = Math.round(w[j * k + t] / d);
  }
  return model(
    { type: "DynamicQuantizeMatMul", domain: "com.microsoft", inputs: ["A", "B", "b_scale", "b_zero_point"] },
    [
      { name: "B", type: INT8, dims: [k, n], data: b },
      { name: "b_scale", type: FLOAT, dims: [n], data: scales },
      { name: "b_zero_point", type: INT8, dims: [n], data: new Int8Array(n) },
    ],
    m,
    k,
    n,
  );
}

/** MatMulNBits, 4 bits, blocks of 32 along K (k must be a multiple of 32), codes = round(w/d) + 8 with d = absmax/7. */
export function int4MatMul(m: number, k: number, n: number, w: Float32Array): Uint8Array {
  return nBitsMatMul(4, m, k, n, w);
}

/** MatMulNBits, 8 bits, blocks of 32 along K: our q8 format (one f32 scale per 32 values, d = absmax/127), codes
 * stored offset by ORT's default zero point 128. */
export function int8BlockMatMul(m: number, k: number, n: number, w: Float32Array): Uint8Array {
  return nBitsMatMul(8, m, k, n, w);
}

function nBitsMatMul(bits: 4 | 8, m: number, k: number, n: number, w: Float32Array): Uint8Array {
  const blocks = k / 32;
  const blockBytes = 32 * bits / 8;
  const [zero, top] = bits === 4 ? [8, 15] : [128, 255];
  const codes = new Uint8Array(n * blocks * blockBytes);
  const scales = new Float32Array(n * blocks);
  for (let j = 0; j < n; j++) {
    for (let g = 0; g < blocks; g++) {
      let absmax = 0;
      for (let t = 0; t < 32; t++) absmax = Math.max(absmax, Math.abs(w[j * k + g * 32 + t]));
      const d = absmax / (zero - 1) || 1;
      scales[j * blocks + g] = d;
      const q = (v: number) => Math.max(0, Math.min(top, Math.round(v / d) + zero));
      const at = (j * blocks + g) * blockBytes;
      for (let t = 0; t < 32; t++) {
        const code = q(w[j * k + g * 32 + t]);
        if (bits === 8) codes[at + t] = code;
        else codes[at + (t >> 1)] |= t & 1 ? code << 4 : code;
      }
    }
  }
  return model(
    {
      type: "MatMulNBits",
      domain: "com.microsoft",
      inputs: ["A", "B", "scales"],
      attrs: { K: k, N: n, bits, block_size: 32 },
    },
    [
      { name: "B", type: UINT8, dims: [n, blocks, blockBytes], data: codes },
      { name: "scales", type: FLOAT, dims: [n * blocks], data: scales },
    ],
    m,
    k,
    n,
  );
}
