#!/usr/bin/env bash
# The whole GPU check in one command, run from the repository root on a machine with an NVIDIA GPU:
#
#   dotnet tool restore && dotnet cake --target=PublishGpu     # on a machine with .NET: artifacts/gpu/
#   scripts/gpu-check.sh [OUT_DIR]                             # on the GPU machine (no .NET needed)
#
# It runs, each under its own time limit, and keeps going when one fails:
#   1. nvidia-smi and `rlmixup info` (device, driver, cuDNN and cuBLAS versions, library paths);
#   2. `rlmixup selftest --device cuda` with TF32 on, then off (every op, a training step, the
#      RL-Mixup transform and determinism against the CPU reference);
#   3. `rlmixup bench --device cuda` at width 64 (per-phase medians and a CIFAR-shaped epoch);
#   4. bench/compare_torch.sh --device cuda 64: the engine against PyTorch eager fp32, AMP bf16
#      channels_last and torch.compile in one invocation (skipped when PyTorch has no CUDA).
# Everything lands in OUT_DIR (default: gpu-results/): the tables as text and JSON, and
# summary.txt with each step's exit code. Copy the figures into docs/gpu-runs.md with the date.
# Environment: RLMIXUP (the engine; default artifacts/gpu/rlmixup), PYTHON (default python3),
# LIMIT_SCALE (multiplies every time limit; default 1).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-results}}
mkdir -p "$out"
bin=${RLMIXUP:-artifacts/gpu/rlmixup}
python=${PYTHON:-python3}
scale=${LIMIT_SCALE:-1}
summary="$out/summary.txt"
: > "$summary"

if [ ! -x "$bin" ]; then
  echo "error: $bin not found; build it with: dotnet tool restore && dotnet cake --target=PublishGpu (or set RLMIXUP)" >&2
  exit 2
fi

step() { # step NAME SECONDS COMMAND...
  local name=$1 limit=$(( $2 * scale )); shift 2
  echo "== $name (limit ${limit}s): $*"
  local t0=$SECONDS
  timeout --signal=INT --kill-after=10 "$limit" "$@" > >(tee "$out/$name.txt") 2> >(tee "$out/$name.err" >&2)
  local rc=$?
  printf '%-22s rc=%-3s %4ss  %s\n' "$name" "$rc" "$((SECONDS - t0))" "$*" >> "$summary"
  return 0
}

{ date -u +%Y-%m-%dT%H:%M:%SZ; git rev-parse HEAD 2>/dev/null || echo "commit unknown"; } > "$out/run.txt"
step nvidia-smi 30 nvidia-smi
step info 60 "$bin" info
step selftest-tf32 120 "$bin" selftest --device cuda --json "$out/selftest-tf32.json"
step selftest-fp32 120 "$bin" selftest --device cuda --no-tf32 --json "$out/selftest-fp32.json"
step bench-w64 150 "$bin" bench --device cuda --width 64 --steps 20 --warmup 5 --json "$out/bench-w64.json"
if "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  step compare-w64 300 env RLMIXUP="$bin" PYTHON="$python" OUT="$out/compare" bench/compare_torch.sh --device cuda --steps 20 --warmup 5 64
else
  echo "compare-w64            skipped: $python has no CUDA-enabled torch" >> "$summary"
fi
echo "== summary ($out/summary.txt)"
cat "$summary"
