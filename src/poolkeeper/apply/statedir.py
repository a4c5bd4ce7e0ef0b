"""The state directory: one writer at a time, private modes.

Two processes that sign from the same accounts, or feed the same pRuntime, undo each
other: duplicate calls, nonce rejections, a pRuntime desynchronised by two relays. So
every command that signs or drives a pRuntime holds an exclusive OS lock on
``<state>/lock`` for its whole life (``flock``; the kernel releases it when the process
dies, however it dies), and a second one is refused at once with who holds it.

The lock file also records the holder (pid, host, command, start time) so the refusal
can name it; the record is informative only, the ``flock`` is the truth. The holder writes
its record just after its ``flock`` succeeds, so a refusal in that instant would read an
empty record, or the record a killed holder left behind: the refused side waits a short
while for a record that names a live holder before it answers. The state dir
holds the journal (signed extrinsics, top-up history) and relay logs: it is kept 0700.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from poolkeeper.errors import StateDirBusy, StateDirError

LOCK_NAME = "lock"
RECORD_SETTLE_SECONDS = 2.0
DIR_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True)
class LockHolder:
    """Who holds a state dir lock, as its lock file says."""

    pid: int | None
    host: str
    command: str
    since: str

    def describe(self) -> str:
        pid = "?" if self.pid is None else str(self.pid)
        return (
            f"pid {pid} on {self.host or '?'}, `{self.command or '?'}`, since {self.since or '?'}"
        )


def ensure_state_dir(state_dir: Path, notice: Callable[[str], None] | None = None) -> None:
    """Create ``state_dir`` 0700, or narrow an existing one that others can read."""
    try:
        state_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        info = state_dir.stat()
    except OSError as error:
        raise StateDirError(f"cannot create state dir {state_dir}: {_why(error)}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirError(f"state dir {state_dir} is not a directory")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        try:
            state_dir.chmod(DIR_MODE)
        except OSError as error:
            raise StateDirError(
                f"state dir {state_dir} is mode {mode:04o} and cannot be made 0700: {_why(error)}"
            ) from None
        if notice is not None:
            notice(f"notice: state dir {state_dir} was mode {mode:04o}; now 0700")


class StateDirLock:
    """An exclusive lock on one state dir, held until ``release`` or process death.

    ``acquire`` is idempotent within a process (the same object comes back), so layers
    that each need the lock (CLI, an HA supervisor) can all ask for it."""

    _held: ClassVar[dict[Path, StateDirLock]] = {}

    def __init__(self, state_dir: Path, fd: int, holder: LockHolder) -> None:
        self.state_dir = state_dir
        self.holder = holder
        self._fd: int | None = fd

    @property
    def path(self) -> Path:
        return self.state_dir / LOCK_NAME

    @classmethod
    def acquire(
        cls,
        state_dir: Path,
        command: str,
        *,
        notice: Callable[[str], None] | None = None,
    ) -> StateDirLock:
        """Take the lock (creating the state dir 0700), or raise ``StateDirBusy`` at once."""
        key = state_dir.resolve()
        held = cls._held.get(key)
        if held is not None and held._fd is not None:
            return held
        ensure_state_dir(state_dir, notice)
        path = state_dir / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as error:
            raise StateDirError(f"cannot open lock file {path}: {_why(error)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_settled_holder(fd)
            os.close(fd)
            raise StateDirBusy(state_dir, holder) from None
        except OSError as error:
            os.close(fd)
            raise StateDirError(f"cannot lock {path}: {_why(error)}") from None
        holder = LockHolder(
            pid=os.getpid(),
            host=socket.gethostname(),
            command=command,
            since=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        )
        record = json.dumps(holder.__dict__, sort_keys=True).encode() + b"\n"
        os.fchmod(fd, FILE_MODE)
        os.pwrite(fd, record, 0)
        os.ftruncate(fd, len(record))
        os.fsync(fd)
        lock = cls(state_dir, fd, holder)
        cls._held[key] = lock
        return lock

    @classmethod
    def holder_of(cls, state_dir: Path) -> LockHolder | None:
        """Who holds the lock now, or ``None`` when nobody does (never takes it)."""
        try:
            fd = os.open(state_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_settled_holder(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        """Give the lock up (process exit does the same)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        self._held.pop(self.state_dir.resolve(), None)
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor releases the flock


def _read_settled_holder(fd: int) -> LockHolder:
    """The holder's record once it names a live holder, or what is there after a short wait.

    Only called while another process holds the ``flock``, so an empty record, or one
    naming a process of this host that no longer exists, is one the holder is about to
    replace."""
    deadline = time.monotonic() + RECORD_SETTLE_SECONDS
    while True:
        holder = _read_holder(fd)
        if _names_a_live_holder(holder) or time.monotonic() >= deadline:
            return holder
        time.sleep(0.01)


def _names_a_live_holder(holder: LockHolder) -> bool:
    if holder.pid is None or not holder.since:
        return False
    if holder.host != socket.gethostname():
        return True  # a shared file system: the record cannot be checked from here
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_holder(fd: int) -> LockHolder:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode())
        pid = data.get("pid")
        return LockHolder(
            pid=int(pid) if isinstance(pid, int) else None,
            host=str(data.get("host", "")),
            command=str(data.get("command", "")),
            since=str(data.get("since", "")),
        )
    except (OSError, ValueError, AttributeError):
        return LockHolder(pid=None, host="", command="", since="")


def _why(error: OSError) -> str:
    return error.strerror or str(error)
