#!/usr/bin/python3
"""PyTorch CPU reference timings for the RL-Mixup PreActResNet18 training step.

Phases (each timed per iteration, median reported):
  step      forward (train mode) + soft-target cross-entropy + backward +
            SGD(lr 0.1, momentum 0.9, nesterov, weight decay 1e-4) step
  forward   forward only, train mode, no autograd graph kept
  saliency  forward (train mode) + loss + backward w.r.t. the input only;
            parameters have requires_grad switched off for this phase

Inputs are random 32x32 images and random soft targets, generated once.

Usage:
  /usr/bin/python3 bench/reference/torch_step.py --width 16 --batch 100 \
      --classes 100 --steps 10 --warmup 3 --threads 2 [--json out.json]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from preactresnet import PreActResNet18, soft_cross_entropy  # noqa: E402


def time_phase(fn, steps, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = PreActResNet18(width=args.width, num_classes=args.classes)
    model.train()
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)

    x = torch.randn(args.batch, 3, 32, 32)
    targets = torch.softmax(torch.randn(args.batch, args.classes), dim=1)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = soft_cross_entropy(model(x), targets)
        loss.backward()
        opt.step()

    def forward():
        with torch.no_grad():
            model(x)

    def saliency():
        xs = x.detach().requires_grad_(True)
        loss = soft_cross_entropy(model(xs), targets)
        (g,) = torch.autograd.grad(loss, xs)
        return g

    results = {}
    results["step"] = time_phase(step, args.steps, args.warmup)
    results["forward"] = time_phase(forward, args.steps, args.warmup)
    for p in params:
        p.requires_grad_(False)
    try:
        results["saliency"] = time_phase(saliency, args.steps, args.warmup)
    finally:
        for p in params:
            p.requires_grad_(True)

    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "width": args.width,
        "batch": args.batch,
        "classes": args.classes,
        "params": n_params,
        "steps": args.steps,
        "warmup": args.warmup,
    }
    phases = {}
    for name, times in results.items():
        med = statistics.median(times)
        phases[name] = {
            "median_ms": med * 1e3,
            "min_ms": min(times) * 1e3,
            "max_ms": max(times) * 1e3,
            "images_per_s": args.batch / med,
            "times_ms": [t * 1e3 for t in times],
        }

    print("PyTorch %s, %d thread(s), %s" % (meta["torch"], meta["threads"], meta["machine"]))
    print("PreActResNet18 width %d, %d classes, %d params; batch %d, %d steps (median) after %d warmup"
          % (args.width, args.classes, n_params, args.batch, args.steps, args.warmup))
    print("%-10s %12s %12s %12s %12s" % ("phase", "median ms", "min ms", "max ms", "images/s"))
    for name, r in phases.items():
        print("%-10s %12.1f %12.1f %12.1f %12.1f"
              % (name, r["median_ms"], r["min_ms"], r["max_ms"], r["images_per_s"]))

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "phases": phases}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
