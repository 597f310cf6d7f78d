#!/usr/bin/python3
"""Load an engine checkpoint into the PyTorch PreActResNet18 and run one forward pass.

  /usr/bin/python3 tests/python/load_safetensors.py MODEL INPUT OUTPUT WIDTH CLASSES

MODEL is a safetensors file written by ModelSafetensors (the model's state dict), INPUT
one holding "x" (N,3,H,W) F32. The file is parsed with json + struct + numpy only (the
safetensors package is not needed), loaded with load_state_dict(strict=True), and the
eval-mode logits are written to OUTPUT as a safetensors file with the single tensor
"logits". Used by tests/SafetensorsTests.cs; exits non-zero with a message on any error.
"""

import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "reference"))
from preactresnet import PreActResNet18  # noqa: E402

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0, "header not padded to 8 bytes"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


def write_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name].detach().numpy().astype("<f4")).tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


def main():
    model_path, input_path, output_path, width, classes = sys.argv[1:6]
    torch.set_num_threads(1)
    model = PreActResNet18(width=int(width), num_classes=int(classes))
    model.load_state_dict(read_safetensors(model_path), strict=True)
    model.eval()
    x = read_safetensors(input_path)["x"]
    with torch.no_grad():
        logits = model(x)
    write_safetensors(output_path, {"logits": logits})


if __name__ == "__main__":
    main()
