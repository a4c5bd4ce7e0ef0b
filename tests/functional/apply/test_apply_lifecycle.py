"""A pool's whole life through ``poolkeeper apply``, over the network, judged on chain.

Twenty simulated pRuntimes in two pools go from nothing (unsynced, unregistered, in no
pool) to computing, with poolkeeper's own relays syncing and registering them; then a
stake increase restarts half of them with the new stake; then workers are taken out
(``state: removed`` for some, dropped from the inventory with ``--prune`` for others):
stop, cool-down, reclaim, remove. After each apply a fresh plan has no actions left,
and the chain, read back through its storage, says the same as the inventory.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from poolkeeper.model.observed import SessionState
from poolkeeper.render._text import NO_CHANGES
from tests.functional.apply._world import World

WORKERS = 20
PHA = 10**12


@pytest.fixture(scope="module", params=["khala", "phala"])
def world(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[World]:
    """The world on a chain with Khala's pallet indices, then on one with Phala's (e.g.
    PhalaStakePoolv2 93 vs 89): the product must resolve every index from the metadata."""
    w = World(
        tmp_path_factory.mktemp("lifecycle"),
        WORKERS,
        block_time=0.3,
        cool_down=3,
        runtime=request.param,
    )
    try:
        assert w.chain.chain.runtime_version["specName"] == request.param
        yield w
    finally:
        w.close()


def pubkey(world: World, index: int) -> str:
    return world.sim.simulator.identity(index).public.hex()


def assert_nothing_left_to_do(world: World, apply_output: str, *plan_args: str) -> None:
    """The plan apply printed last (its relays running) has no actions, and a fresh
    ``plan`` from another process has none but starting relays, which are local to a
    process (that one runs none)."""
    now = apply_output.split("\nNow:\n", 1)[1]
    assert NO_CHANGES in now or "Plan: 0 to add, 0 to change, 0 to remove" in now, now
    plan = world.plan_json(*plan_args)
    kinds = {a["kind"] for a in plan["actions"]}
    assert kinds <= {"start_relay"}, plan["actions"]


def test_empty_pools_to_computing(world: World) -> None:
    before = world.chain_state()
    assert before.pools[0].workers == () and before.pools[1].workers == ()
    output = world.apply()
    assert "FAILED" not in output, output
    state = world.chain_state()
    for i in range(WORKERS):
        key = pubkey(world, i)
        worker = state.workers.get(key)
        assert worker is not None, f"worker {i} not registered"
        pid = 0 if i < WORKERS // 2 else 1
        assert key in state.pools[pid].workers
        assert worker.session_state is SessionState.WORKER_IDLE, (i, worker)
        assert worker.stake == 1000 * PHA
    assert_nothing_left_to_do(world, output)


def test_stake_increase_restarts_computing_with_the_new_stake(world: World) -> None:
    for line in world.workers[:5]:
        line.stake = "1500 PHA"
    world.write_workers()
    output = world.apply()
    assert "FAILED" not in output, output
    state = world.chain_state()
    stakes = [state.workers[pubkey(world, i)].stake for i in range(WORKERS)]
    assert stakes == [1500 * PHA] * 5 + [1000 * PHA] * (WORKERS - 5)
    assert all(
        state.workers[pubkey(world, i)].session_state is SessionState.WORKER_IDLE
        for i in range(WORKERS)
    )
    calls = world.stake_pool_calls()
    restarts = [c for c in calls if '"restart_computing"' in c]
    assert len(restarts) == 5, restarts
    assert_nothing_left_to_do(world, output)


def test_a_saved_plan_applies_exactly_while_current(world: World) -> None:
    """`plan -o` then `apply PLAN.json`: refused once the inventory changed; applied as
    saved (and nothing else) while current; refused when the chain has moved past it."""
    saved = world.root / "saved-plan.json"
    world.workers[5].stake = "1200 PHA"
    world.write_workers()
    made = subprocess.run(
        world.command("plan", str(world.inventory), "-o", str(saved)),
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode in (0, 2), made.stdout + made.stderr
    actions = json.loads(saved.read_text())["plan"]["actions"]
    kinds = [a["kind"] for a in actions if a["kind"] != "start_relay"]
    assert kinds == ["restart_computing"], kinds
    # Another edit after the plan was made (stake of w06): the saved plan is stale.
    world.workers[6].stake = "1300 PHA"
    world.write_workers()
    refused = world.apply_saved(saved)
    assert refused.returncode == 1
    assert "the inventory changed since the plan was made" in refused.stderr, refused.stderr
    assert world.chain_state().workers[pubkey(world, 5)].stake == 1000 * PHA
    # Back to the inventory the plan was made from: applied, w05 only.
    world.workers[6].stake = None
    world.write_workers()
    applied = world.apply_saved(saved)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    state = world.chain_state()
    assert state.workers[pubkey(world, 5)].stake == 1200 * PHA
    assert state.workers[pubkey(world, 6)].stake == 1000 * PHA
    # The same plan again: its restart no longer applies as saved.
    again = world.apply_saved(saved)
    assert again.returncode == 1
    assert "the chain moved since the plan was made" in again.stderr, again.stderr
    restarts = [c for c, n in world.stake_pool_calls().items() if '"restart_computing"' in c]
    assert len(restarts) == 6, restarts


def test_removed_and_pruned_workers_are_stopped_reclaimed_and_removed(world: World) -> None:
    # pool-b: three workers declared removed; pool-a: two dropped from the inventory.
    for line in world.workers[10:13]:
        line.state = "removed"
    kept = [line for i, line in enumerate(world.workers) if i not in (8, 9)]
    world.workers = kept
    world.write_workers()
    # Without --prune the dropped workers stay; the declared removals go ahead.
    world.apply(wait=60)
    output = world.apply("--prune", wait=60)
    state = world.chain_state()
    gone = {pubkey(world, i) for i in (8, 9, 10, 11, 12)}
    assert not gone & set(state.pools[0].workers + state.pools[1].workers)
    assert not gone & set(state.pools[0].cd_workers + state.pools[1].cd_workers)
    for i in set(range(WORKERS)) - {8, 9, 10, 11, 12}:
        assert state.workers[pubkey(world, i)].session_state is SessionState.WORKER_IDLE
    calls = world.stake_pool_calls()
    for verb in ("stop_computing", "reclaim_pool_worker", "remove_worker"):
        assert sum(n for c, n in calls.items() if f'"{verb}"' in c) == 5, (verb, calls)
    # No call was ever made twice with the same arguments.
    assert max(calls.values()) == 1, [c for c, n in calls.items() if n > 1]
    assert_nothing_left_to_do(world, output, "--prune")
