#!/usr/bin/python3
"""Load an engine checkpoint into the PyTorch PreActResNet18 and run one forward pass.

  /usr/bin/python3 tests/python/load_safetensors.py MODEL INPUT OUTPUT WIDTH CLASSES

MODEL is a safetensors file written by ModelSafetensors (the model's state dict), INPUT
one holding "x" (N,3,H,W) F32. The file is parsed with json + struct + numpy only (the
safetensors package is not needed), loaded with load_state_dict(strict=True), and the
eval-mode logits are written to OUTPUT as a safetensors file with the single tensor
"logits". Used by tests/SafetensorsTests.cs; exits non-zero with a message on any error.
"""

import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "reference"))
from preactresnet import PreActResNet18  # noqa: E402
from safetensors_io import read as read_safetensors, write as write_safetensors  # noqa: E402


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
