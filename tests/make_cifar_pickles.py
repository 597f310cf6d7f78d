#!/usr/bin/python3
"""Writes torchvision-style CIFAR pickles for the tests: CIFAR-10 from a folder of binary batches
(so the two readers can be compared image for image), and a small random CIFAR-100 in both the
Python and the binary version. Usage: make_cifar_pickles.py CIFAR10_BIN_DIR OUT PROTOCOL"""

import os
import pickle
import sys

import numpy as np


def read_bin(path, label_bytes):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, label_bytes + 3072)
    return raw[:, label_bytes:].copy(), raw[:, label_bytes - 1].astype(int).tolist()


def main(src, out, protocol):
    c10 = os.path.join(out, "cifar-10-batches-py")
    os.makedirs(c10, exist_ok=True)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        data, labels = read_bin(os.path.join(src, name + ".bin"), 1)
        with open(os.path.join(c10, name), "wb") as f:
            pickle.dump({"batch_label": "batch", "labels": labels, "data": data, "filenames": [f"img_{i}.png" for i in range(len(labels))]}, f, protocol=protocol)
    names = [line.strip() for line in open(os.path.join(src, "batches.meta.txt")) if line.strip()]
    with open(os.path.join(c10, "batches.meta"), "wb") as f:
        pickle.dump({"num_cases_per_batch": 1000, "label_names": names, "num_vis": 3072}, f, protocol=protocol)

    c100 = os.path.join(out, "cifar-100-python")
    b100 = os.path.join(out, "cifar-100-binary")
    os.makedirs(c100, exist_ok=True)
    os.makedirs(b100, exist_ok=True)
    rng = np.random.default_rng(5)
    fine_names = [f"class_{k}" for k in range(100)]
    for split, n in (("train", 300), ("test", 120)):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, size=n).tolist()
        coarse = [k // 5 for k in fine]
        with open(os.path.join(c100, split), "wb") as f:
            pickle.dump({"filenames": [f"{i}.png" for i in range(n)], "batch_label": split, "fine_labels": fine, "coarse_labels": coarse, "data": data}, f, protocol=protocol)
        rows = np.concatenate([np.array(coarse, dtype=np.uint8)[:, None], np.array(fine, dtype=np.uint8)[:, None], data], axis=1)
        rows.tofile(os.path.join(b100, split + ".bin"))
    with open(os.path.join(c100, "meta"), "wb") as f:
        pickle.dump({"fine_label_names": fine_names, "coarse_label_names": [f"super_{k}" for k in range(20)]}, f, protocol=protocol)
    with open(os.path.join(b100, "fine_label_names.txt"), "w") as f:
        f.write("\n".join(fine_names) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
