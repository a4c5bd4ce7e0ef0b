"""Failover of ``poolkeeper run --ha``: how long a shard has no signer/relay after its
owner is SIGKILLed, and how many heartbeat challenges workers leave unanswered meanwhile.

A 3-member etcd on loopback, the devnet (4 computing workers, 0.3 s blocks, a heartbeat
challenge every 5 blocks) and two ``run --ha`` processes (TTL 3 s, lock-delay 2 s =
``pruntime_timeout_seconds``). Each round kills the owner, times until the standby says it
signs (its ``ha.json``), then restarts the killed one as the new standby. Heartbeats missed:
per worker, the challenges that passed while it still owed an earlier one (the devnet's
``PhalaComputation.owed``, sampled every 50 ms), summed over workers.

    .venv/bin/python benchmarks/ha_failover.py [--kills 10]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.functional.apply._world import World
from tests.functional.ha._etcd import EtcdCluster
from tests.functional.ha.test_ha_failover import (
    WORKERS,
    Runner,
    converged,
    start,
    wait_until,
)

INTERVAL = 5


def owed(world: World) -> tuple[int, dict[str, int]]:
    def get() -> tuple[int, dict[str, int]]:
        chain = world.chain.chain
        pallet: Any = chain.pallets["PhalaComputation"]
        return max(chain.blocks), dict(pallet.owed)

    result: tuple[int, dict[str, int]] = world.read(get)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "etcd").mkdir()
        etcd = EtcdCluster(root / "etcd")
        world = World(root / "world", WORKERS, block_time=0.3, cool_down=3)
        runners: list[Runner] = []
        try:
            owner = start(world, etcd, "r0", "bench")
            runners.append(owner)
            wait_until(lambda: owner.ha().get("owner") is True, 30, "first owner", owner)
            standby = start(world, etcd, "r1", "bench")
            runners.append(standby)
            wait_until(lambda: standby.ha().get("state") == "standby", 30, "standby", standby)
            wait_until(lambda: converged(world), 120, "convergence", owner)
            times: list[float] = []
            missed: list[int] = []
            for kill in range(args.kills):
                time.sleep(3)  # steady state: relays running, heartbeats answered
                ages: dict[tuple[str, int], int] = {}
                owner.proc.send_signal(signal.SIGKILL)
                owner.proc.wait()
                killed = time.monotonic()
                new = standby
                while new.ha().get("owner") is not True:
                    number, debts = owed(world)
                    for worker, since in debts.items():
                        ages[(worker, since)] = max(ages.get((worker, since), 0), number - since)
                    if time.monotonic() - killed > 30:
                        raise SystemExit(f"no takeover within 30 s:\n{new.output()[-3000:]}")
                    time.sleep(0.05)
                took = time.monotonic() - killed
                # Keep sampling until every debt of the failover is paid.
                end = time.monotonic() + 15
                while time.monotonic() < end:
                    number, debts = owed(world)
                    for worker, since in debts.items():
                        ages[(worker, since)] = max(ages.get((worker, since), 0), number - since)
                    if not any(since <= number - 1 for since in debts.values()):
                        break
                    time.sleep(0.05)
                lost = sum(age // INTERVAL for age in ages.values())
                times.append(took)
                missed.append(lost)
                print(f"kill {kill + 1}: failover {took:.2f} s, heartbeats missed {lost}")
                restarted = start(world, etcd, f"r{kill + 2}", "bench")
                runners.append(restarted)
                wait_until(
                    lambda r=restarted: r.ha().get("state") == "standby", 30, "standby", restarted
                )
                owner, standby = new, restarted
            print(
                f"failover over {len(times)} kills: median {statistics.median(times):.2f} s, "
                f"max {max(times):.2f} s; heartbeats missed (all {WORKERS} workers): "
                f"median {statistics.median(missed)}, max {max(missed)}"
            )
        finally:
            for r in runners:
                r.stop()
            world.close()
            etcd.close()


if __name__ == "__main__":
    main()
