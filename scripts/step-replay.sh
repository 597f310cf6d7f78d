#!/usr/bin/env bash
# Step-level differential check of one training recipe: the engine trains and traces its first
# steps (same weights, same batches), then PyTorch replays them (scripts/replay_torch.py).
#
#   scripts/step-replay.sh [--data DIR] [--policy P] [--width W] [--steps N] [--full 1,10,100,500]
#                          [--seed S] [--lr-max LR] [--threads T] [--out DIR] [-- extra train flags]
#
# Defaults: the CIFAR-10 subset beside the checkout, input-mixup, width 16, 100 steps, full steps
# 1,10,50,100, seed 1. Exit code: the replay's (0 when every check passes).
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/cifar10-subset policy=input-mixup width=16 steps=100 full=1,10,50,100 seed=1 lr=0.2 threads=2 out=""
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --policy) policy=$2; shift 2 ;;
    --width) width=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --full) full=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --lr-max) lr=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "step-replay: unknown option $1" >&2; exit 2 ;;
  esac
done
out=${out:-$(mktemp -d /tmp/rlmixup-step-replay.XXXXXX)}
train_files=()
for f in "$data"/data_batch_*.bin "$data"/train.bin; do [[ -f $f ]] && train_files+=("$f"); done
[[ ${#train_files[@]} -gt 0 ]] || { echo "step-replay: no training batches (data_batch_*.bin or train.bin) in $data" >&2; exit 2; }
batches=$(( $(cat "${train_files[@]}" | wc -c) / 3073 / 100 ))
epochs=$(( (steps + batches - 1) / batches ))
dotnet build -c Release src/Engine -v q -nologo >/dev/null
dotnet src/Engine/bin/Release/net10.0/rlmixup.dll train --dataset cifar10 --data "$data" --policy "$policy" --width "$width" \
  --epochs "$epochs" --seed "$seed" --lr-max "$lr" --device cpu --threads "$threads" --no-live \
  --out "$out/run" --trace "$out/trace" --trace-steps "$steps" --trace-full "$full" "${extra[@]}" | tail -1
/usr/bin/python3 scripts/replay_torch.py "$out/trace" --check --threads "$threads" --data "$data" --json "$out/replay.json"
