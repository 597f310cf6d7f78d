#!/usr/bin/python3
"""Seed study of the engine against the independent PyTorch trainer: do whole runs end alike?

One command runs every arm × policy × seed, one run at a time, each on --threads threads, into
OUT/<arm>-<policy>-s<seed>/, skipping runs whose metrics.jsonl is complete (stop and rerun it at
will), then writes OUT/results.md and OUT/results.json. The arms:

  engine            `rlmixup train`, its own initialisation and data stream
  torch             bench/reference/torch_train.py, PyTorch's own initialisation and data stream
  engine-1t         the engine on one thread (the threads arm)
  engine-torchinit  the engine from the weights PyTorch initialises for the same seed
                    (torch_train.py --save-init, loaded with --init-weights), its own data stream:
                    against `torch`, only the arithmetic and the data stream differ
  torch-stream      PyTorch free-running on the engine's exact batches and mixes from the engine's
                    initial weights (scripts/torch_on_trace.py on the engine run's whole trace,
                    which is deleted afterwards): against `engine`, only the arithmetic differs;
                    against `torch`, only the stream and the initialisation

Per arm and policy: the final test top-1 (mean, std, median, the lowest three), the final training
loss, how many runs ended with a training loss above --high-loss (1.1), and how many collapsed (an
epoch after the first with a mean training loss above ln(classes)). Pairs of arms are tested with
the Mann–Whitney U test (two-sided, normal approximation with tie correction) for a shift of the
final top-1 and with the Brown–Forsythe test (and the classical F test) for a difference of spread.

  /usr/bin/python3 scripts/seed_study.py --data ../shared/data/cifar10-subset --full --seeds 1-20 --out runs/seed-study

--full is the whole study: engine and torch on none and input-mixup, and the three cause arms on
--cause-policies (none). Without it, --arms and --policies choose. --device cuda runs both sides
on a GPU (the data and every draw stay on the host, so a seed's stream is the same).
"""

import argparse
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ARMS = ("engine", "torch", "engine-1t", "engine-torchinit", "torch-stream")
REFERENCE_PAIRS = [("engine", "torch"), ("engine-torchinit", "torch"), ("engine-torchinit", "engine"),
                   ("torch-stream", "engine"), ("torch-stream", "torch"), ("engine-1t", "engine")]


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


def folder_of(a, arm, policy, seed):
    return os.path.join(a.out, f"{arm}-{policy}-s{seed}")


def done(a, folder):
    return len(read_metrics(folder)) >= a.epochs or diverged(folder)


def diverged(folder):
    log = os.path.join(folder, "log.txt")
    return os.path.exists(log) and "training diverged" in open(log, errors="replace").read()


def engine_command(a, policy, seed, folder, threads, extra=()):
    return shlex.split(a.engine) + ["train", "--dataset", "cifar10", "--data", a.data, "--device", a.device, "--no-live",
                                    "--out", folder, "--policy", policy, "--width", str(a.width), "--epochs", str(a.epochs),
                                    "--seed", str(seed), "--lr-max", str(a.lr_max), "--threads", str(threads), *extra]


def torch_command(a, policy, seed, folder):
    return [a.python, os.path.join(ROOT, "bench", "reference", "torch_train.py"), "--data", a.data, "--out", folder,
            "--policy", policy, "--width", str(a.width), "--epochs", str(a.epochs), "--seed", str(seed),
            "--lr-max", str(a.lr_max), "--threads", str(a.threads), "--device", a.device]


def execute(cmd, folder, fresh=True):
    if fresh and os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "log.txt"), "w") as log:
        log.write(" ".join(shlex.quote(c) for c in cmd) + "\n")
        log.flush()
        return subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def steps_per_epoch(a):
    return a.train_images // a.batch


