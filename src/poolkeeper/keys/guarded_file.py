"""Reading a file that holds a secret or trust material, refusing what is not safe to read.

The master secret's file, an account's key file, an external relay's key and the etcd TLS
key all follow the rule ssh applies to private keys: a regular file, readable by its
owner only, checked on the opened descriptor before its content is read (so a swapped
path cannot slip in between), and a FIFO is never waited on. Certificates and CAs use
the same reader without the owner-only rule. Each caller words the refusal its own way
(``GuardedFileRefused.kind``); nothing here ever shows what a file holds.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RefusalKind = Literal[
    "missing", "denied", "unopenable", "not_regular", "too_open", "too_large", "unreadable"
]


@dataclass
class GuardedFileRefused(Exception):
    """Why a guarded file was not read; ``detail`` is for the message (never content)."""

    kind: RefusalKind
    detail: str = ""
    mode: int = 0
    size: int = 0

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind

    def opening_problem(self, name: str) -> str | None:
        """The message for a file that could not be opened or read (the same words for
        every kind of file), or None for the kinds each caller words itself."""
        match self.kind:
            case "missing":
                return f"{name} does not exist"
            case "denied":
                return f"{name} cannot be read (permission denied)"
            case "unopenable":
                return f"{name} cannot be opened: {self.detail}"
            case "unreadable":
                return f"{name} cannot be read: {self.detail}"
        return None


def read_guarded_file(where: Path, *, owner_only: bool, max_bytes: int) -> bytes:
    """The bytes of ``where``; ``GuardedFileRefused`` when it is missing, unreadable, not
    a regular file, larger than ``max_bytes`` or (``owner_only``) open to others."""
    try:
        # O_NONBLOCK: opening a FIFO must not hang; the type check below refuses it.
        fd = os.open(where, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise GuardedFileRefused("missing") from None
    except PermissionError:
        raise GuardedFileRefused("denied") from None
    except OSError as exc:
        raise GuardedFileRefused("unopenable", exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise GuardedFileRefused("not_regular", file_kind(info.st_mode))
        mode = stat.S_IMODE(info.st_mode)
        if owner_only and mode & 0o077:
            raise GuardedFileRefused("too_open", who_can_read(mode), mode=mode)
        if info.st_size > max_bytes:
            raise GuardedFileRefused("too_large", size=info.st_size)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError as exc:
        raise GuardedFileRefused("unreadable", exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message (``a directory``, ``a FIFO``, …)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def who_can_read(mode: int) -> str:
    """Who besides the owner a mode lets in: ``its group``, ``every user`` or both."""
    parts = []
    if mode & 0o070:
        parts.append("its group")
    if mode & 0o007:
        parts.append("every user")
    return " and ".join(parts)
