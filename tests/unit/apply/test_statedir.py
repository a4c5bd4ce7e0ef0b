"""The state dir lock: exclusive across processes, idempotent within one, named holder."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
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


def write_record(state_dir: Path, pid: int, since: str) -> None:
    record = {"pid": pid, "host": socket.gethostname(), "command": "apply", "since": since}
    (state_dir / "lock").write_text(json.dumps(record) + "\n")


@pytest.mark.parametrize("left_behind", ["empty", "a killed holder's record"])
def test_a_refusal_in_the_instant_before_the_holder_writes_its_record_still_names_it(
    tmp_path: Path, left_behind: str
) -> None:
    """The holder writes its record just after its flock: the refused side waits for it."""
    state = tmp_path / "state"
    ensure_state_dir(state)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    if left_behind == "empty":
        (state / "lock").write_text("")
    else:
        write_record(state, int(dead.stdout), "2026-01-01T00:00:00Z")
    fd = os.open(state / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, record not yet written
        writer = threading.Timer(0.3, write_record, (state, os.getpid(), "2026-12-06T07:00:00Z"))
        writer.start()
        with pytest.raises(StateDirBusy) as caught:
            StateDirLock.acquire(state, "apply")
        writer.join()
        assert str(caught.value) == (
            f"another poolkeeper (pid {os.getpid()} on {socket.gethostname()}, `apply`, "
            f"since 2026-12-06T07:00:00Z) holds {state}"
        )
    finally:
        os.close(fd)
