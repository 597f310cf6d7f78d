#!/usr/bin/env bash
# PTX of the CUDA kernels. Every src/Kernels/<name>.cu has a committed src/Core/Cuda/ptx/<name>.ptx,
# which the build embeds (src/Core/Ptx.targets; it never compiles the kernels itself).
#
#   scripts/ptx.sh update   regenerate src/Core/Cuda/ptx/*.ptx from src/Kernels (orphans removed)
#   scripts/ptx.sh check    fail if a committed .ptx is stale, missing or orphaned (CI)
#   scripts/ptx.sh ptxas    assemble every committed .ptx for sm_80 and sm_90; print registers,
#                           shared memory and spills per kernel; fail on any ptxas error
#
# clang: $RLMIXUP_CLANG, else clang++-14, else clang++ of version >= 14. The flags are read from
# src/Core/Ptx.targets. The committed PTX comes from clang 14; another major version emits
# different text, which `check` reports as stale.
#
# ptxas: $RLMIXUP_PTXAS, else ptxas on PATH, else the one in Debian's non-free nvidia-cuda-toolkit
# package (CUDA 11.8). That package is downloaded once, not installed: a private apt configuration
# (the system's Debian sources with contrib and non-free added) fetches the .deb, and only ptxas
# is kept, in ${XDG_CACHE_HOME:-$HOME/.cache}/rlmixup/cuda-toolkit. The system's apt setup is
# left untouched.
#
# sm_90: clang 14 emits `.version 7.0` / `.target sm_80` (it rejects sm_90). ptxas 11.8 assembles
# that PTX as it is for -arch=sm_90, just as the driver JIT-compiles it on an H100, so the file
# is not rewritten. Rewriting only `.target sm_90` fails ("PTX .version 7.0 does not support
# .target sm_90"); it would also need `.version 7.8`.
set -euo pipefail
cd "$(dirname "$0")/.."

KERNELS=src/Kernels
COMMITTED=src/Core/Cuda/ptx
ARCHES=(sm_80 sm_90)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/rlmixup/cuda-toolkit"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rlmixup-ptx.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

die() { echo "error: $*" >&2; exit 1; }

