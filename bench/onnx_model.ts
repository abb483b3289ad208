/**
 * A one-node ONNX model written by hand (protobuf, no dependency), for timing a peer runtime on exactly one op:
 * `C = MatMul(A, B)` with A an input (m, k) and B a constant initializer (k, n), f32. Field numbers are those of
 * onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto).
 */

class Writer {
  bytes: number[] = [];

  varint(value: number): this {
    let v = BigInt(value);
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) byte |= 0x80;
      this.bytes.push(byte);
    } while (v > 0n);
    return this;
  }

  key(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }

  int(field: number, value: number): this {
    return this.key(field, 0).varint(value);
  }

  raw(field: number, data: Uint8Array | number[]): this {
    this.key(field, 2).varint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }

  string(field: number, text: string): this {
    return this.raw(field, new TextEncoder().encode(text));
  }

  message(field: number, build: (w: Writer) => void): this {
    const inner = new Writer();
    build(inner);
    return this.raw(field, inner.bytes);
  }
}

const FLOAT = 1;

function valueInfo(w: Writer, name: string, dims: number[]): void {
  w.string(1, name).message(2, (type) =>
    type.message(1, (tensor) =>
      tensor.int(1, FLOAT).message(2, (shape) => {
        for (const d of dims) shape.message(1, (dim) => dim.int(1, d));
      })));
}

/** ONNX bytes of C (m, n) = A (m, k) · B, B (k, n) row-major f32 baked in as an initializer. */
export function matmulModel(m: number, k: number, n: number, b: Float32Array): Uint8Array {
  const model = new Writer()
    .int(1, 8) // ir_version
    .string(2, "ppllava-bench")
    .message(8, (opset) => opset.string(1, "").int(2, 13))
    .message(7, (graph) => {
      graph.message(
        1,
        (node) => node.string(1, "A").string(1, "B").string(2, "C").string(3, "matmul").string(4, "MatMul"),
      );
      graph.string(2, "matmul");
      graph.message(5, (tensor) => {
        tensor.int(1, k).int(1, n).int(2, FLOAT).string(8, "B");
        tensor.raw(9, new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
      });
      graph.message(11, (input) => valueInfo(input, "A", [m, k]));
      graph.message(12, (output) => valueInfo(output, "C", [m, n]));
    });
  return new Uint8Array(model.bytes);
}
