"""Median-of-rounds ratios of two sets of phase timings (the JSON of `rlmixup bench`, the bench
project's `step` and the reference scripts), one file per round on each side:

    ratios.py "A_r1.json A_r2.json ..." "B_r1.json B_r2.json ..." LABEL [NAME_A NAME_B]

Per phase: the median over the rounds of each side's median ms, the ratio B / A (> 1 means A is
faster) and the range of the per-round ratios. Used by compare_torch.sh (A = the engine, B = PyTorch)
and compare_threads.sh (A = 2 threads, B = 1 thread)."""
import json
import statistics
import sys

ours = [json.load(open(p)) for p in sys.argv[1].split()]
ref = [json.load(open(p)) for p in sys.argv[2].split()]
label = sys.argv[3]
name_a, name_b = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else ("engine", "reference")
med = statistics.median
print(f"-- ratio {label}: {name_b} / {name_a} (median ms; > 1 means {name_a} is faster)"
      + (f", median over {len(ours)} alternating rounds" if len(ours) > 1 else ""))
for phase in ours[0]["phases"]:
    if phase not in ref[0]["phases"]:
        continue
    o = [j["phases"][phase]["median_ms"] for j in ours]
    r = [j["phases"][phase]["median_ms"] for j in ref]
    line = f"   {phase:<9} {med(r):10.2f} / {med(o):10.2f} = {med(r) / med(o):6.2f}x"
    if len(o) > 1:
        per = [b / a for a, b in zip(o, r)]
        line += f"   (rounds {min(per):.2f}-{max(per):.2f}x)"
    print(line)
if all("images_per_s" in j for j in ours + ref):
    print(f"   images/s  {name_a} {med(j['images_per_s'] for j in ours):.1f}, {name_b} {med(j['images_per_s'] for j in ref):.1f}")
