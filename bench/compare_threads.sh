#!/usr/bin/env bash
# The engine on one thread against all of this machine's threads, phase by phase, in ONE
# invocation: runs alternate (N threads, 1 thread, N threads, …) so that a burst of load on a
# shared host hits both, and each phase reports the median over the rounds and the speed-up.
#
#   bench/compare_threads.sh [--rounds N] [--steps N] [--warmup N] [--threads N] [widths...]
#
# For every width (default 16): the RL-Mixup step (`rlmixup bench`) and the plain training step
# (the bench project's `step`). A speed-up below 1 means a phase's parallel regions cost more
# than they give (the PPO update is the median of 3 updates). The engine is $RLMIXUP if set, else
# a Release build of src/Engine. JSON results are kept in $OUT (default a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 steps=6 warmup=2 threads=$(nproc) widths=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; exit 2 ;;
    *) widths+=("$1"); shift ;;
  esac
done
[ ${#widths[@]} -gt 0 ] || widths=(16)
for v in "$rounds" "$steps" "$threads"; do
  case "$v" in ''|*[!0-9]*|0) echo "error: --rounds, --steps and --threads take positive integers" >&2; exit 2 ;; esac
done
python=${PYTHON:-python3}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
if [ -n "${RLMIXUP:-}" ]; then engine=($RLMIXUP)
else
  dotnet build -c Release src/Engine -v q -nologo >/dev/null
  engine=(dotnet src/Engine/bin/Release/net10.0/rlmixup.dll)
fi
dotnet build -c Release bench/RlMixup.Bench.csproj -v q -nologo >/dev/null

for w in "${widths[@]}"; do
  echo "== width $w: $threads threads against 1, $steps steps after $warmup warmup, $rounds rounds =="
  many_rl="" one_rl="" many_plain="" one_plain=""
  for r in $(seq 1 "$rounds"); do
    for t in "$threads" 1; do
      "${engine[@]}" bench --device cpu --threads "$t" --width "$w" --steps "$steps" --warmup "$warmup" --epoch-images 0 --ppo-repeats 3 \
        --json "$out/rl_${w}_t${t}_r$r.json" >/dev/null
      dotnet bench/bin/Release/net10.0/RlMixup.Bench.dll step --threads "$t" --width "$w" --steps "$steps" --warmup "$warmup" \
        --json "$out/plain_${w}_t${t}_r$r.json" >/dev/null
    done
    many_rl+=" $out/rl_${w}_t${threads}_r$r.json" one_rl+=" $out/rl_${w}_t1_r$r.json"
    many_plain+=" $out/plain_${w}_t${threads}_r$r.json" one_plain+=" $out/plain_${w}_t1_r$r.json"
  done
  "$python" bench/ratios.py "$many_rl" "$one_rl" "RL-Mixup step, width $w" "$threads-threads" "1-thread"
  "$python" bench/ratios.py "$many_plain" "$one_plain" "plain step, width $w" "$threads-threads" "1-thread"
done
echo "JSON results in $out"
