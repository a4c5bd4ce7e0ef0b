"""Node requests per block when two shards run on two ``run --ha --shard`` processes,
against one plain ``run`` keeping both — the figure behind "do shards double the node's
load?" (docs/ha.md).

The devnet (4 computing workers in two pools, 0.3 s blocks) counts every JSON-RPC request
by method. Each phase waits until every worker computes, lets the processes settle, then
counts the requests served over a window of blocks, with nothing else talking to the node.

    .venv/bin/python benchmarks/ha_shard_requests.py [--window 40]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.functional.apply._world import World
from tests.functional.ha._etcd import EtcdCluster
from tests.functional.ha.test_ha_failover import Runner, converged, start, wait_until
from tests.functional.ha.test_ha_shards import ACCOUNTS, POOLS, SHARDS


def counts(world: World) -> tuple[int, dict[str, int]]:
    def get() -> tuple[int, dict[str, int]]:
        return max(world.chain.chain.blocks), dict(world.chain.server.request_counts)

    result: tuple[int, dict[str, int]] = world.read(get)
    return result


def window(world: World, seconds: float) -> tuple[int, dict[str, int]]:
    """Blocks produced and requests served (by method) over ``seconds``."""
    block0, before = counts(world)
    time.sleep(seconds)
    block1, after = counts(world)
    return block1 - block0, {m: after.get(m, 0) - before.get(m, 0) for m in after}


def report(label: str, blocks: int, served: dict[str, int]) -> float:
    total = sum(served.values())
    per_block = total / max(blocks, 1)
    top = sorted(served.items(), key=lambda kv: -kv[1])[:6]
    print(f"{label}: {per_block:.1f} requests/block over {blocks} blocks ({total} requests)")
    for method, n in top:
        print(f"    {method:<40} {n / max(blocks, 1):6.1f}/block")
    return per_block


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=40.0, help="seconds counted")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        world = World(
            root / "world", 4, block_time=0.3, cool_down=3, accounts=ACCOUNTS, pools=POOLS
        )
        settings = world.inventory / "settings.yaml"
        settings.write_text(settings.read_text() + SHARDS)
        (root / "etcd").mkdir()
        etcd = EtcdCluster(root / "etcd")
        try:
            # Phase 1: one plain `run` keeps both pools (no HA, no shards taken).
            single = root / "single"
            single.mkdir()
            plain = world.inventory.parent / "plain"
            subprocess.run(["cp", "-r", str(world.inventory), str(plain)], check=True)
            (plain / "settings.yaml").write_text(
                (plain / "settings.yaml").read_text() + "  loop: {interval_seconds: 1}\n"
            )
            log = (single / "run.log").open("wb")
            proc = subprocess.Popen(
                world.command("run", str(plain)),
                env=world.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_until(lambda: converged(world), 180, "convergence under one run")
                time.sleep(5)
                one = report("one `run`, both pools", *window(world, args.window))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            # Phase 2: two `run --ha --shard` processes, one pool each.
            runners: list[Runner] = []
            try:
                runners = [
                    start(world, etcd, "a", "bench", "--shard", "a"),
                    start(world, etcd, "b", "bench", "--shard", "b"),
                ]
                for r in runners:
                    wait_until(lambda r=r: r.ha().get("owner") is True, 60, "owner", *runners)
                wait_until(lambda: converged(world), 180, "convergence under shards", *runners)
                time.sleep(5)
                two = report("two `run --ha --shard`", *window(world, args.window))
            finally:
                for r in runners:
                    r.stop()
            print(f"ratio two shards / one run: {two / one:.2f}")
        finally:
            etcd.close()
            world.close()


if __name__ == "__main__":
    main()
