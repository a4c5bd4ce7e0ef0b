"""Draining a pool on the devnet: 4 computing workers are stopped, cooled down,
reclaimed and removed, across a restart of poolkeeper in the middle, with no failed
extrinsic; then the plan reports the pool drained and the free stake left in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from poolkeeper.model.observed import SessionState
from tests.functional.apply._world import World

PHA = 10**12
DRAINING = """\
pools:
  - {name: pool-a, pid: 0, owner: owner, operator: operator-a, default_stake: 1000 PHA,
     state: draining}
  - {name: pool-b, pid: 1, owner: owner, operator: operator-b, default_stake: 1000 PHA}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("drain"), 8, block_time=0.3, cool_down=3)
    try:
        yield w
    finally:
        w.close()


def test_a_draining_pool_ends_empty_across_a_restart(world: World) -> None:
    assert "FAILED" not in world.apply(wait=150)
    before = world.chain_state()
    pool_a = [world.sim.simulator.identity(i).public.hex() for i in range(4)]
    assert sorted(before.pools[0].workers) == sorted(pool_a)
    assert all(before.workers[k].session_state is SessionState.WORKER_IDLE for k in pool_a)
    (world.inventory / "pools.yaml").write_text(DRAINING, encoding="utf-8")
    plan = world.plan_json()
    kinds = sorted({(a["kind"], a["reason"]) for a in plan["actions"] if a["pool"] == "pool-a"})
    assert kinds == [("stop_computing", "pool draining: stop computing")], kinds
    # First run: stops them, then is cut short (a restart in the middle of the cool-down).
    first = world.apply(wait=1)
    assert "FAILED" not in first, first[-3000:]
    middle = world.chain_state()
    assert all(
        middle.workers[k].session_state is SessionState.WORKER_COOLING_DOWN for k in pool_a
    ), [middle.workers[k].session_state for k in pool_a]
    # Second run, a new process: waits out the cool-down, reclaims, removes.
    second = world.apply(wait=90)
    assert "FAILED" not in second, second[-3000:]
    after = world.chain_state()
    assert after.pools[0].workers == () and after.pools[0].cd_workers == ()
    assert sorted(after.pools[1].workers) == sorted(
        world.sim.simulator.identity(i).public.hex() for i in range(4, 8)
    )
    calls = world.stake_pool_calls()
    for name in ("stop_computing", "reclaim_pool_worker", "remove_worker"):
        assert sum(n for c, n in calls.items() if f'"{name}"' in c) == 4, (name, calls)
    report = world.plan_json()
    drained = [a for a in report["alerts"] if a["target"] == "pool/pool-a"]
    assert len(drained) == 1 and drained[0]["message"].startswith("drained: no worker left")
    assert [a for a in report["actions"] if a["pool"] == "pool-a"] == []
