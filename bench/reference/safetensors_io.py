"""safetensors files with json + struct + numpy only (the safetensors package is not needed).

The format: an unsigned 64-bit little-endian header length N, N bytes of UTF-8 JSON
{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...},
then the data section. Shared by tests/python/load_safetensors.py and the replay tools.
"""

import json
import struct

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}
NAMES = {np.dtype(v).newbyteorder("<"): k for k, v in DTYPES.items()}


def read(path, with_metadata=False):
    """{name: torch tensor} (and the metadata dict when asked)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return (out, meta) if with_metadata else out


def write(path, tensors, metadata=None, dtype="<f4"):
    """Writes {name: tensor}; floating tensors as F32 (or as dtype), integer ones as I64."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        a = tensors[name]
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        a = a.astype("<i8") if np.issubdtype(a.dtype, np.integer) else a.astype(dtype)
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)