usage() {
  sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The sources, sorted: src/Kernels/*.cu (none is fine).
sources() { find "$KERNELS" -maxdepth 1 -name '*.cu' 2>/dev/null | LC_ALL=C sort; }

clang_major() { { "$1" --version 2>/dev/null || true; } | sed -n 's/.*clang version \([0-9][0-9]*\)\..*/\1/p' | head -n1; }

# Sets CLANG, as src/Core/Ptx.targets does.
find_clang() {
  local c major
  for c in ${RLMIXUP_CLANG:-clang++-14 clang++}; do
    major=$(clang_major "$c")
    if [[ -n $major && $major -ge 14 ]]; then
      CLANG=$c
      [[ $major == 14 ]] || echo "note: $c is clang $major; the committed PTX comes from clang 14" >&2
      return
    fi
    [[ -z ${RLMIXUP_CLANG:-} ]] || die "RLMIXUP_CLANG=$RLMIXUP_CLANG is not a clang++ of version 14 or later"
  done
  die "no clang++ of version 14 or later (tried clang++-14, clang++): apt-get install clang-14, or set RLMIXUP_CLANG"
}

# The clang flags, from their one definition in src/Core/Ptx.targets.
clang_flags() {
  local flags
  flags=$(sed -n 's:.*<RlMixupClangFlags>\(.*\)</RlMixupClangFlags>.*:\1:p' src/Core/Ptx.targets)
  [[ -n $flags ]] || die "no <RlMixupClangFlags> line in src/Core/Ptx.targets"
  echo "$flags"
}

# compile_all OUTDIR: every .cu to OUTDIR/<name>.ptx.
compile_all() {
  local out=$1 cu flags
  find_clang
  flags=$(clang_flags)
  mkdir -p "$out"
  while read -r cu; do
    [[ -n $cu ]] || continue
    # shellcheck disable=SC2086 # the flags are a word list
    "$CLANG" $flags -o "$out/$(basename "$cu" .cu).ptx" "$cu" || die "clang failed on $cu"
  done < <(sources)
}

cmd_update() {
  local f n=0 tmp=$TMP
  compile_all "$tmp"
  mkdir -p "$COMMITTED"
  for f in "$COMMITTED"/*.ptx; do
    [[ -e $f ]] || continue
    [[ -e $tmp/$(basename "$f") ]] || { rm "$f"; echo "removed $f (no $KERNELS/$(basename "$f" .ptx).cu)"; }
  done
  for f in "$tmp"/*.ptx; do
    [[ -e $f ]] || continue
    if ! cmp -s "$f" "$COMMITTED/$(basename "$f")"; then
      cp "$f" "$COMMITTED/"; echo "updated $COMMITTED/$(basename "$f")"
    fi
    n=$((n + 1))
  done
  echo "$n PTX module(s) in $COMMITTED, made by $CLANG"
}

cmd_check() {
  local f name bad=0 n=0 tmp=$TMP
  compile_all "$tmp"
  for f in "$tmp"/*.ptx; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .ptx); n=$((n + 1))
    if [[ ! -e $COMMITTED/$name.ptx ]]; then
      echo "error: $COMMITTED/$name.ptx is missing (for $KERNELS/$name.cu); fix: scripts/ptx.sh update, then commit it" >&2; bad=1
    elif ! cmp -s "$f" "$COMMITTED/$name.ptx"; then
      echo "error: $COMMITTED/$name.ptx is stale (differs from $KERNELS/$name.cu compiled by $CLANG); fix: scripts/ptx.sh update, then commit it" >&2; bad=1
    fi
  done
  for f in "$COMMITTED"/*.ptx; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .ptx)
    [[ -e $tmp/$name.ptx ]] || { echo "error: $f is orphaned (no $KERNELS/$name.cu); fix: scripts/ptx.sh update, then commit the removal" >&2; bad=1; }
  done
  [[ $bad == 0 ]] || exit 1
  echo "PTX up to date: $n module(s) in $COMMITTED match $KERNELS ($CLANG)"
}

# Downloads Debian's nvidia-cuda-toolkit .deb with a private apt configuration and keeps its ptxas.
fetch_ptxas() {
  local work src O
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    die "ptxas not found and this is not a Debian system: put ptxas (CUDA 11.8 or later) on PATH or set RLMIXUP_PTXAS"
  work=$TMP/apt
  mkdir -p "$work/parts" "$work/lists/partial" "$work/cache/archives/partial"
  # The system's Debian sources with the component list changed (deb822 or one-line format).
  src=/etc/apt/sources.list.d/debian.sources
  if [[ -f $src ]]; then
    awk '/^Components:/ && !/non-free( |$)/ { $0 = $0 " contrib non-free" } { print }' "$src" > "$work/parts/debian.sources"
  fi
  if [[ ! -s $work/parts/debian.sources && -f /etc/apt/sources.list ]]; then
    awk '/^deb / && !/non-free( |$)/ { $0 = $0 " contrib non-free" } /^deb / { print }' /etc/apt/sources.list > "$work/parts/debian.list"
  fi
  [[ -s $work/parts/debian.sources || -s $work/parts/debian.list ]] ||
    die "no Debian apt sources found (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list)"
  O=(-qq -o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$work/parts"
     -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache")
  # As root, apt would hand the download to the _apt user, who cannot write into $work.
  [[ $(id -u) != 0 ]] || O+=(-o APT::Sandbox::User=root)
  echo "fetching ptxas: Debian package nvidia-cuda-toolkit (non-free), unpacked into $CACHE" >&2
  apt-get "${O[@]}" update >&2 || die "apt-get update with contrib/non-free failed"
  (cd "$work" && apt-get "${O[@]}" download nvidia-cuda-toolkit >&2) || die "apt-get download nvidia-cuda-toolkit failed"
  mkdir -p "$work/x"
  dpkg-deb --fsys-tarfile "$work"/nvidia-cuda-toolkit_*.deb | tar -x -C "$work/x" ./usr/bin/ptxas ||
    die "no usr/bin/ptxas in the nvidia-cuda-toolkit package"
  mkdir -p "$CACHE/bin"
  mv "$work/x/usr/bin/ptxas" "$CACHE/bin/ptxas"
}

# Sets PTXAS.
find_ptxas() {
  if [[ -n ${RLMIXUP_PTXAS:-} ]]; then PTXAS=$RLMIXUP_PTXAS
  elif command -v ptxas >/dev/null; then PTXAS=$(command -v ptxas)
  else
    [[ -x $CACHE/bin/ptxas ]] || fetch_ptxas
    PTXAS=$CACHE/bin/ptxas
  fi
  "$PTXAS" --version >/dev/null 2>&1 || die "$PTXAS does not run"
  local arch help
  help=$("$PTXAS" --help)
  for arch in "${ARCHES[@]}"; do
    grep -q "'$arch'" <<<"$help" ||
      die "$PTXAS ($("$PTXAS" --version | awk '/release/')) cannot assemble for $arch: it needs CUDA 11.8 or later"
  done
}

# Per kernel of one ptxas -v log: "kernel registers smem stack spill-stores spill-loads".
parse_ptxas() {
  awk '
    /Compiling entry function/ { split($0, q, "'\''"); kernel = q[2]; stack = st = ld = 0 }
    /bytes stack frame/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "bytes" && $(i+2) == "stack") stack = $i
                                                      if ($(i+2) == "spill" && $(i+3) ~ /^stores/) st = $i
                                                      if ($(i+2) == "spill" && $(i+3) ~ /^loads/) ld = $i } }
    /Used [0-9]+ registers/ { regs = 0; smem = 0
      for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^registers/) regs = $i; if ($(i+2) ~ /^smem/) smem = $i }
      if (kernel != "") print kernel, regs, smem, stack, st, ld; kernel = "" }'
}

cmd_ptxas() {
  local files=() f arch log rows="" bad=0
  for f in "$COMMITTED"/*.ptx; do [[ -e $f ]] && files+=("$f"); done
  if [[ ${#files[@]} == 0 ]]; then echo "no PTX in $COMMITTED: nothing to assemble"; return; fi
  find_ptxas
  echo "$("$PTXAS" --version | awk '/release/') ($PTXAS)"
  for f in "${files[@]}"; do
    for arch in "${ARCHES[@]}"; do
      if ! log=$("$PTXAS" -arch="$arch" -v -o /dev/null "$f" 2>&1); then
        echo "error: ptxas -arch=$arch failed on $f:" >&2; echo "$log" >&2; bad=1; continue
      fi
      grep -i 'warning' <<<"$log" >&2 || true
      rows+=$(parse_ptxas <<<"$log" | sed "s/^/$(basename "$f" .ptx) $arch /")$'\n'
    done
  done
  [[ $bad == 0 ]] || die "ptxas failed (see above)"
  printf '%-12s %-36s %-6s %5s %10s %6s %12s %11s\n' module kernel arch regs smem_bytes stack spill_stores spill_loads
  # One row per module, kernel and arch, the two arches of a kernel side by side.
  LC_ALL=C sort -k1,1 -k3,3 -k2,2 <<<"${rows%$'\n'}" | while read -r module arch kernel regs smem stack st ld; do
    printf '%-12s %-36s %-6s %5s %10s %6s %12s %11s%s\n' "$module" "$kernel" "$arch" "$regs" "$smem" "$stack" "$st" "$ld" \
      "$([[ $st != 0 || $ld != 0 ]] && echo '  <- spills')"
  done
}

case "${1:-}" in
  update) cmd_update ;;
  check) cmd_check ;;
  ptxas) cmd_ptxas ;;
  *) usage ;;
esac
