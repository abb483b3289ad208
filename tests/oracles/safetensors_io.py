"""A minimal safetensors reader/writer in plain Python + NumPy (the `safetensors` package is not installed here).

Format (https://github.com/huggingface/safetensors): u64 little-endian header length N, then N bytes of UTF-8 JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the raw little-endian data;
offsets are relative to the first byte after the header. bf16 has no NumPy dtype: it travels as uint16 bit patterns.
"""
import json
import struct

import numpy as np

NUMPY_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,
    "I64": np.int64,
    "I32": np.int32,
    "U8": np.uint8,
}


def f32_to_bf16_bits(x):
    """Round-to-nearest-even f32 → bf16 bit patterns (what torch's .to(torch.bfloat16) does for finite values)."""
    bits = np.atleast_1d(np.asarray(x, dtype=np.float32)).view(np.uint32).astype(np.uint64)
    sixteen = np.uint64(16)
    rounding = ((bits >> sixteen) & np.uint64(1)) + np.uint64(0x7FFF)
    return ((bits + rounding) >> sixteen).astype(np.uint16).reshape(np.shape(x))


def bf16_bits_to_f32(bits):
    bits = np.asarray(bits, dtype=np.uint16)
    wide = np.atleast_1d(bits).astype(np.uint32) << np.uint32(16)
    return wide.view(np.float32).reshape(bits.shape)


def encode(array, dtype):
    """NumPy array → raw little-endian bytes of the given safetensors dtype."""
    if dtype == "BF16":
        return f32_to_bf16_bits(array).tobytes()
    little_endian = np.dtype(NUMPY_DTYPES[dtype]).newbyteorder("<")
    return np.ascontiguousarray(array).astype(little_endian).tobytes()


def write(path, tensors, metadata=None, align=8):
    """tensors: ordered list of (name, numpy array, dtype string). Data blocks are laid out in the given order."""
    header = {}
    chunks = []
    offset = 0
    for name, array, dtype in tensors:
        data = encode(array, dtype)
        header[name] = {"dtype": dtype, "shape": list(np.shape(array)), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad the header with spaces so the data starts aligned (the reference writer aligns to 8 bytes).
    text += b" " * ((-len(text)) % align)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in chunks:
            f.write(data)


def read(path):
    """→ (dict name → numpy array (bf16 decoded to f32), metadata dict, dict name → dtype string)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    base = 8 + n
    arrays, dtypes = {}, {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = np.frombuffer(blob[base + begin:base + end], dtype=np.dtype(NUMPY_DTYPES[info["dtype"]]).newbyteorder("<"))
        if info["dtype"] == "BF16":
            raw = bf16_bits_to_f32(raw)
        arrays[name] = raw.reshape(info["shape"]).copy()
        dtypes[name] = info["dtype"]
    return arrays, metadata, dtypes
