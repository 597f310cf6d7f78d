#!/usr/bin/env python3
"""Summarises a speedscope file written by dotnet-trace (evented profiles, one per thread): the
wall time of the busiest thread (the main one) by method, inclusive, each method counted once per
stack even when it recurses. Usage: speedscope_top.py FILE [--top N] [--all] (--all keeps frames
outside the project: runtime, BCL)."""
import argparse
import collections
import json
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--all", action="store_true", help="keep frames outside the RlMixup assemblies")
    args = ap.parse_args()
    try:
        doc = json.load(open(args.file))
        frames = [f["name"] for f in doc["shared"]["frames"]]
        profiles = [p for p in doc["profiles"] if p.get("type") == "evented"]
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {args.file} is not a speedscope file from dotnet-trace ({e})", file=sys.stderr)
        return 2
    if not profiles:
        print(f"error: {args.file} holds no evented (per-thread) profile", file=sys.stderr)
        return 2

    def inclusive(profile):
        total = collections.Counter()
        stack, last = [], None
        for e in profile["events"]:
            t = e["at"]
            if stack and last is not None:
                for f in set(stack):
                    total[f] += t - last
            last = t
            if e["type"] == "O":
                stack.append(e["frame"])
            elif stack:
                stack.pop()
        return total, (profile["endValue"] - profile["startValue"])

    main_profile = max(profiles, key=lambda p: len(p["events"]))
    total, span = inclusive(main_profile)
    unit = main_profile.get("unit", "milliseconds")
    print(f"{main_profile.get('name', 'thread')}: {span:.0f} {unit} of wall time; inclusive time by method")
    shown = 0
    for f, w in total.most_common():
        name = frames[f]
        if not args.all and "RlMixup" not in name:
            continue
        print(f"{w:10.0f} {100 * w / span:5.1f}%  {name[:150]}")
        shown += 1
        if shown == args.top:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
