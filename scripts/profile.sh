#!/usr/bin/env bash
# Profiles one engine or bench command with dotnet-trace's thread-time sampler (~100 Hz stacks of
# every managed thread) and prints where the main thread's wall time goes, by method, inclusive.
#
#   scripts/profile.sh [--top N] [--out DIR] -- COMMAND [ARGS...]
#
# COMMAND is an engine or bench command line as run from the repository root, e.g.
#   scripts/profile.sh -- dotnet bench/bin/Release/net10.0/RlMixup.Bench.dll ppo --epochs 2 --steps 200
#   scripts/profile.sh --top 40 -- dotnet src/Engine/bin/Release/net10.0/rlmixup.dll bench --width 16 --steps 4
# (build them first with `dotnet build -c Release bench` or `... src/Engine`). The trace and its
# speedscope conversion stay in DIR (default a temporary folder) for https://www.speedscope.app.
# Inclusive time on the main thread answers "which call is slow"; worker threads' time shows
# under the main thread's call that waits for them (Parallel.For and friends).
set -euo pipefail
cd "$(dirname "$0")/.."

top=30 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --top) top="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (the command to profile goes after --)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "error: no command to profile (put it after --)" >&2; exit 2; }
case "$top" in ''|*[!0-9]*|0) echo "error: --top must be a positive integer" >&2; exit 2 ;; esac
python=${PYTHON:-python3}
out=${out:-$(mktemp -d)}
mkdir -p "$out"

dotnet tool restore >/dev/null
dotnet dotnet-trace collect --profile dotnet-sampled-thread-time --format Speedscope \
  -o "$out/trace.nettrace" -- "$@" >"$out/collect.log" 2>&1 || { tail -5 "$out/collect.log" >&2; echo "error: dotnet-trace failed (log: $out/collect.log)" >&2; exit 1; }
"$python" scripts/speedscope_top.py "$out/trace.speedscope.json" --top "$top"
echo "trace: $out/trace.nettrace, speedscope: $out/trace.speedscope.json"
