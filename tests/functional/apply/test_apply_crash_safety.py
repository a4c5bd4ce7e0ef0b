"""``poolkeeper apply`` killed (SIGKILL) at the worst instants, then run again.

The apply runs as a subprocess against a devnet chain and simulated pRuntimes. The test
hook ``POOLKEEPER_TEST_CRASH_AT`` (see ``poolkeeper._crash_points``) makes it kill itself
at a named instant: journaled but not yet submitted; submitted but inclusion not yet
seen; included but the journal not yet updated. After each crash apply is run again
(with the next crash point), and finally without one. Judged on the chain's own blocks:
no pool or registry call was ever included twice, nothing is left unsettled in the
journal, and every worker computes.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from collections.abc import Iterator

import pytest

from poolkeeper._crash_points import ENV
from poolkeeper.model.observed import SessionState
from tests.functional.apply._world import World

WORKERS = 6
CRASHES = (
    "before_submit:1",
    "after_submit:2",
    "before_settle:2",
    "after_submit:3",
    "before_submit:2",
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("crash"), WORKERS, block_time=0.3, cool_down=3)
    try:
        yield w
    finally:
        w.close()


def run_until_crash(world: World, point: str) -> int:
    done = subprocess.run(
        world.command("apply", str(world.inventory), "--auto-approve", "--wait", "60"),
        env=world.env(**{ENV: point}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (-signal.SIGKILL, 0), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode


def journal_statuses(world: World) -> list[str]:
    db = sqlite3.connect(world.state_dir / "journal.sqlite")
    try:
        return [row[0] for row in db.execute("SELECT status FROM extrinsics")]
    finally:
        db.close()


def test_apply_killed_at_every_crash_point_executes_no_call_twice_and_converges(
    world: World,
) -> None:
    killed = [point for point in CRASHES if run_until_crash(world, point) == -signal.SIGKILL]
    # The hook must really have fired at each kind of instant, or this proves nothing.
    assert {p.split(":")[0] for p in killed} == {"before_submit", "after_submit", "before_settle"}
    output = world.apply(wait=60)
    assert "FAILED" not in output, output
    assert "prepared" not in journal_statuses(world)
    calls = world.stake_pool_calls()
    twice = [c for c, n in calls.items() if n > 1]
    assert not twice, twice
    state = world.chain_state()
    for i in range(WORKERS):
        worker = state.workers[world.sim.simulator.identity(i).public.hex()]
        assert worker.session_state is SessionState.WORKER_IDLE, (i, worker)
