"""The state dir lock: exclusive across processes, idempotent within one, named holder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from poolkeeper.apply.statedir import StateDirLock, ensure_state_dir
from poolkeeper.errors import StateDirBusy

SRC = Path(__file__).resolve().parents[3] / "src"


def hold_in_child(state_dir: Path) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from poolkeeper.apply.statedir import StateDirLock
        StateDirLock.acquire(Path({str(state_dir)!r}), "run")
        print("held", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_second_process_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    state = tmp_path / "state"
    child = hold_in_child(state)
    try:
        with pytest.raises(StateDirBusy) as caught:
            StateDirLock.acquire(state, "apply")
        message = str(caught.value)
        assert message.startswith(f"another poolkeeper (pid {child.pid} on ")
        holder = StateDirLock.holder_of(state)
        assert holder is not None and holder.pid == child.pid
        assert message.endswith(f", `run`, since {holder.since}) holds {state}")
    finally:
        child.kill()
        child.wait()
    # The kernel released it with the process: the next one gets it.
    lock = StateDirLock.acquire(state, "apply")
    try:
        assert StateDirLock.acquire(state, "apply") is lock  # idempotent in one process
        assert lock.holder.pid == os.getpid()
    finally:
        lock.release()
    assert StateDirLock.holder_of(state) is None


def test_the_state_dir_is_made_0700_and_a_wider_one_narrowed(tmp_path: Path) -> None:
    fresh = tmp_path / "a" / "state"
    ensure_state_dir(fresh)
    assert fresh.stat().st_mode & 0o777 == 0o700
    wide = tmp_path / "wide"
    wide.mkdir()
    wide.chmod(0o755)
    notes: list[str] = []
    ensure_state_dir(wide, notes.append)
    assert wide.stat().st_mode & 0o777 == 0o700
    assert notes == [f"notice: state dir {wide} was mode 0755; now 0700"]
    lock = StateDirLock.acquire(wide, "apply")
    try:
        assert lock.path.stat().st_mode & 0o777 == 0o600
    finally:
        lock.release()
