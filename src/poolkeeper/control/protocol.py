"""The wire format of the control API: newline-delimited JSON objects, ``format_version`` 1.

Kept in one place so the server, the client and docs/api.md agree. Within version 1
changes are additive only. Every message is one JSON object on one line; the server
speaks first (``hello``, then ``snapshot``) and then streams deltas and responses.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
SOCKET_NAME = "control.sock"
MAX_LINE_BYTES = 64 * 1024 * 1024
"""The longest line either side accepts (a snapshot of 10,000 workers is a few MB)."""

REQUESTS = ("plan", "apply", "reload")


class ProtocolError(ValueError):
    """A message that is not valid control-API JSON of a version this code speaks."""


@dataclass(frozen=True)
class Request:
    """One client request: ``plan``, ``apply`` or ``reload``, with the client's ``id``."""

    id: int | str
    request: str
    action_ids: tuple[str, ...] = ()
    inventory_digest: str | None = None
    plan_seq: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "request": self.request}
        if self.request == "apply":
            data["action_ids"] = list(self.action_ids)
            data["inventory_digest"] = self.inventory_digest
            data["plan_seq"] = self.plan_seq
        return data

    @classmethod
    def from_json(cls, data: Any) -> Request:
        if not isinstance(data, dict):
            raise ProtocolError("a request is a JSON object")
        ident = data.get("id")
        if not isinstance(ident, int | str) or isinstance(ident, bool):
            raise ProtocolError("a request needs an `id` (integer or string)")
        kind = data.get("request")
        if kind not in REQUESTS:
            raise ProtocolError(f"unknown request {kind!r}: expected one of {', '.join(REQUESTS)}")
        if kind != "apply":
            return cls(ident, kind)
        ids = data.get("action_ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ProtocolError("apply needs `action_ids`: a list of action ids")
        digest = data.get("inventory_digest")
        if not isinstance(digest, str):
            raise ProtocolError("apply needs `inventory_digest`: the digest its plan was made from")
        seq = data.get("plan_seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ProtocolError("apply needs `plan_seq`: the `plan_seq` of the approved plan")
        return cls(ident, kind, tuple(ids), digest, seq)


def encode(message: dict[str, Any]) -> bytes:
    """One message as one line."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One line as a message; ``ProtocolError`` when it is not a JSON object."""
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message is a JSON object")
    return data


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


@contextmanager
def reachable_path(path: Path) -> Iterator[str]:
    """A path to ``path`` short enough for ``AF_UNIX`` (108 bytes on Linux): long ones go
    through ``/proc/self/fd`` of the opened parent directory."""
    text = str(path)
    if len(text.encode()) < 100 or not Path("/proc/self/fd").is_dir():
        yield text
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def connect_socket(path: Path) -> socket.socket:
    """A connected (blocking) socket to ``path``; ``OSError`` when nothing serves it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with reachable_path(path) as where:
            sock.connect(where)
    except OSError:
        sock.close()
        raise
    return sock
