"""10,000 workers over 50 pools at genesis: pallet load, chain start and query_map speed.

Targets (issue 3): genesis loads in a few seconds; query_map of PhalaRegistry.Workers,
PhalaComputation.WorkerBindings and PhalaComputation.Sessions together ≤ 2 s; one
extrinsic's rollback snapshot stays cheap with that much state.

Run: .venv/bin/python benchmarks/devnet_phala_genesis.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from substrateinterface import SubstrateInterface

from poolkeeper_devnet.chain.pallets.phala import PALLETS
from poolkeeper_devnet.chain.server import DevnetChain

POOLS, WORKERS_PER_POOL = 50, 200


def genesis() -> dict[str, Any]:
    owners = ["//Alice", "//Bob", "//Charlie", "//Dave", "//Eve"]
    return {
        "balances": {o: "1000000 PHA" for o in owners},
        "phala": {
            "pools": [
                {
                    "owner": owners[pid % len(owners)],
                    "free_stake": "100000 PHA",
                    "worker_count": WORKERS_PER_POOL,
                }
                for pid in range(POOLS)
            ]
        },
    }


def pallets_only() -> tuple[float, float, int]:
    """(expand + normalize seconds, pallet genesis seconds, storage entries)."""
    from poolkeeper_devnet.chain import _genesis

    start = time.perf_counter()
    config = _genesis.normalize(genesis())
    expanded = time.perf_counter() - start
    sections = config["pallets"]
    pallets = [cls() for cls in PALLETS]
    start = time.perf_counter()
    changes = 0
    for pallet in pallets:
        pallet.genesis(sections.get(pallet.name, {}))
        changes += len(list(pallet.take_storage_changes()))
    return expanded, time.perf_counter() - start, changes


def snapshot_cost() -> float:
    from poolkeeper_devnet.chain import _genesis

    sections = _genesis.normalize(genesis())["pallets"]
    pallets = [cls() for cls in PALLETS]
    for pallet in pallets:
        pallet.genesis(sections.get(pallet.name, {}))
        pallet.take_storage_changes()
    times = []
    for _ in range(20):
        start = time.perf_counter()
        for pallet in pallets:
            pallet.restore(pallet.snapshot())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    expanded, loaded, changes = pallets_only()
    workers = POOLS * WORKERS_PER_POOL
    print(f"expand 'phala' section ({workers} workers, sr25519 keys): {expanded:.2f} s")
    print(f"pallet genesis + take_storage_changes: {loaded:.2f} s ({changes} storage entries)")
    print(f"snapshot+restore of all Phala pallets: {snapshot_cost() * 1000:.1f} ms")
    start = time.perf_counter()
    handle = DevnetChain.start(genesis(), block_time="instant", finality_lag=1)
    print(
        f"chain start (genesis, state root, server listening): {time.perf_counter() - start:.2f} s"
    )
    try:
        client = SubstrateInterface(url=handle.url, ss58_format=30)
        client.init_runtime()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            counts = [
                len(list(client.query_map(module, item, page_size=1000)))
                for module, item in (
                    ("PhalaRegistry", "Workers"),
                    ("PhalaComputation", "WorkerBindings"),
                    ("PhalaComputation", "Sessions"),
                )
            ]
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        print(f"query_map Workers+WorkerBindings+Sessions {counts}: median {median:.2f} s")
        client.close()
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
