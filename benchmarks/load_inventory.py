"""Load + validate 10,000 workers in 50 pools over 50 files (target: ≤ 1.5 s).

Writes a generated inventory to a temporary directory, loads it several times and
prints the median wall time and the process's peak RSS. For comparison it also
times the pure-Python composer fallback and ruamel's round-trip loader on the same
files (parse only), which is why the loader composes nodes instead.

    .venv/bin/python benchmarks/load_inventory.py [--runs 5] [--workers 10000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from poolkeeper.inventory import _yaml, load_inventory

POOLS = 50
FILES = 50


def generate(root: Path, workers: int) -> None:
    """An inventory shaped like a large operator's: one file per rack of workers."""
    accounts = ["accounts:", "  - {name: owner, role: owner, derivation: owner}"]
    pools = ["pools:"]
    for p in range(POOLS):
        accounts.append(f"  - {{name: op-{p:02}, role: operator, derivation: op//{p}}}")
        pools += [
            f"  - name: pool-{p:02}",
            f"    pid: {p}",
            "    owner: owner",
            f"    operator: op-{p:02}",
            "    cap: 10000000 PHA",
            "    default_stake: 5000 PHA",
        ]
    settings = ["settings:", "  network: devnet", "  chain: {endpoints: ['ws://127.0.0.1:9944']}"]
    (root / "settings.yaml").write_text("\n".join(settings) + "\n")
    (root / "accounts.yaml").write_text("\n".join(accounts) + "\n")
    (root / "pools.yaml").write_text("\n".join(pools) + "\n")
    (root / "workers").mkdir()
    per_file = workers // FILES
    for f in range(FILES):
        lines = [f"# rack {f}", "workers:"]
        for i in range(per_file):
            n = f * per_file + i
            lines += [
                f"  - name: w-{n:05}",
                f"    endpoint: http://10.{n // 250}.{n % 250}.1:8000",
                f"    pool: pool-{n % POOLS:02}",
                "    stake: 5000 PHA" if n % 2 else "    state: computing",
                f"    labels: {{rack: r{f:02}, slot: '{i:03}'}}",
            ]
        (root / "workers" / f"rack-{f:02}.yaml").write_text("\n".join(lines) + "\n")


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process over ``runs`` calls."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        generate(root, args.workers)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        desired = load_inventory(root)
        assert len(desired.workers) == args.workers and len(desired.pools) == POOLS
        median, median_cpu = timed(lambda: load_inventory(root), args.runs)
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"workers: {args.workers} in {POOLS} pools over {FILES} files")
        print(f"composer: {'C (ruamel.yaml.clib)' if _yaml._CParser else 'pure Python'}")
        print(
            f"load+validate median of {args.runs}: {median:.3f} s wall, {median_cpu:.3f} s CPU "
            f"(target ≤ 1.5 s)"
        )
        print(f"peak RSS: {rss_after:.0f} MB (before loading: {rss_before:.0f} MB)")
        if _yaml._CParser is not None:
            c_parser = _yaml._CParser
            _yaml._CParser = None
            pure, _ = timed(lambda: load_inventory(root), 1)
            _yaml._CParser = c_parser
            print(f"same with the pure-Python composer: {pure:.3f} s")
        from ruamel.yaml import YAML

        texts = [p.read_text() for p in sorted(root.rglob("*.yaml"))]
        yaml = YAML(typ="rt")
        round_trip, _ = timed(lambda: [yaml.load(t) for t in texts], 1)
        print(f"ruamel round-trip parse alone (no validation): {round_trip:.3f} s")


if __name__ == "__main__":
    main()
