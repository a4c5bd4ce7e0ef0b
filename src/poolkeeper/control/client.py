"""The control API's client side: connect to a running loop, follow its stream, send requests.

``StatusView`` folds the snapshot and the deltas into the current state (what ``status
--watch`` prints and the TUI shows); ``ControlClient`` owns the connection and matches
responses to requests. Nothing here builds a reconciler or starts a relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poolkeeper.control.protocol import (
    FORMAT_VERSION,
    MAX_LINE_BYTES,
    ProtocolError,
    Request,
    decode,
    encode,
    reachable_path,
)


class ControlUnavailable(OSError):
    """No running loop serves the socket (or it speaks another protocol version)."""


class RequestFailed(Exception):
    """The server answered a request with ``ok: false``; the text is its reason."""


@dataclass
class StatusView:
    """The loop's state as the stream tells it: snapshot first, then deltas applied."""

    seq: int = 0
    observed: dict[str, Any] | None = None
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    plan: dict[str, Any] | None = None
    plan_seq: int | None = None
    inventory_digest: str | None = None
    loop: dict[str, Any] = field(default_factory=dict)
    secret_loaded: bool | None = None
    accounts: dict[str, str] = field(default_factory=dict)
    ha: dict[str, Any] | None = None
    """``run --ha``: the serving process's shard, state and lease TTL (None without HA)."""

    def apply(self, message: dict[str, Any]) -> bool:
        """Fold one stream message in; False when it is not a state message (or old)."""
        kind = message.get("type")
        seq = message.get("seq")
        if kind == "snapshot":
            if message.get("format_version") != FORMAT_VERSION:
                raise ProtocolError(f"unsupported format_version {message.get('format_version')!r}")
            self.seq = int(message["seq"])
            self.observed = message.get("observed")
            self.rows = {str(r["worker"]): r for r in message.get("rows") or []}
            self.plan = message.get("plan")
            self.plan_seq = message.get("plan_seq")
            self.inventory_digest = message.get("inventory_digest")
            self.loop = dict(message.get("loop") or {})
            self.secret_loaded = message.get("secret_loaded")
            self.accounts = dict(message.get("accounts") or {})
            self.ha = message.get("ha")
            return True
        if not isinstance(seq, int) or seq <= self.seq:
            return False  # a response, or already part of the snapshot
        self.seq = seq
        if kind == "observed":
            observed = dict(self.observed or {})
            observed.update(message.get("set") or {})
            for key, entries in (message.get("changed") or {}).items():
                observed[key] = {**(observed.get(key) or {}), **entries}
            for key, gone in (message.get("removed") or {}).items():
                observed[key] = {
                    k: v for k, v in (observed.get(key) or {}).items() if k not in gone
                }
            self.observed = observed
            for row in message.get("rows") or []:
                self.rows[str(row["worker"])] = row
            for name in message.get("removed_rows") or []:
                self.rows.pop(name, None)
            return True
        if kind == "plan":
            self.plan = message.get("plan")
            self.plan_seq = seq
            self.inventory_digest = message.get("inventory_digest")
            return True
        if kind == "ha":
            self.ha = message.get("ha")
            return True
        if kind == "event":
            event = message.get("event")
            if event == "pass_started":
                self.loop["state"] = message.get("purpose", "pass")
            elif event == "pass_done":
                self.loop.update(state="idle", last_pass_at=message.get("at"), error=None)
            elif event == "error":
                self.loop.update(state="error", error=message.get("message"))
            elif event == "reloaded" and "secret_loaded" in message:
                self.secret_loaded = message["secret_loaded"]
            if isinstance(message.get("accounts"), dict):
                self.accounts = dict(message["accounts"])
            return True
        return False


class ControlClient:
    """One connection to a loop's control socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.hello: dict[str, Any] = {}
        self.view = StatusView()
        self._ids = itertools.count(1)
        self._pending: dict[int | str, asyncio.Future[dict[str, Any]]] = {}
        self._stream: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, path: Path, *, timeout: float = 5.0) -> ControlClient:
        """Attach; ``ControlUnavailable`` (saying why) when no loop serves ``path``."""
        if not path.exists():
            raise ControlUnavailable(f"no poolkeeper run serves {path.parent} (no {path.name})")
        try:
            with reachable_path(path) as where:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(where, limit=MAX_LINE_BYTES), timeout
                )
        except (OSError, TimeoutError) as error:
            reason = error.strerror or type(error).__name__ if isinstance(error, OSError) else ""
            raise ControlUnavailable(
                f"no poolkeeper run serves {path.parent} ({path.name}: "
                f"{reason or 'connection timed out'})"
            ) from None
        client = cls(reader, writer)
        try:
            client.hello = await client._read(timeout)
            if client.hello.get("type") != "hello":
                raise ControlUnavailable(f"{path}: the server did not say hello")
            if client.hello.get("format_version") != FORMAT_VERSION:
                raise ControlUnavailable(
                    f"{path}: control API format_version {client.hello.get('format_version')!r}"
                    f" (this poolkeeper speaks {FORMAT_VERSION})"
                )
            client.view.apply(await client._read(timeout))
        except (ProtocolError, OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            await client.close()
            if isinstance(error, ControlUnavailable):
                raise
            raise ControlUnavailable(f"{path}: no valid control stream ({error})") from None
        client._pump = asyncio.create_task(client._run())
        return client

    async def _read(self, timeout: float | None = None) -> dict[str, Any]:
        line = await asyncio.wait_for(self._reader.readline(), timeout)
        if not line:
            raise asyncio.IncompleteReadError(b"", None)
        return decode(line)

    async def _run(self) -> None:
        try:
            while True:
                message = await self._read()
                if message.get("type") == "response":
                    future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
                    if future is not None and not future.done():
                        future.set_result(message)
                    continue
                self.view.apply(message)
                self._stream.put_nowait(message)
        except (OSError, ProtocolError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ControlUnavailable("the loop closed the connection"))
            self._pending.clear()
            self._stream.put_nowait(None)

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Stream messages (already folded into ``view``) until the server goes away."""
        while True:
            message = await self._stream.get()
            if message is None:
                return
            yield message

    async def request(
        self, kind: str, *, timeout: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Send one request; its ``result``, or ``RequestFailed`` with the server's reason."""
        ident = next(self._ids)
        request = Request(ident, kind, **fields)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        self._writer.write(encode(request.to_json()))
        await self._writer.drain()
        response = await asyncio.wait_for(future, timeout)
        if not response.get("ok"):
            raise RequestFailed(str(response.get("error")))
        result = response.get("result")
        return result if isinstance(result, dict) else {}

    async def plan(self, *, timeout: float | None = None) -> dict[str, Any]:
        return await self.request("plan", timeout=timeout)

    async def reload(self, *, timeout: float | None = None) -> dict[str, Any]:
        return await self.request("reload", timeout=timeout)

    async def apply(
        self,
        action_ids: list[str],
        *,
        inventory_digest: str,
        plan_seq: int,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        return await self.request(
            "apply",
            timeout=timeout,
            action_ids=tuple(action_ids),
            inventory_digest=inventory_digest,
            plan_seq=plan_seq,
        )

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
