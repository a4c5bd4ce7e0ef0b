"""What CPython's garbage collector costs a benchmark that runs the product in-process.

Runs another benchmark script in this process with a callback on every collection, and
at exit prints the process's CPU, the collections' CPU and share, how many of each
generation, and the longest. ``--tuned`` first sets the thresholds ``poolkeeper run`` sets
(``poolkeeper._gc``), so the two can be run one after the other on a noisy machine:

    PYTHONPATH=src .venv/bin/python benchmarks/gc_share.py [--tuned] \\
        benchmarks/relay_tip_1000.py --workers 1000 --blocks 8 --block-time 3s --idle 30 \\
        --loop uvloop
"""

from __future__ import annotations

import atexit
import gc
import runpy
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


class Collections:
    """CPU seconds of the collections, their count by generation and the longest."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.longest = 0.0
        self.by_generation = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
            return
        took = time.process_time() - self._started
        self.seconds += took
        self.longest = max(self.longest, took)
        self.by_generation[info["generation"]] += 1

    def report(self, label: str) -> None:
        cpu = time.process_time()
        print(
            f"[gc_share {label}] thresholds {gc.get_threshold()}: process CPU {cpu:.1f} s, "
            f"collections {self.seconds:.2f} s ({100 * self.seconds / max(cpu, 1e-9):.1f} %), "
            f"by generation {self.by_generation}, longest {self.longest * 1000:.0f} ms",
            flush=True,
        )


def main() -> None:
    args = sys.argv[1:]
    tuned = "--tuned" in args[:1]
    if tuned:
        args = args[1:]
        from poolkeeper._gc import tune_collector

        tune_collector()
    if not args:
        raise SystemExit(__doc__)
    collections = Collections()
    gc.callbacks.append(collections)
    atexit.register(collections.report, "tuned" if tuned else "default")
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")


if __name__ == "__main__":
    main()
