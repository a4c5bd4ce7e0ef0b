"""``apply PLAN.json`` carries the saved plan to completion within ``--wait``.

On a fresh devnet the saved plan starts the relays and waits for the pRuntimes to sync.
One pass (the old behaviour) starts the relays and returns at once, leaving the
pRuntimes uninitialised; the saved plan must instead keep its relays running until the
saved sync waits have ended. No chain action beyond the saved plan is executed (the
relays' registration of a worker they synced is part of the approved ``start_relay``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.functional.apply._world import World


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("saved"), 2, block_time=0.3, cool_down=3)
    try:
        yield w
    finally:
        w.close()


def test_saved_plan_keeps_its_relays_until_its_waits_end(world: World) -> None:
    saved = world.root / "plan.json"
    made = subprocess.run(
        world.command("plan", str(world.inventory), "-o", str(saved)),
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode in (0, 2), made.stdout + made.stderr
    document = json.loads(saved.read_text())["plan"]
    waits = {(w["target"], w["awaiting"]) for w in document["waits"]}
    assert {("worker/w00", "sync"), ("worker/w01", "sync")} <= waits, waits
    assert {a["kind"] for a in document["actions"]} == {"start_relay"}
    done = world.apply_saved(saved, wait=90)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "still waiting" not in done.stdout, done.stdout[-3000:]
    now = done.stdout.split("\nNow:\n", 1)[1]
    assert "(waiting) sync" not in now, now
    # Between CLI runs no relay feeds them, so a later plan sees them behind again, but
    # initialised and far past their first block (one pass left them uninitialised).
    after = world.plan_json()
    for wait in after["waits"]:
        assert "not initialized" not in wait["reason"], wait
    # No pool call beyond the saved plan (it had none): only the relays' own work, the
    # registration of the workers they synced, reached the chain.
    calls = [json.loads(c) for c in world.stake_pool_calls()]
    assert {(c["call_module"], c["call_function"]) for c in calls} <= {
        ("PhalaRegistry", "register_worker_v2")
    }, calls


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("target"), 2, block_time=0.3, cool_down=3)
    try:
        yield w
    finally:
        w.close()


def test_target_limits_relays_and_pruntime_initialisation(fresh: World) -> None:
    """``apply --target worker/w00`` brings w00 to computing and leaves w01's pRuntime
    untouched: no relay started for it, so it is still uninitialised."""
    output = fresh.apply("--target", "worker/w00", wait=120)
    assert "relays started: w00\n" in output, output[-3000:]
    state = fresh.chain_state()
    w00 = fresh.sim.simulator.identity(0).public.hex()
    w01 = fresh.sim.simulator.identity(1).public.hex()
    assert w00 in state.pools[0].workers and w01 not in state.workers
    plan = fresh.plan_json()
    w01_waits = [w for w in plan["waits"] if w["target"] == "worker/w01"]
    assert w01_waits and "not initialized" in w01_waits[0]["reason"], w01_waits
