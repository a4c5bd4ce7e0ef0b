"""plan_for on 10,000 workers in 50 pools (target ≤ 0.5 s), and RSS for load + plan (≤ 150 MB).

Three worlds of the same inventory: converged (every worker computing as declared),
fresh (every pRuntime uninitialized: 10,000 relay starts and sync waits) and mixed
(a slice of every phase). Each timing is the median of several runs in this process.
RSS is measured in a fresh child process per way of building the inventory: built
directly as ``Desired``, and loaded from 50 YAML files through the inventory loader.

    .venv/bin/python benchmarks/plan_10k.py
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from poolkeeper.model.desired import Desired  # noqa: E402
from poolkeeper.model.observed import Observed  # noqa: E402
from poolkeeper.model.ss58 import encode_address  # noqa: E402
from poolkeeper.plan import PlanPolicy, plan_for  # noqa: E402

POOLS = 50
PER_POOL = 200
PHA = 10**12
NOW = 1_700_000_000
OWNER = encode_address(bytes([1]) * 32)
OPERATOR = encode_address(bytes([2]) * 32)
PHASES = ("uninitialized", "syncing", "synced", "scored", "ready", "computing", "cooling")


def _key(i: int) -> str:
    return f"{i + 1:064x}"


def inventory_data() -> dict[str, Any]:
    workers = [
        {
            "name": f"w-{pid:02d}-{n:03d}",
            "endpoint": f"http://10.{pid}.{n // 250}.{n % 250}:8000",
            "pool": f"pool-{pid:02d}",
        }
        for pid in range(1, POOLS + 1)
        for n in range(PER_POOL)
    ]
    return {
        "settings": {"network": "devnet"},
        "accounts": [
            {"name": "owner", "role": "owner", "address": OWNER},
            {"name": "operator", "role": "operator", "address": OPERATOR},
        ],
        "pools": [
            {
                "name": f"pool-{pid:02d}",
                "pid": pid,
                "owner": "owner",
                "operator": "operator",
                "default_stake": 5000 * PHA,
            }
            for pid in range(1, POOLS + 1)
        ],
        "workers": workers,
    }


def observed_world(desired: Desired, kind: str) -> Observed:
    pruntimes: dict[str, Any] = {}
    chain: dict[str, Any] = {}
    pool_workers: dict[int, list[str]] = {pid: [] for pid in range(1, POOLS + 1)}
    for i, worker in enumerate(desired.workers):
        pid = int(worker.pool.split("-")[1]) if worker.pool else 0
        phase = {"converged": "computing", "fresh": "uninitialized"}.get(kind) or PHASES[
            i % len(PHASES)
        ]
        key = _key(i)
        if phase == "uninitialized":
            info: dict[str, Any] = {"initialized": False}
        else:
            blocknum = 10 if phase == "syncing" else 998
            info = {"initialized": True, "blocknum": blocknum, "public_key": key}
        pruntimes[worker.endpoint] = {"endpoint": worker.endpoint, "info": info}
        if phase in ("uninitialized", "syncing", "synced"):
            continue
        entry: dict[str, Any] = {"pubkey": key, "operator": OWNER, "initial_score": 100}
        if phase != "scored":
            entry.update(
                session=f"s{i}",
                session_state={"ready": "Ready", "computing": "WorkerIdle"}.get(
                    phase, "WorkerCoolingDown"
                ),
                pool_pid=pid,
                stake=5000 * PHA,
                cool_down_start=NOW - 100,
            )
            pool_workers[pid].append(key)
        chain[key] = entry
    return Observed.model_validate(
        {
            "read_at": "2023-11-14T22:13:20Z",
            "head": {"best_number": 1000, "finalized_number": 998, "timestamp_ms": NOW * 1000},
            "pruntimes": pruntimes,
            "chain_workers": chain,
            "pools": {
                pid: {"pid": pid, "owner": OWNER, "free_stake": 10**9 * PHA, "workers": keys}
                for pid, keys in pool_workers.items()
            },
            "accounts": {a: {"address": a, "free": 1000 * PHA} for a in (OWNER, OPERATOR)},
            "proxies": [{"real": OWNER, "delegate": OPERATOR, "proxy_type": "StakePoolManager"}],
        }
    )


def write_inventory(directory: Path, data: dict[str, Any]) -> None:
    """50 files: settings and accounts in one, then one file per pool with its 200 workers."""
    lines = ["settings:", "  network: devnet", "accounts:"]
    lines += [
        f"  - {{name: {a['name']}, role: {a['role']}, address: {a['address']}}}"
        for a in data["accounts"]
    ]
    (directory / "base.yaml").write_text("\n".join(lines) + "\n")
    for pool in data["pools"]:
        text = [
            "pools:",
            f"  - {{name: {pool['name']}, pid: {pool['pid']}, owner: owner, "
            f"operator: operator, default_stake: 5000 PHA}}",
            "workers:",
        ]
        text += [
            f'  - {{name: {w["name"]}, endpoint: "{w["endpoint"]}", pool: {w["pool"]}}}'
            for w in data["workers"]
            if w["pool"] == pool["name"]
        ]
        (directory / f"{pool['name']}.yaml").write_text("\n".join(text) + "\n")


def time_plans(desired: Desired, observed: Observed, runs: int = 7) -> tuple[float, float, int]:
    """Median wall-clock and CPU seconds of ``plan_for``, and the number of actions."""
    walls, cpus = [], []
    plan = plan_for(desired, observed, PlanPolicy())
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        plan = plan_for(desired, observed, PlanPolicy())
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), len(plan.actions)


def child(way: str, directory: str) -> None:
    """Build the inventory (directly or through the loader), observe, plan; print peak RSS."""
    if way == "loader":
        from poolkeeper.inventory import load_inventory

        start = time.perf_counter()
        desired = load_inventory(directory)
        load_seconds = time.perf_counter() - start
    else:
        start = time.perf_counter()
        desired = Desired.model_validate(inventory_data())
        load_seconds = time.perf_counter() - start
    observed = observed_world(desired, "mixed")
    start = time.perf_counter()
    plan = plan_for(desired, observed, PlanPolicy())
    plan_seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{way}\t{load_seconds:.3f}\t{plan_seconds:.3f}\t{len(plan.actions)}\t{peak_mb:.0f}")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    desired = Desired.model_validate(inventory_data())
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"plan_for on {len(desired.workers)} workers in {len(desired.pools)} pools")
    print(f"(median of 7; load average {load} on {os.cpu_count()} CPUs; target ≤ 500 ms)")
    for kind in ("converged", "fresh", "mixed"):
        wall, cpu, actions = time_plans(desired, observed_world(desired, kind))
        print(
            f"  {kind:<10} wall {wall * 1000:6.1f} ms   cpu {cpu * 1000:6.1f} ms"
            f"   {actions:6d} actions"
        )
    with tempfile.TemporaryDirectory() as tmp:
        write_inventory(Path(tmp), inventory_data())
        print("peak RSS of one process: build inventory + observed world + plan (target ≤ 150 MB)")
        for way in ("direct", "loader"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", way, tmp],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                print(f"  {way}: failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            _, load_s, plan_s, actions, rss = out.stdout.strip().split("\t")
            print(
                f"  {way:<7} build {float(load_s) * 1000:7.1f} ms"
                f"   plan {float(plan_s) * 1000:6.1f} ms   {actions} actions   peak RSS {rss} MB"
            )


if __name__ == "__main__":
    main()
