#!/usr/bin/env bash
# The whole GPU check in one bounded shot, run from the repository root on a machine with an
# NVIDIA GPU (no .NET needed there):
#
#   dotnet tool restore && dotnet cake --target=PublishGpu     # on a machine with .NET: artifacts/gpu/
#   scripts/gpu-check.sh [OUT_DIR]                             # on the GPU machine
#
# One deadline for everything (DEADLINE seconds, default 520, from the start): each step's own
# limit is cut to what is left, a step that cannot get its minimum is skipped, and the results are
# packed before the deadline by the script itself. The steps, in order:
#   probe        the environment: variables, ldconfig's CUDA libraries, the candidate folders,
#                nvidia-smi, the Python's torch with its CUDA and cuDNN versions, glibc, the CPU
#   bindings     `rlmixup info --bindings`: the engine's library search on this machine, loading nothing
#   preflight    scripts/cuda_preflight.py: each library opened with ctypes in that order, every bound symbol looked up
#   info         `rlmixup info --verbose`: each library's file and version, its companions and symbols, the device
#   selftest-tf32, selftest-fp32
#                every op, a training step, the RL-Mixup transform, determinism (rows written as they finish)
#   rerun-*      only when a self-test failed: its failing checks again with CUDA_LAUNCH_BLOCKING=1,
#                then under compute-sanitizer memcheck with the caching allocator off
#   bench        `rlmixup bench` at width 64 with a short CIFAR-shaped epoch
#   compare      bench/compare_torch.sh: the engine against PyTorch eager and AMP, then
#                torch.compile only when 200 s are left (skipped without a CUDA-enabled torch)
# cuDNN's and cuBLASLt's own logs go to the work folder, one file per step. OUT_DIR (default $OUT,
# else gpu-results/) receives exactly two files: gpu-check.tar.gz (every log, table and JSON) and
# summary.txt, written last (each step's exit code, seconds and limit, the failing self-test rows,
# the bench and comparison headlines).
#
# Environment: RLMIXUP (the engine; default artifacts/gpu/rlmixup), PYTHON (default python3),
# DEADLINE (seconds, default 520), BENCH_ARGS (default "--width 64 --steps 20 --warmup 5
# --epoch-images 5000"), COMPARE_WIDTH (default 64).
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
deadline=${DEADLINE:-520}
reserve=15            # seconds kept back for packing and the summary
kill_after=5
out=${1:-${OUT:-gpu-results}}
bin=${RLMIXUP:-artifacts/gpu/rlmixup}
python=${PYTHON:-python3}
bench_args=${BENCH_ARGS:---width 64 --steps 20 --warmup 5 --epoch-images 5000}
compare_width=${COMPARE_WIDTH:-64}
mkdir -p "$out" || { echo "error: cannot create $out" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX") || { echo "error: cannot create a work folder" >&2; exit 2; }
steps="$work/steps.txt"
: > "$steps"

left() { echo $(( deadline - (SECONDS - start) )); }
has() { command -v "$1" >/dev/null 2>&1; }

# step NAME MIN MAX COMMAND...: runs COMMAND with its output in $work/NAME.log, limited to MAX
# seconds or what the deadline leaves; skipped when that is under MIN. Records the outcome.
step() {
  local name=$1 min=$2 max=$3; shift 3
  local budget=$(( $(left) - reserve - kill_after ))
  (( budget > max )) && budget=$max
  if (( budget < min )); then
    printf '%-16s skipped: %ss left of the deadline, it needs %ss\n' "$name" "$(left)" "$min" | tee -a "$steps"
    return 99
  fi
  echo "== $name (limit ${budget}s, $(left)s left): $*"
  local t0=$SECONDS rc
  CUDNN_LOGLEVEL_DBG=${log_level_cudnn:-2} CUDNN_LOGDEST_DBG="$work/cudnn-$name.log" \
  CUBLASLT_LOG_LEVEL=${log_level_cublaslt:-2} CUBLASLT_LOG_FILE="$work/cublaslt-$name.log" \
    timeout --signal=TERM --kill-after=$kill_after "$budget" "$@" > "$work/$name.log" 2>&1
  rc=$?
  local status=ok
  (( rc == 124 || rc == 137 )) && status="TIMEOUT after ${budget}s"
  (( rc != 0 && rc != 124 && rc != 137 )) && status=FAIL
  printf '%-16s rc=%-3s %4ss of %4ss  %-8s %s\n' "$name" "$rc" "$((SECONDS - t0))" "$budget" "$status" "$*" | tee -a "$steps"
  tail -n 3 "$work/$name.log" | sed 's/^/    /'
  return $rc
}

skip() { printf '%-16s skipped: %s\n' "$1" "$2" | tee -a "$steps"; }

probe() {
  echo "## date";  date -u +%Y-%m-%dT%H:%M:%SZ
  echo "## package"; cat artifacts/gpu/COMMIT 2>/dev/null || echo "no artifacts/gpu/COMMIT"; ls -la "$(dirname "$bin")" 2>&1
  echo "## uname"; uname -a
  echo "## glibc"; ldd --version 2>&1 | head -1
  echo "## cpu"; grep -m1 'model name' /proc/cpuinfo; nproc; free -g 2>/dev/null | head -2
  echo "## environment"; env | grep -E '^(PATH|LD_LIBRARY_PATH|LD_PRELOAD|VIRTUAL_ENV|CONDA_PREFIX|CUDA[A-Z_]*|NVIDIA[A-Z_]*|PYTHON[A-Z_]*|RLMIXUP[A-Z_]*|HOME|USER)=' | sort
  echo "## ldconfig"; ldconfig -p 2>/dev/null | grep -E 'libcuda\.|libcublas|libcudnn|libnvrtc|libcudart' || echo "(none in ldconfig's cache)"
  echo "## python"; command -v "$python"; "$python" -c 'import sys; print(sys.version); print(sys.prefix)' 2>&1
  echo "## torch"
  "$python" - <<'PY' 2>&1
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(p.name, f"{p.total_memory >> 20} MiB", f"cc {p.major}.{p.minor}", p.multi_processor_count, "SMs")
PY
  echo "## candidate folders"
  local sp
  for sp in $("$python" -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null); do
    [ -d "$sp/nvidia" ] && ls -la "$sp"/nvidia/*/lib 2>&1 | head -80
  done
  ls -la /usr/local/cuda/lib64 /usr/local/nvidia/lib64 2>&1 | grep -E 'libcu|libnv|^/|cannot' | head -40
  ls -la /usr/lib/x86_64-linux-gnu/libcuda* /usr/lib64/libcuda* 2>&1 | head -10
  echo "## nvidia-smi"
  if has nvidia-smi; then nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv; else echo "nvidia-smi not found"; fi
  echo "## tools"; for t in compute-sanitizer nvcc ptxas; do printf '%s: ' "$t"; command -v "$t" || ls /usr/local/cuda/bin/$t 2>/dev/null || echo "not found"; done
}

# The checks of a self-test JSON-lines file that failed, as --filter terms (their ops); empty when none.
failing_checks() {
  "$python" - "$1" <<'PY' 2>/dev/null
import json, sys
ops = []
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except ValueError: continue
    if r.get("type") == "row" and not r.get("pass"):
        op = r["check"].split(": ")[0]
        if op.startswith("determinism"):
            op = r.get("detail", "").split(": ")[0]
        if op and op not in ops: ops.append(op)
    if r.get("type") == "summary" and r.get("context_lost"):
        op = r["context_lost"].removeprefix("context lost after ").split(" (")[0]
        if op not in ops: ops.append(op)
print(",".join(ops))
PY
}

# ---- the steps

if [ ! -e "$bin" ]; then
  echo "error: $bin not found; build it with: dotnet tool restore && dotnet cake --target=PublishGpu (or set RLMIXUP)" >&2
  skip engine "$bin not found"
else
  chmod +x "$bin" 2>/dev/null
fi

export -f probe has
export python bin
step probe 5 60 bash -c probe
if [ -x "$bin" ]; then
  if step bindings 3 20 "$bin" info --bindings "$work/bindings.json"; then
    if has "$python"; then step preflight 5 60 "$python" scripts/cuda_preflight.py "$work/bindings.json"
    else skip preflight "$python not found"; fi
  else skip preflight "no bindings plan"; fi
  step info 5 60 "$bin" info --verbose
  failed=()
  for mode in tf32 fp32; do
    flags=(); [ "$mode" = fp32 ] && flags=(--no-tf32)
    step "selftest-$mode" 20 150 "$bin" selftest --device cuda "${flags[@]}" --json "$work/selftest-$mode.jsonl"
    rc=$?
    if (( rc != 0 && rc != 2 && rc != 99 )) && [ -f "$work/selftest-$mode.jsonl" ]; then
      f=$(failing_checks "$work/selftest-$mode.jsonl")
      [ -n "$f" ] && failed+=("$mode:$f")
    fi
  done
  for entry in "${failed[@]}"; do
    mode=${entry%%:*} filter=${entry#*:}
    flags=(); [ "$mode" = fp32 ] && flags=(--no-tf32)
    CUDA_LAUNCH_BLOCKING=1 step "rerun-blocking-$mode" 15 90 "$bin" selftest --device cuda "${flags[@]}" --filter "$filter" --json "$work/rerun-blocking-$mode.jsonl"
    sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
    if [ -n "$sanitizer" ]; then
      RLMIXUP_CUDA_NO_CACHING=1 step "rerun-memcheck-$mode" 30 150 "$sanitizer" --tool memcheck --error-exitcode 9 --print-limit 50 \
        "$bin" selftest --device cuda "${flags[@]}" --filter "$filter"
    else skip "rerun-memcheck-$mode" "compute-sanitizer not found"; fi
  done
  log_level_cudnn=1 log_level_cublaslt=1 step bench 30 150 "$bin" bench --device cuda $bench_args --json "$work/bench.json"
  if has "$python" && "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    log_level_cudnn=1 log_level_cublaslt=1 step compare 60 240 env RLMIXUP="$bin" PYTHON="$python" OUT="$work/compare" \
      bench/compare_torch.sh --device cuda --steps 20 --warmup 5 --variants eager,amp "$compare_width"
    if (( $(left) - reserve >= 200 )); then
      log_level_cudnn=1 log_level_cublaslt=1 step compare-compile 60 200 env RLMIXUP="$bin" PYTHON="$python" OUT="$work/compare-compile" \
        bench/compare_torch.sh --device cuda --steps 20 --warmup 5 --variants compile "$compare_width"
    else skip compare-compile "$(left)s left, torch.compile needs 200"; fi
  else
    skip compare "$python has no CUDA-enabled torch"
  fi
fi

# ---- the results: everything in one tarball, then the summary, last

headline() { # the lines of a log worth reading first
  local f=$1 pattern=$2
  [ -f "$f" ] && grep -E "$pattern" "$f" | head -n "${3:-12}" | sed 's/^/  /'
}
find "$work" -type f -empty -delete
tar -C "$work" -czf "$out/gpu-check.tar.gz.tmp" . 2>/dev/null && mv "$out/gpu-check.tar.gz.tmp" "$out/gpu-check.tar.gz"
{
  echo "gpu-check: $(date -u +%Y-%m-%dT%H:%M:%SZ), $((SECONDS - start)) s of the ${deadline} s deadline"
  echo "package: $(cat artifacts/gpu/COMMIT 2>/dev/null || echo 'no artifacts/gpu/COMMIT')"
  echo "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi not found')"
  echo
  echo "steps (name, exit code, seconds of limit, outcome):"
  sed 's/^/  /' "$steps"
  echo
  echo "libraries (info):"; headline "$work/info.log" '^(driver|cublas|cudnn|device|backend cuda|memory|math)' 20
  echo "preflight:"; headline "$work/preflight.log" '^(driver|cublas|cudnn|preflight)|MISSING|FAILED|loaded, ' 20
  for mode in tf32 fp32; do
    echo "selftest $mode:"; headline "$work/selftest-$mode.log" '(FAIL|^selftest: [0-9a-z])' 30
  done
  for f in "$work"/rerun-*.log; do [ -f "$f" ] && { echo "$(basename "$f" .log):"; headline "$f" '(FAIL|^selftest:|ERROR SUMMARY|Invalid|of size)' 20; }; done
  echo "bench:"; headline "$work/bench.log" '^(RL-Mixup step|total|train|saliency|ppo|epoch|CIFAR)' 12
  echo "compare:"; headline "$work/compare.log" '(^==|total|step)' 20; headline "$work/compare-compile.log" '(^==|total)' 8
  echo
  echo "everything: gpu-check.tar.gz ($(du -k "$out/gpu-check.tar.gz" 2>/dev/null | cut -f1) KiB; tar -xzf to read)"
} > "$out/summary.txt.tmp"
mv "$out/summary.txt.tmp" "$out/summary.txt"
rm -rf "$work"
echo "== summary ($out/summary.txt)"
cat "$out/summary.txt"