def run_seed(a, policy, seed, arms):
    """Every requested arm of one (policy, seed); the engine run is traced when torch-stream needs its stream."""
    status = {}
    engine = folder_of(a, "engine", policy, seed)
    stream = folder_of(a, "torch-stream", policy, seed)
    want_stream = "torch-stream" in arms and not done(a, stream)
    if "engine" in arms or want_stream:
        if done(a, engine) and not want_stream:
            status["engine"] = "skipped"
        else:
            trace = os.path.join(a.out, f"trace-{policy}-s{seed}")
            extra = ["--trace", trace, "--trace-steps", str(a.epochs * steps_per_epoch(a)), "--trace-full", "1"] if want_stream else []
            # A finished engine run is redone (bit for bit the same) into a scratch folder only for its trace.
            target = engine if not done(a, engine) else os.path.join(a.out, f"retrace-{policy}-s{seed}")
            status["engine"] = f"exit {execute(engine_command(a, policy, seed, target, a.threads, extra), target)}"
            if want_stream:
                cmd = [a.python, os.path.join(HERE, "torch_on_trace.py"), trace, "--data", a.data, "--epochs", str(a.epochs),
                       "--threads", str(a.threads), "--device", a.device, "--out", stream]
                status["torch-stream"] = f"exit {execute(cmd, stream)}"
                shutil.rmtree(trace, ignore_errors=True)
            if target != engine:
                shutil.rmtree(target, ignore_errors=True)
    if "torch" in arms:
        f = folder_of(a, "torch", policy, seed)
        status["torch"] = "skipped" if done(a, f) else f"exit {execute(torch_command(a, policy, seed, f), f)}"
    if "engine-torchinit" in arms:
        f = folder_of(a, "engine-torchinit", policy, seed)
        if done(a, f):
            status["engine-torchinit"] = "skipped"
        else:
            init = os.path.join(a.out, "init", f"torch-w{a.width}-s{seed}.safetensors")
            if not os.path.exists(init):
                os.makedirs(os.path.dirname(init), exist_ok=True)
                subprocess.check_call([a.python, os.path.join(ROOT, "bench", "reference", "torch_train.py"), "--data", a.data,
                                       "--width", str(a.width), "--seed", str(seed), "--save-init", init], cwd=ROOT)
            status["engine-torchinit"] = f"exit {execute(engine_command(a, policy, seed, f, a.threads, ['--init-weights', init]), f)}"
    if "engine-1t" in arms:
        f = folder_of(a, "engine-1t", policy, seed)
        status["engine-1t"] = "skipped" if done(a, f) else f"exit {execute(engine_command(a, policy, seed, f, 1), f)}"
    return status


# ---- statistics, written out (no SciPy on the machines this runs on)

def normal_sf(z):
    return 0.5 * math.erfc(z / math.sqrt(2))


def _betacf(a, b, x):
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def betainc(a, b, x):
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def f_sf(f, d1, d2):
    """P(F > f) for F with (d1, d2) degrees of freedom."""
    if f <= 0:
        return 1.0
    return betainc(d2 / 2, d1 / 2, d2 / (d2 + d1 * f))


def mann_whitney(x, y):
    """(U of x, two-sided p): normal approximation with the tie correction and a continuity correction."""
    n1, n2 = len(x), len(y)
    pooled = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    ranks, i, ties = [0.0] * len(pooled), 0, 0.0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    r1 = sum(r for r, (_, g) in zip(ranks, pooled) if g == 0)
    u = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    if sigma == 0:
        return u, 1.0
    z = max(0.0, abs(u - n1 * n2 / 2) - 0.5) / sigma
    return u, min(1.0, 2 * normal_sf(z))


def brown_forsythe(x, y):
    """(F, p) of the Brown–Forsythe test (Levene's on the absolute deviations from each group's median)."""
    zx = [abs(v - statistics.median(x)) for v in x]
    zy = [abs(v - statistics.median(y)) for v in y]
    n = len(zx) + len(zy)
    mx, my, m = statistics.mean(zx), statistics.mean(zy), statistics.mean(zx + zy)
    between = len(zx) * (mx - m) ** 2 + len(zy) * (my - m) ** 2
    within = sum((v - mx) ** 2 for v in zx) + sum((v - my) ** 2 for v in zy)
    if within == 0:
        return 0.0, 1.0
    f = (n - 2) * between / within
    return f, f_sf(f, 1, n - 2)


def f_test(x, y):
    """(var(x)/var(y), two-sided p) of the classical F test (assumes normal samples)."""
    vx, vy = statistics.variance(x), statistics.variance(y)
    if vy == 0:
        return math.inf, 0.0
    f = vx / vy
    d1, d2 = len(x) - 1, len(y) - 1
    upper = f_sf(f, d1, d2)
    return f, min(1.0, 2 * min(upper, 1 - upper))


# ---- the tables

def collect(a, arm, policy, seeds_list):
    rows = []
    for seed in seeds_list:
        folder = folder_of(a, arm, policy, seed)
        m = read_metrics(folder)
        if diverged(folder) or any(not math.isfinite(e["train_loss"]) for e in m):
            rows.append({"seed": seed, "diverged": True})
            continue
        if len(m) < a.epochs:
            continue
        rows.append({"seed": seed, "diverged": False, "final": 100 * m[-1]["test_top1"], "best": 100 * max(e["test_top1"] for e in m),
                     "loss": m[-1]["train_loss"], "collapsed": any(e["train_loss"] > math.log(10) for e in m[1:])})
    return rows


def threads_of(a, arm):
    return 1 if arm == "engine-1t" else a.threads


