"""Compare two tracemalloc dumps of ``poolkeeper run`` (``POOLKEEPER_TRACEMALLOC``).

Printed: total traced size of each, then the allocation sites (by traceback) that grew most
between them, so a leak shows as a site that keeps growing from dump to dump.

    .venv/bin/python benchmarks/memdiff.py OLD.snap NEW.snap [--top 15] [--frames 6]
"""

from __future__ import annotations

import argparse
import tracemalloc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--key", default="traceback", choices=["traceback", "lineno", "filename"])
    args = parser.parse_args()
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    old = tracemalloc.Snapshot.load(args.old).filter_traces(ignore)
    new = tracemalloc.Snapshot.load(args.new).filter_traces(ignore)
    total_old = sum(s.size for s in old.statistics("filename"))
    total_new = sum(s.size for s in new.statistics("filename"))
    print(f"traced: {total_old / 1e6:.1f} MB -> {total_new / 1e6:.1f} MB")
    for stat in new.compare_to(old, args.key)[: args.top]:
        print(
            f"{stat.size_diff / 1e3:+9.1f} kB  now {stat.size / 1e3:9.1f} kB"
            f"  {stat.count_diff:+7d} blocks"
        )
        for line in stat.traceback.format(limit=args.frames, most_recent_first=True):
            print("    " + line.strip())


if __name__ == "__main__":
    main()
