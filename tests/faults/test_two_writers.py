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


def test_two_applies_started_at_once_one_refuses_and_nothing_runs_twice(world: World) -> None:
    inventory = str(world.inventory)
    args = ("apply", inventory, "--auto-approve", "--wait", "90")
    both = [start(world, *args), start(world, *args)]
    results = [p.communicate(timeout=240) for p in both]
    codes = sorted(p.returncode for p in both)
    assert codes == [0, 1], [
        (p.returncode, out[-2000:], err[-2000:])
        for p, (out, err) in zip(both, results, strict=True)
    ]
    winner, loser = (0, 1) if both[0].returncode == 0 else (1, 0)
    refusal_text = results[loser][1].strip()
    host, state = re.escape(socket.gethostname()), re.escape(str(world.state_dir))
    since = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    pattern = (
        rf"error: another poolkeeper \(pid {both[winner].pid} on {host}, "
        rf"`apply`, since {since}\) holds {state}"
    )
    assert re.fullmatch(pattern, refusal_text), refusal_text
    assert "Traceback" not in results[loser][0] + results[loser][1]
    assert_no_call_twice(world)
    assert StateDirLock.holder_of(world.state_dir) is None


def test_every_writer_is_refused_while_run_holds_and_a_sigkilled_holder_frees_the_lock(
    world: World,
) -> None:
    inventory = str(world.inventory)
    holder_process = start(world, "run", inventory)
    holder = wait_for_holder(world, holder_process)
    assert holder.command == "run"
    for args in (
        ("apply", inventory, "--auto-approve", "--wait", "90"),
        ("run", inventory),
        ("relay", inventory),
        ("accounts", "generate", inventory),
    ):
        done, took = run_cli(world, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stderr.strip() == refusal(world, holder, "run"), done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        assert took < 30, (args, took)
    planned, _ = run_cli(world, "plan", inventory, "--json")  # read-only: never locks
    assert planned.returncode in (0, 2), planned.stderr
    assert holder_process.poll() is None
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
        assert worker.session_state is SessionState.WORKER_IDLE, (i, worker)
