"""Useful FLOPs of the conv-bound phases of `rlmixup bench` and the plain step, and their GFLOP/s as
a fraction of this CPU's FMA peak (`bench ... peak`), from JSON results:

    phase_flops.py --width 16 --peak 226.7 RESULT.json [RESULT.json ...]

FLOPs are 2 per multiply-add of a direct convolution or dense layer, counted from the shapes
(batch 100, CIFAR 32×32, 100 classes; the agent's (100,16,16) observation through 3 valid 3×3
convolutions of 200, 300 and 400 channels). Winograd does fewer multiplies than it is credited
with here, so a Winograd-bound phase can exceed the peak. Phases:
  forward   classifier forward                                      F
  saliency  forward + backward-data                                 2F
  train / step   forward + backward-data + backward-filter          3F
  ppo       agent forward + backward over 100 observations × 20 epochs / 100 steps   0.2 × 3 × A(100)
The medians of several JSON files (rounds) are taken per phase."""
import argparse
import json
import statistics


def classifier_forward(width, n=100, classes=100):
    f, c, h = 2.0 * n * width * 3 * 9 * 32 * 32, width, 32
    for i, o in enumerate([width, 2 * width, 4 * width, 8 * width]):
        st = 1 if i == 0 else 2
        ho = h // st
        f += 2.0 * n * o * c * 9 * ho * ho           # first 3×3 (stride st)
        f += 3 * 2.0 * n * o * o * 9 * ho * ho       # the other three 3×3 of the stage
        if st != 1 or c != o:
            f += 2.0 * n * o * c * ho * ho           # 1×1 shortcut
        c, h = o, ho
    return f + 2.0 * n * c * classes


def agent_forward(n=100, channels=(200, 300, 400), features=512, hidden=(64, 256), logits=100 * 10):
    f, c, h = 0.0, 100, 16
    for o in channels:
        h -= 2
        f += 2.0 * n * h * h * o * c * 9
        c = o
    return f + 2.0 * n * (c * features + features * hidden[0] + hidden[0] * logits + features * hidden[1] + hidden[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--peak", type=float, required=True, help="measured FMA peak of all threads, GFLOP/s")
    ap.add_argument("results", nargs="+")
    a = ap.parse_args()
    F = classifier_forward(a.width)
    flops = {"forward": F, "saliency": 2 * F, "train": 3 * F, "step": 3 * F, "ppo": 0.2 * 3 * agent_forward()}
    runs = [json.load(open(p)) for p in a.results]
    print(f"width {a.width}: classifier forward {F / 1e9:.2f} GFLOP per batch of 100; peak {a.peak:.1f} GFLOP/s")
    for phase, fl in flops.items():
        ms = [r["phases"][phase]["median_ms"] for r in runs if phase in r.get("phases", {})]
        if not ms:
            continue
        m = statistics.median(ms)
        g = fl / (m / 1e3) / 1e9
        print(f"   {phase:<9} {fl / 1e9:8.2f} GFLOP {m:10.2f} ms {g:8.1f} GFLOP/s {100 * g / a.peak:6.1f}% of peak")


if __name__ == "__main__":
    main()