def summary_line(a, arm, policy, rows):
    ok = [r for r in rows if not r["diverged"]]
    finals = [r["final"] for r in ok]
    if not finals:
        return None
    low = ", ".join(f"{v:.2f}" for v in sorted(finals)[:3])
    sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
    return (f"| {arm} | {policy} | {threads_of(a, arm)} | {len(rows)} | {statistics.mean(finals):.2f} ± {sd:.2f} | "
            f"{statistics.median(finals):.2f} | {low} | {statistics.mean(r['loss'] for r in ok):.3f} | "
            f"{sum(r['loss'] > a.high_loss for r in ok)} | {sum(r['collapsed'] for r in ok)} | {sum(r['diverged'] for r in rows)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--full", action="store_true", help="the whole study (see above)")
    ap.add_argument("--arms", default="engine,torch", help=f"comma-separated among {', '.join(ARMS)}")
    ap.add_argument("--policies", default="none,input-mixup")
    ap.add_argument("--cause-policies", default="none", help="with --full: the policies of the three cause arms")
    ap.add_argument("--seeds", default="1-20")
    ap.add_argument("--lr-max", type=float, default=0.2)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--train-images", type=int, default=5000, help="the training set's size (the trace has this many / batch steps an epoch)")
    ap.add_argument("--threads", type=int, default=2, help="threads per run, both sides (engine-1t: 1)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda, both sides")
    ap.add_argument("--high-loss", type=float, default=1.1, help="a final training loss above this counts as a high-loss run")
    ap.add_argument("--engine", default="dotnet " + os.path.join(ROOT, "src", "Engine", "bin", "Release", "net10.0", "rlmixup.dll"))
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--summary-only", action="store_true")
    a = ap.parse_args()
    a.data, a.out = os.path.abspath(a.data), os.path.abspath(a.out)
    os.makedirs(a.out, exist_ok=True)
    seed_list = seeds(a.seeds)
    policies = a.policies.split(",")
    plan = {p: (["engine", "torch"] + (["torch-stream", "engine-torchinit", "engine-1t"] if p in a.cause_policies.split(",") else []))
            if a.full else a.arms.split(",") for p in (policies if not a.full else list(dict.fromkeys(policies + a.cause_policies.split(","))))}
    for arms in plan.values():
        for arm in arms:
            if arm not in ARMS:
                ap.error(f"unknown arm {arm}")
    if not a.summary_only:
        # Seed by seed, so that a partial study already has every arm for its first seeds.
        for seed in seed_list:
            for policy, arms in plan.items():
                for arm, st in run_seed(a, policy, seed, arms).items():
                    print(f"{arm:>17} {policy:<12} seed {seed:<3} {st}", flush=True)

    lines = [f"Width {a.width}, {a.epochs} epochs of {steps_per_epoch(a)} steps, peak learning rate {a.lr_max}, CIFAR-10 at {a.data}, "
             f"device {a.device}. Final test top-1 in %. High loss: a final training loss above {a.high_loss}. Collapsed: an epoch "
             "after the first with a mean training loss above ln 10. Diverged: the loss became NaN or infinite and the run stopped.", "",
             "| arm | policy | threads | runs | final top-1 (mean ± std) | median | lowest three | final train loss (mean) | high loss | collapsed | diverged |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    result = {}
    for policy, arms in plan.items():
        for arm in arms:
            rows = collect(a, arm, policy, seed_list)
            result[f"{arm}|{policy}"] = rows
            line = summary_line(a, arm, policy, rows)
            if line:
                lines.append(line)
    lines += ["", "Tests on the final top-1 of the runs that finished (two-sided p-values): Mann–Whitney U for a shift, "
              "Brown–Forsythe and the F test for a difference of spread.", "",
              "| policy | arm | against | runs | Mann–Whitney U | p | Brown–Forsythe F | p | variance ratio | F-test p |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    tests = {}
    for policy, arms in plan.items():
        for x_arm, y_arm in REFERENCE_PAIRS:
            if x_arm not in arms or y_arm not in arms:
                continue
            x = [r["final"] for r in result[f"{x_arm}|{policy}"] if not r["diverged"]]
            y = [r["final"] for r in result[f"{y_arm}|{policy}"] if not r["diverged"]]
            if len(x) < 3 or len(y) < 3:
                continue
            u, pu = mann_whitney(x, y)
            bf, pb = brown_forsythe(x, y)
            vr, pf = f_test(x, y)
            tests[f"{x_arm}|{y_arm}|{policy}"] = {"u": u, "p_mann_whitney": pu, "brown_forsythe": bf, "p_brown_forsythe": pb,
                                                 "variance_ratio": vr, "p_f_test": pf, "n": [len(x), len(y)]}
            lines.append(f"| {policy} | {x_arm} | {y_arm} | {len(x)}/{len(y)} | {u:.1f} | {pu:.3f} | {bf:.2f} | {pb:.3f} | {vr:.2f} | {pf:.3f} |")
    lines += ["", "Per seed (final top-1; 'div' diverged):", ""]
    for key, rows in result.items():
        lines.append(f"- {key.replace('|', ', ')}: " + " ".join("div" if r["diverged"] else f"{r['seed']}:{r['final']:.1f}" for r in rows))
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"runs": result, "tests": tests}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
