#!/usr/bin/env bash
# Runs the engine and the PyTorch reference side by side, in ONE invocation on one machine, and
# prints the ratio of their median times (> 1 means the engine is faster).
#
#   bench/compare_torch.sh [--device cpu|cuda] [--steps N] [--warmup N] [--rounds N] [--ppo-repeats N] [--variants LIST] [--plain] [widths...]
#
# For every width (default: 16 64):
#   - the RL-Mixup step, phase by phase: `rlmixup bench` against bench/reference/torch_rlmixup.py;
#     on cuda the reference runs three variants: eager fp32, AMP bf16 channels_last, torch.compile
#     (--variants eager,amp,compile chooses among them; the CPU has eager only);
#   - with --plain also the plain training step (bench project's `step` against torch_step.py, CPU).
# With --rounds N (default 1) the two programs run alternately N times (engine, reference, engine,
# …), so that a burst of load on a shared host hits both; each phase then reports the median over
# the rounds of each side's median, their ratio, and the range of the per-round ratios.
# --ppo-repeats N (default 3) times N PPO updates on each side (after one untimed warmup update) and
# reports their median: one update is a single sample, too few on a noisy host.
# The engine is $RLMIXUP if set, else artifacts/gpu/rlmixup if it exists (the NativeAOT build, no
# .NET needed), else a Release build of src/Engine. PyTorch is $PYTHON (default /usr/bin/python3,
# Debian's python3-torch on the CPU). JSON results are kept in $OUT (default a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."

device=cpu steps="" warmup="" plain=0 rounds=1 ppo_repeats=3 widths=() variant_list=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --ppo-repeats) ppo_repeats="$2"; shift 2 ;;
    --plain) plain=1; shift ;;
    --variants) variant_list="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; exit 2 ;;
    *) widths+=("$1"); shift ;;
  esac
done
[ ${#widths[@]} -gt 0 ] || widths=(16 64)
case "$device" in cpu|cuda) ;; *) echo "error: --device must be cpu or cuda" >&2; exit 2 ;; esac
case "$rounds" in ''|*[!0-9]*|0) echo "error: --rounds must be a positive integer" >&2; exit 2 ;; esac
case "$ppo_repeats" in ''|*[!0-9]*|0) echo "error: --ppo-repeats must be a positive integer" >&2; exit 2 ;; esac
[ -n "$variant_list" ] || variant_list=$([ "$device" = cuda ] && echo eager,amp,compile || echo eager)
variants=()
for v in ${variant_list//,/ }; do
  case "$v" in
    eager) variants+=("eager:") ;;
    amp|compile) [ "$device" = cuda ] || { echo "error: --variants $v needs --device cuda" >&2; exit 2; }; variants+=("$v:--$v") ;;
    *) echo "error: --variants: unknown variant $v (eager, amp, compile)" >&2; exit 2 ;;
  esac
done
[ ${#variants[@]} -gt 0 ] || { echo "error: --variants names none" >&2; exit 2; }
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

ratios() { # ratios "OURS.json..." "REF.json..." LABEL (one file per round on each side)
  "$python" bench/ratios.py "$1" "$2" "$3" engine reference
}

for w in "${widths[@]}"; do
  s=${steps:-$([ "$w" -ge 48 ] && [ "$device" = cpu ] && echo 5 || echo 10)}
  wu=${warmup:-$([ "$device" = cpu ] && echo 1 || echo 3)}
  echo "== width $w, $device, $s steps after $wu warmup =="
  declare -A refs=()
  ours=""
  for r in $(seq 1 "$rounds"); do
    "${engine[@]}" bench --device "$device" --width "$w" --steps "$s" --warmup "$wu" --epoch-images 0 --ppo-repeats "$ppo_repeats" --json "$out/ours_rl_${w}_r$r.json"
    ours+=" $out/ours_rl_${w}_r$r.json"
    for v in "${variants[@]}"; do
      name=${v%%:*} flags=${v#*:}
      "$python" bench/reference/torch_rlmixup.py --device "$device" --width "$w" --steps "$s" --warmup "$wu" --ppo-repeats "$ppo_repeats" $flags --json "$out/torch_rl_${name}_${w}_r$r.json"
      refs[$name]+=" $out/torch_rl_${name}_${w}_r$r.json"
    done
  done
  for v in "${variants[@]}"; do
    name=${v%%:*}
    ratios "$ours" "${refs[$name]}" "RL-Mixup step, PyTorch $name, width $w"
  done
  unset refs
  if [ "$plain" = 1 ]; then
    dotnet build -c Release bench/RlMixup.Bench.csproj -v q -nologo >/dev/null
    ours="" ref=""
    for r in $(seq 1 "$rounds"); do
      dotnet bench/bin/Release/net10.0/RlMixup.Bench.dll step --width "$w" --steps "$s" --warmup "$wu" --json "$out/ours_plain_${w}_r$r.json"
      "$python" bench/reference/torch_step.py --width "$w" --steps "$s" --warmup "$wu" --threads "$(nproc)" --json "$out/torch_plain_${w}_r$r.json"
      ours+=" $out/ours_plain_${w}_r$r.json" ref+=" $out/torch_plain_${w}_r$r.json"
    done
    ratios "$ours" "$ref" "plain step, width $w"
  fi
done
echo "JSON results in $out"
