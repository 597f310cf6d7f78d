#!/usr/bin/python3
"""Seed-spread comparison of the engine and the independent PyTorch trainer on one recipe.

Runs `rlmixup train` and bench/reference/torch_train.py for every (policy, peak learning rate,
seed), --jobs at a time, each on --threads threads (default 1), into OUT/<side>-<policy>-lr<lr>-s<seed>/, skipping
runs whose metrics.jsonl is already complete (the study can be stopped and rerun). Both sides log
steps.jsonl every --step-stats steps. Then it writes OUT/results.md and OUT/results.json: per side,
policy and learning rate, the final and best test top-1 (mean ± sample std over seeds), the final
training loss, and how many runs collapsed: an epoch after the first whose mean training loss
exceeds ln(classes), the loss of a uniform guess.

  /usr/bin/python3 scripts/seed_study.py --data ../shared/data/cifar10-subset --policies input-mixup,none \\
      --seeds 1-10 --lr-max 0.2,0.3 --width 16 --epochs 10 --jobs 2 --out runs/seed-study \\
      [--engine "dotnet src/Engine/bin/Release/net10.0/rlmixup.dll"] [--sides engine,torch]
"""

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def seeds(spec):
    out = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += range(int(a), int(b) + 1)
        else:
            out.append(int(part))
    return out


def read_metrics(folder):
    path = os.path.join(folder, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def command(side, policy, lr, seed, folder, a):
    common = ["--policy", policy, "--width", str(a.width), "--epochs", str(a.epochs), "--seed", str(seed),
              "--lr-max", str(lr), "--threads", str(a.threads), "--step-stats", str(a.step_stats)]
    if side == "engine":
        return shlex.split(a.engine) + ["train", "--dataset", "cifar10", "--data", a.data, "--device", "cpu", "--no-live",
                                        "--out", folder] + common
    return ["/usr/bin/python3", os.path.join(ROOT, "bench", "reference", "torch_train.py"), "--data", a.data,
            "--out", folder] + common


def run(job, a):
    side, policy, lr, seed = job
    folder = os.path.join(a.out, f"{side}-{policy}-lr{lr}-s{seed}")
    if len(read_metrics(folder)) >= a.epochs or diverged(folder):
        return job, "skipped"
    if os.path.exists(folder) and side == "engine":
        subprocess.run(["rm", "-rf", folder], check=True)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "log.txt"), "w") as log:
        rc = subprocess.call(command(side, policy, lr, seed, folder, a), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return job, f"exit {rc}"


def diverged(folder):
    log = os.path.join(folder, "log.txt")
    return os.path.exists(log) and "training diverged" in open(log, errors="replace").read()


def summarise(a, jobs):
    rows = {}
    for side, policy, lr, seed in jobs:
        folder = os.path.join(a.out, f"{side}-{policy}-lr{lr}-s{seed}")
        m = read_metrics(folder)
        if diverged(folder):
            rows.setdefault((side, policy, lr), []).append({"seed": seed, "diverged": True, "collapsed": True,
                                                            "epochs": len(m)})
            continue
        if len(m) < a.epochs:
            continue
        classes = 10
        # A NaN loss (a trainer that does not stop on one) is a divergence too.
        nonfinite = any(not math.isfinite(e["train_loss"]) for e in m)
        if nonfinite:
            rows.setdefault((side, policy, lr), []).append({"seed": seed, "diverged": True, "collapsed": True, "epochs": len(m)})
            continue
        collapsed = any(e["train_loss"] > math.log(classes) for e in m[1:])
        r = rows.setdefault((side, policy, lr), [])
        r.append({"seed": seed, "final": 100 * m[-1]["test_top1"], "best": 100 * max(e["test_top1"] for e in m),
                  "loss": m[-1]["train_loss"], "collapsed": collapsed, "diverged": False,
                  "peak_loss": max(e["train_loss"] for e in m[1:])})
    return rows


def fmt(values):
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--policies", default="input-mixup")
    ap.add_argument("--seeds", default="1-5")
    ap.add_argument("--lr-max", default="0.2")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--step-stats", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="threads per run (each side)")
    ap.add_argument("--sides", default="engine,torch")
    ap.add_argument("--engine", default="dotnet " + os.path.join(ROOT, "src", "Engine", "bin", "Release", "net10.0", "rlmixup.dll"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--summary-only", action="store_true")
    a = ap.parse_args()
    a.data = os.path.abspath(a.data)
    a.out = os.path.abspath(a.out)
    os.makedirs(a.out, exist_ok=True)
    lrs = [float(x) for x in a.lr_max.split(",")]
    jobs = [(side, p, lr, s) for lr in lrs for s in seeds(a.seeds) for p in a.policies.split(",") for side in a.sides.split(",")]
    if not a.summary_only:
        with ThreadPoolExecutor(a.jobs) as pool:
            for job, status in pool.map(lambda j: run(j, a), jobs):
                print(f"{job[0]:>6} {job[1]:<12} lr {job[2]:<5} seed {job[3]:<3} {status}", flush=True)
    rows = summarise(a, jobs)
    lines = [f"Width {a.width}, {a.epochs} epochs, CIFAR-10 at {a.data}; final and best test top-1 in %, mean ± std over the seeds "
             "that finished; collapsed: an epoch after the first with mean training loss above ln 10; diverged: the loss became "
             "infinite or NaN and the run stopped (counted as collapsed too; 'div' in the per-seed list).", "",
             "| side | policy | lr max | seeds | final top-1 | best top-1 | final train loss | collapsed | diverged | per seed (final) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (side, policy, lr), r in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        r.sort(key=lambda x: x["seed"])
        done = [x for x in r if not x["diverged"]]
        lines.append(f"| {side} | {policy} | {lr} | {len(r)} | {fmt([x['final'] for x in done])} | {fmt([x['best'] for x in done])} | "
                     f"{fmt([x['loss'] for x in done])} | {sum(x['collapsed'] for x in r)}/{len(r)} | {sum(x['diverged'] for x in r)}/{len(r)} | "
                     + " ".join("div" if x["diverged"] else f"{x['final']:.1f}" for x in r) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({f"{k[0]}|{k[1]}|{k[2]}": v for k, v in rows.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
