#!/usr/bin/env python3
"""Open the CUDA libraries as the engine would, with Python's ctypes instead of .NET.

    scripts/cuda_preflight.py PLAN.json      # PLAN.json from `rlmixup info --bindings PLAN.json`

The plan is the engine's own search on this machine (every candidate file in the order the engine
tries them, the companions it loads first, the version call and every symbol it binds). For each
library this script walks the candidates in that order: a missing file is noted, a file is opened
with dlopen (RTLD_GLOBAL, companions first, so that a library's dependencies resolve by soname as
they do in the engine), its version is read through the same call, and every bound symbol is looked
up. It prints one block per library and exits 0 when each library has a candidate that loads with
an accepted version and exports every symbol, 1 otherwise. It is independent of the engine's
loader: when the engine cannot start or says nothing useful, this still names the file, the
loader's error or the missing symbol.
"""
import ctypes
import json
import os
import sys


def version_of(name, lib):
    """(major, text) through the library's own version call; raises on failure."""
    if name == "driver":
        v = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(v)) != 0:
            raise OSError("cuDriverGetVersion failed")
        return v.value // 1000, f"CUDA {v.value // 1000}.{v.value % 1000 // 10}"
    if name == "cublas":
        parts = []
        for prop in (0, 1, 2):  # MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
            v = ctypes.c_int(0)
            if lib.cublasGetProperty(prop, ctypes.byref(v)) != 0:
                raise OSError("cublasGetProperty failed")
            parts.append(v.value)
        return parts[0], "cuBLAS {}.{}.{}".format(*parts)
    if name == "cudnn":
        lib.cudnnGetVersion.restype = ctypes.c_size_t
        v = lib.cudnnGetVersion()
        major, minor, patch = (v // 10000, v // 100 % 100, v % 100) if v >= 10000 else (v // 1000, v // 100 % 10, v % 100)
        return major, f"cuDNN {major}.{minor}.{patch}"
    raise ValueError(name)


def accepted(name, major):
    return {"driver": True, "cublas": major in (12, 13), "cudnn": major == 9}[name]


def open_library(path):
    return ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_GLOBAL)


def companions(entry, folder):
    """Load each companion (the first alternative found in the folder, else in any searched folder); report each."""
    lines = []
    for alternatives in entry["companions"]:
        found = None
        for name in alternatives:
            for d in [folder] + entry["folders"]:
                if d and os.path.exists(os.path.join(d, name)):
                    found = os.path.join(d, name)
                    break
            if found:
                break
        if not found:
            lines.append(f"    companion {'|'.join(alternatives)}: not found")
            continue
        try:
            open_library(found)
            lines.append(f"    companion {found}: loaded")
        except OSError as e:
            lines.append(f"    companion {found}: FAILED: {e}")
    return lines


def check(entry):
    name = entry["name"]
    print(f"{name}: {entry['display']}, {len(entry['symbols'])} bound symbols, {len(entry['candidates'])} candidates")
    for c in entry["candidates"]:
        path, folder = c["path"], c["folder"]
        if folder is not None and not os.path.exists(path):
            print(f"  {path}: missing")
            continue
        notes = companions(entry, folder) if folder is not None else []
        try:
            lib = open_library(path)
        except OSError as e:
            print(f"  {path}: dlopen failed: {e}")
            for n in notes:
                print(n)
            continue
        try:
            major, text = version_of(name, lib)
        except (OSError, AttributeError) as e:
            print(f"  {path}: loaded, but its version could not be read: {e}")
            continue
        if not accepted(name, major):
            print(f"  {path}: {text}; the engine needs {entry['needs']}")
            continue
        missing = [s for s in entry["symbols"] if not hasattr(lib, s)]
        print(f"  {path}: loaded, {text}")
        for n in notes:
            print(n)
        if missing:
            print(f"  MISSING {len(missing)} of {len(entry['symbols'])} symbols: {', '.join(missing)}")
            return False
        print(f"  all {len(entry['symbols'])} symbols present")
        return True
    print(f"  no candidate loads: the engine will say '{entry['display']} not found'")
    return False


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1]) as f:
            plan = json.load(f)
    except (OSError, ValueError) as e:
        print(f"error: {sys.argv[1]}: {e}", file=sys.stderr)
        return 2
    ok = True
    for entry in plan["libraries"]:
        ok = check(entry) and ok
    print("preflight: every library loads with every symbol" if ok else "preflight: FAILED (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
