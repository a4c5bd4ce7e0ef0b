"""One writer per state dir: a second signing process is refused at once, and a holder
killed with SIGKILL leaves the lock to the next process (the kernel releases it).

Against the devnet (chain + simulated pRuntimes) with the CLI run as subprocesses, as
an operator would. Judged on the chain's own blocks: no pool or registry call was
included twice.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolkeeper.apply.statedir import LockHolder, StateDirLock
from poolkeeper.model.observed import SessionState
from tests.functional.apply._world import World

pytestmark = pytest.mark.slow

WORKERS = 4


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, WORKERS, block_time=0.3, cool_down=3)
    try:
        yield w
    finally:
        w.close()


def start(world: World, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        world.command(*args),
        env=world.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_holder(world: World, process: subprocess.Popen[str]) -> LockHolder:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        holder = StateDirLock.holder_of(world.state_dir)
        if holder is not None and holder.pid == process.pid:
            return holder
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the first process never took the lock")


def refusal(world: World, holder: LockHolder, command: str) -> str:
    return (
        f"error: another poolkeeper (pid {holder.pid} on {socket.gethostname()}, "
        f"`{command}`, since {holder.since}) holds {world.state_dir}"
    )


def run_cli(world: World, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    done = subprocess.run(
        world.command(*args),
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, time.monotonic() - began


def assert_no_call_twice(world: World) -> None:
    calls = world.stake_pool_calls()
    twice = [c for c, n in calls.items() if n > 1]
    assert not twice, twice
    assert calls, "nothing was applied: the test proves nothing"


def test_second_apply_on_one_state_dir_is_refused_and_nothing_runs_twice(world: World) -> None:
    inventory = str(world.inventory)
    first = start(world, "apply", inventory, "--auto-approve", "--wait", "90")
    holder = wait_for_holder(world, first)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", holder.since), holder
    assert holder.command == "apply"
    # Every writer is refused while the first one works; read-only commands are not.
    for args in (
        ("apply", inventory, "--auto-approve", "--wait", "90"),
        ("run", inventory),
        ("relay", inventory),
        ("accounts", "generate", inventory),
    ):
        done, took = run_cli(world, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stderr.strip() == refusal(world, holder, "apply"), done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        assert took < 30, (args, took)
        assert first.poll() is None, "the first apply ended before the refusals were tested"
    planned, _ = run_cli(world, "plan", inventory, "--json")
    assert planned.returncode in (0, 2), planned.stderr
    out, err = first.communicate(timeout=180)
    assert first.returncode == 0, out[-3000:] + err[-3000:]
    assert_no_call_twice(world)
    assert StateDirLock.holder_of(world.state_dir) is None


def test_a_holder_killed_with_sigkill_leaves_the_lock_to_the_next(world: World) -> None:
    inventory = str(world.inventory)
    holder_process = start(world, "run", inventory)
    wait_for_holder(world, holder_process)
    holder_process.send_signal(signal.SIGKILL)
    holder_process.communicate(timeout=30)
    assert holder_process.returncode == -signal.SIGKILL
    done, _ = run_cli(world, "apply", inventory, "--auto-approve", "--wait", "90")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "another poolkeeper" not in done.stderr
    assert_no_call_twice(world)
    state = world.chain_state()
    for i in range(WORKERS):
        worker = state.workers[world.sim.simulator.identity(i).public.hex()]
        assert worker.session_state in (
            SessionState.WORKER_IDLE,
            SessionState.WORKER_UNRESPONSIVE,
        ), (
            i,
            worker,
        )
