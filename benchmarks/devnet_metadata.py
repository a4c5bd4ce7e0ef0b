"""How long the devnet chain takes to build its V14 metadata (target: under 0.5 s, cached after).

Run: .venv/bin/python benchmarks/devnet_metadata.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from poolkeeper_devnet.chain._metadata import build_metadata


def main() -> None:
    cold: list[float] = []
    for _ in range(20):
        build_metadata.cache_clear()
        start = time.perf_counter()
        data = build_metadata()
        cold.append(time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(1000):
        build_metadata()
    cached = (time.perf_counter() - start) / 1000
    print(f"metadata size: {len(data)} bytes")
    print(f"build (uncached), median of 20: {statistics.median(cold) * 1000:.1f} ms")
    print(f"build (cached), mean of 1000: {cached * 1e6:.2f} µs")


if __name__ == "__main__":
    main()
