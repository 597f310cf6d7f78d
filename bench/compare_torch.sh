#!/usr/bin/env bash
# Runs the engine and the PyTorch reference side by side, in ONE invocation on one machine, and
# prints the ratio of their median times (> 1 means the engine is faster).
#
#   bench/compare_torch.sh [--device cpu|cuda] [--steps N] [--warmup N] [--plain] [widths...]
#
# For every width (default: 16 64):
#   - the RL-Mixup step, phase by phase: `rlmixup bench` against bench/reference/torch_rlmixup.py;
#     on cuda the reference runs three variants: eager fp32, AMP bf16 channels_last, torch.compile;
#   - with --plain also the plain training step (bench project's `step` against torch_step.py, CPU).
# The engine is $RLMIXUP if set, else artifacts/gpu/rlmixup if it exists (the NativeAOT build, no
# .NET needed), else a Release build of src/Engine. PyTorch is $PYTHON (default /usr/bin/python3,
# Debian's python3-torch on the CPU). JSON results are kept in $OUT (default a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."

device=cpu steps="" warmup="" plain=0 widths=()
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --plain) plain=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; exit 2 ;;
    *) widths+=("$1"); shift ;;
  esac
done
[ ${#widths[@]} -gt 0 ] || widths=(16 64)
case "$device" in cpu|cuda) ;; *) echo "error: --device must be cpu or cuda" >&2; exit 2 ;; esac
python=${PYTHON:-/usr/bin/python3}
if ! "$python" -c "import torch" 2>/dev/null; then
  echo "error: $python cannot import torch (on Debian: apt-get install python3-torch; or set PYTHON)" >&2; exit 2
fi
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

if [ -n "${RLMIXUP:-}" ]; then engine=($RLMIXUP)
elif [ -x artifacts/gpu/rlmixup ]; then engine=(artifacts/gpu/rlmixup)
else
  dotnet build -c Release src/Engine -v q -nologo >/dev/null
  engine=(dotnet src/Engine/bin/Release/net10.0/rlmixup.dll)
fi

ratios() { # ratios OURS.json REF.json LABEL
  "$python" - "$1" "$2" "$3" <<'PY'
import json, sys
ours, ref = (json.load(open(p)) for p in sys.argv[1:3])
label = sys.argv[3]
print(f"-- ratio {label}: reference / engine (median ms; > 1 means the engine is faster)")
for phase, o in ours["phases"].items():
    if phase not in ref["phases"]:
        continue
    r = ref["phases"][phase]["median_ms"]
    print(f"   {phase:<9} {r:10.2f} / {o['median_ms']:10.2f} = {r / o['median_ms']:6.2f}x")
if "images_per_s" in ours and "images_per_s" in ref:
    print(f"   images/s  engine {ours['images_per_s']:.1f}, reference {ref['images_per_s']:.1f}")
PY
}

for w in "${widths[@]}"; do
  s=${steps:-$([ "$w" -ge 48 ] && [ "$device" = cpu ] && echo 5 || echo 10)}
  wu=${warmup:-$([ "$device" = cpu ] && echo 1 || echo 3)}
  echo "== width $w, $device, $s steps after $wu warmup =="
  "${engine[@]}" bench --device "$device" --width "$w" --steps "$s" --warmup "$wu" --epoch-images 0 --json "$out/ours_rl_$w.json"
  variants=("eager:")
  [ "$device" = cuda ] && variants+=("amp:--amp" "compile:--compile")
  for v in "${variants[@]}"; do
    name=${v%%:*} flags=${v#*:}
    "$python" bench/reference/torch_rlmixup.py --device "$device" --width "$w" --steps "$s" --warmup "$wu" $flags --json "$out/torch_rl_${name}_$w.json"
    ratios "$out/ours_rl_$w.json" "$out/torch_rl_${name}_$w.json" "RL-Mixup step, PyTorch $name, width $w"
  done
  if [ "$plain" = 1 ]; then
    dotnet build -c Release bench/RlMixup.Bench.csproj -v q -nologo >/dev/null
    dotnet bench/bin/Release/net10.0/RlMixup.Bench.dll step --width "$w" --steps "$s" --warmup "$wu" --json "$out/ours_plain_$w.json"
    "$python" bench/reference/torch_step.py --width "$w" --steps "$s" --warmup "$wu" --threads "$(nproc)" --json "$out/torch_plain_$w.json"
    ratios "$out/ours_plain_$w.json" "$out/torch_plain_$w.json" "plain step, width $w"
  fi
done
echo "JSON results in $out"
