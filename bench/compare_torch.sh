#!/usr/bin/env bash
# Runs the engine's step timer and the PyTorch CPU reference side by side, in one invocation on one
# machine, and prints the ratio of median step times (>1 means the engine is faster).
# Needs Debian's python3-torch (apt-get install python3-torch). Usage: bench/compare_torch.sh [widths...]
set -euo pipefail
cd "$(dirname "$0")/.."
widths=("${@:-16 64}")
out=$(mktemp -d)
dotnet build -c Release bench/RlMixup.Bench.csproj -v q -nologo >/dev/null
for w in ${widths[@]}; do
  steps=10; warm=3
  if [ "$w" -ge 48 ]; then steps=5; warm=1; fi
  echo "== width $w =="
  dotnet bench/bin/Release/net10.0/RlMixup.Bench.dll step --width "$w" --steps $steps --warmup $warm --json "$out/ours_$w.json"
  /usr/bin/python3 bench/reference/torch_step.py --width "$w" --steps $steps --warmup $warm --threads "$(nproc)" --json "$out/torch_$w.json"
  /usr/bin/python3 - "$out/ours_$w.json" "$out/torch_$w.json" <<'PY'
import json, sys
ours, ref = (json.load(open(p))["phases"] for p in sys.argv[1:3])
for phase in ("step", "forward", "saliency"):
    o, r = ours[phase]["median_ms"], ref[phase]["median_ms"]
    print(f"ratio {phase:<9} torch {r:9.1f} ms / engine {o:9.1f} ms = {r / o:5.2f}x")
PY
done
