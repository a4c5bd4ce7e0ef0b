"""The control API's server side: the status hub (current state, deltas, subscribers) and
the Unix-socket server that streams it and hands requests to the loop.

The hub holds what a newly attached client needs (the snapshot) and turns each pass into
deltas: only the worker rows and observation entries that changed. The server owns no
reconciler: requests go to a handler the caller passes in (``poolkeeper run`` serializes
them with its passes), so this module stays testable with a fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from poolkeeper.control.conditions import ConditionDocuments
from poolkeeper.control.protocol import (
    FORMAT_VERSION,
    MAX_LINE_BYTES,
    ProtocolError,
    Request,
    decode,
    encode,
    reachable_path,
)
from poolkeeper.keys import redact
from poolkeeper.model.conditions import Conditions
from poolkeeper.model.observed import Observed

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[dict[str, Any]]]
"""Serves one request: the ``result`` object of the response, or raises ``RequestRefused``."""

QUEUE_LIMIT = 256
"""Messages a slow client may lag behind before it is disconnected (it re-attaches)."""


class RequestRefused(Exception):
    """A request the server understood but will not carry out (the text says why)."""


class ServerBusy(OSError):
    """Another live process already serves the socket."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


MAPPINGS = frozenset(
    {
        "pruntimes",
        "chain_workers",
        "pools",
        "accounts",
        "relays",
        "relay_details",
        "topped_up_today",
    }
)
"""The ``Observed`` fields keyed by identity: their deltas name the entries that changed."""


class _Observation:
    """The hub's copy of the observation: the mappings' entries as JSON text (compared as
    text, decoded only to be sent), everything else as JSON data. At 10,000 workers the
    decoded entries held ~20 MB; their text is about a third of that."""

    def __init__(
        self, order: list[str], scalars: dict[str, Any], texts: dict[str, dict[str, str]]
    ) -> None:
        self.order = order
        """The observation's keys in their order."""
        self.scalars = scalars
        self.texts = texts
        """Mapping key → entry key → the entry as JSON text."""

    def data(self) -> dict[str, Any]:
        """The observation as JSON data (what a client's view holds)."""
        return {
            key: (
                {k: json.loads(t) for k, t in self.texts[key].items()}
                if key in self.texts
                else self.scalars[key]
            )
            for key in self.order
        }

    def delta(
        self, before: _Observation | None
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
        """(scalar keys set, mapping entries changed, mapping entries removed) since
        ``before``: an entry changed when its text did (equal texts, equal values)."""
        replaced: dict[str, Any] = {}
        changed: dict[str, Any] = {}
        removed: dict[str, list[str]] = {}
        old_scalars = before.scalars if before is not None else {}
        old_texts = before.texts if before is not None else {}
        for key in self.order:
            entries = self.texts.get(key)
            old = old_texts.get(key)
            if entries is not None and old is not None:
                diff = {k: json.loads(t) for k, t in entries.items() if old.get(k) != t}
                gone = [k for k in old if k not in entries]
                if diff:
                    changed[key] = diff
                if gone:
                    removed[key] = gone
                continue
            value = (
                {k: json.loads(t) for k, t in entries.items()}
                if entries is not None
                else self.scalars[key]
            )
            previous = (
                {k: json.loads(t) for k, t in old.items()}
                if old is not None
                else old_scalars.get(key)
            )
            if previous != value:
                replaced[key] = value
        return replaced, changed, removed


def _entry_text(value: Any) -> str:
    return value.model_dump_json() if isinstance(value, BaseModel) else json.dumps(value)


def observation_of_data(observed: dict[str, Any]) -> _Observation:
    """The hub's copy of an observation given as JSON data with string keys."""
    scalars: dict[str, Any] = {}
    texts: dict[str, dict[str, str]] = {}
    for key, value in observed.items():
        if key in MAPPINGS and isinstance(value, dict):
            texts[key] = {str(k): _entry_text(v) for k, v in value.items()}
        else:
            scalars[key] = value
    return _Observation(list(observed), scalars, texts)


def observation_of_model(observed: Observed) -> _Observation:
    """The hub's copy of an ``Observed``: each mapping entry encoded on its own by pydantic
    (as the whole model's JSON has it), the rest through one encoding of the model."""
    fields = list(Observed.model_fields)
    mappings = {
        key for key in fields if key in MAPPINGS and isinstance(getattr(observed, key), dict)
    }
    scalars = json.loads(observed.model_dump_json(exclude=mappings))
    texts = {
        key: {str(k): _entry_text(v) for k, v in getattr(observed, key).items()}
        for key in fields
        if key in mappings
    }
    return _Observation(fields, scalars, texts)


class StatusHub:
    """The current status of the loop and its subscribers (one queue per client)."""

    def __init__(self, *, info: dict[str, Any] | None = None) -> None:
        self.info = dict(info or {})
        """Static facts for ``hello`` (server version, pid, state dir)."""
        self.seq = 0
        self._observation: _Observation | None = None
        self.rows: dict[str, dict[str, Any]] = {}
        self.plan: dict[str, Any] | None = None
        self.plan_seq: int | None = None
        self.inventory_digest: str | None = None
        self.loop: dict[str, Any] = {"state": "starting", "last_pass_at": None, "error": None}
        self.secret_loaded: bool | None = None
        self.accounts: dict[str, str] = {}
        """Account name → address known to the loop (declared or derived: public)."""
        self.ha: dict[str, Any] | None = None
        """``run --ha``: this process's shard, its state and lease (None without HA)."""
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._conditions = ConditionDocuments()

    @property
    def observed(self) -> dict[str, Any] | None:
        """The last observation as JSON data (decoded from the hub's copy: a new client's
        snapshot, tests)."""
        return None if self._observation is None else self._observation.data()

    # ---- what a new client gets

    def hello(self) -> dict[str, Any]:
        return {"type": "hello", "format_version": FORMAT_VERSION, **self.info}

    def snapshot(self) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "format_version": FORMAT_VERSION,
            "seq": self.seq,
            "loop": dict(self.loop),
            "secret_loaded": self.secret_loaded,
            "inventory_digest": self.inventory_digest,
            "accounts": dict(self.accounts),
            "observed": self.observed,
            "rows": list(self.rows.values()),
            "plan": self.plan,
            "plan_seq": self.plan_seq,
            "ha": self.ha,
        }

    # ---- publishing

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def _broadcast(self, message: dict[str, Any]) -> None:
        self.seq += 1
        message["seq"] = self.seq
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                # A client this far behind gets disconnected; it attaches again for a
                # fresh snapshot rather than the server buffering without bound.
                self._subscribers.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)

    def publish_observed(
        self,
        observed: dict[str, Any],
        rows: list[dict[str, Any]],
        conditions: Conditions | None = None,
    ) -> None:
        """A new observation (``Observed`` as JSON data) and its status rows, as deltas.

        With ``conditions`` (the loop's, after this observation), each row carries its
        worker's as ``conditions``; a worker whose conditions did not change keeps the
        same document, so its row is sent again only if something else in it changed."""
        data = json.loads(json.dumps(observed))  # the client's view: string keys
        self._publish(observation_of_data(data), rows, conditions)

    def publish_observation(
        self,
        observed: Observed,
        rows: list[dict[str, Any]],
        conditions: Conditions | None = None,
    ) -> None:
        """``publish_observed`` of an ``Observed`` model: each mapping entry is encoded by
        pydantic on its own and compared as text, and decoded only when it changed (the
        loop's way: 10,000 pRuntime and chain entries a pass)."""
        self._publish(observation_of_model(observed), rows, conditions)

    def _publish(
        self,
        observation: _Observation,
        rows: list[dict[str, Any]],
        conditions: Conditions | None,
    ) -> None:
        by_name = {str(r["worker"]): r for r in rows}
        if conditions is not None:
            documents = self._conditions.documents(conditions)
            for name, row in by_name.items():
                row["conditions"] = documents.get(name) or {}
        replaced, changed, removed = observation.delta(self._observation)
        changed_rows = [r for name, r in by_name.items() if self.rows.get(name) != r]
        removed_rows = [name for name in self.rows if name not in by_name]
        self._observation = observation
        self.rows = by_name
        self._broadcast(
            {
                "type": "observed",
                "set": replaced,
                "changed": changed,
                "removed": removed,
                "rows": changed_rows,
                "removed_rows": removed_rows,
            }
        )

    def publish_plan(self, plan: dict[str, Any], inventory_digest: str | None) -> int:
        """A new plan document; returns its ``plan_seq`` (what an ``apply`` names)."""
        self.plan = plan
        self.inventory_digest = inventory_digest
        self._broadcast({"type": "plan", "inventory_digest": inventory_digest, "plan": plan})
        self.plan_seq = self.seq
        return self.seq

    def publish_ha(self, ha: dict[str, Any]) -> None:
        """This process's HA ownership (``run --ha``), sent when it changes."""
        if ha == self.ha:
            return
        self.ha = dict(ha)
        self._broadcast({"type": "ha", "ha": dict(ha)})

    def publish_event(self, event: str, **fields: Any) -> None:
        """``pass_started``, ``pass_done``, ``action_result``, ``error``, ``reloaded``..."""
        if event == "pass_started":
            self.loop["state"] = fields.get("purpose", "pass")
        elif event == "pass_done":
            self.loop.update(state="idle", last_pass_at=_now(), error=None)
        elif event == "error":
            self.loop.update(state="error", error=fields.get("message"))
        self._broadcast({"type": "event", "event": event, "at": _now(), **fields})

    def close(self) -> None:
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self._subscribers.clear()


class ControlServer:
    """Serves ``hub`` and ``handler`` on a Unix socket (0600) until ``close``."""

    def __init__(self, path: Path, hub: StatusHub, handler: Handler) -> None:
        self.path = path
        self.hub = hub
        self._handler = handler
        self._server: asyncio.AbstractServer | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self) -> None:
        """Bind the socket; a stale file from a dead process is replaced, a live server
        refused (``ServerBusy``)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if await _alive(self.path):
                raise ServerBusy(f"{self.path}: another poolkeeper process serves this state dir")
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o177)
            try:
                with reachable_path(self.path) as where:
                    sock.bind(where)
            finally:
                os.umask(old)
            os.chmod(self.path, 0o600)
            self._server = await asyncio.start_unix_server(
                self._serve, sock=sock, limit=MAX_LINE_BYTES
            )
        except BaseException:
            sock.close()
            raise

    async def close(self) -> None:
        self.hub.close()
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections.values()):
            writer.close()  # the connection's reader sees the end and the task returns
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=2)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        queue = self.hub.subscribe()
        sender = asyncio.create_task(self._send(writer, queue))
        try:
            await self._receive(reader, queue)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.hub.unsubscribe(queue)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._connections.pop(task, None)

    async def _send(
        self, writer: asyncio.StreamWriter, queue: asyncio.Queue[dict[str, Any] | None]
    ) -> None:
        """The one writer of a connection: hello, snapshot, then the stream and the
        responses in the order they happened (a response follows the deltas it caused)."""
        writer.write(_line(self.hub.hello()))
        writer.write(_line(self.hub.snapshot()))
        await writer.drain()
        while True:
            message = await queue.get()
            if message is None:
                writer.close()
                return
            writer.write(_line(message))
            await writer.drain()  # the socket's buffer stays bounded; the queue absorbs

    async def _receive(
        self, reader: asyncio.StreamReader, queue: asyncio.Queue[dict[str, Any] | None]
    ) -> None:
        def out(message: dict[str, Any]) -> None:
            with contextlib.suppress(asyncio.QueueFull):  # full: being dropped already
                queue.put_nowait(message)

        while True:
            line = await reader.readline()
            if not line:
                return
            if not line.strip():
                continue
            try:
                request = Request.from_json(decode(line))
            except ProtocolError as error:
                ident = _id_of(line)
                out(_response(ident, error=f"bad request: {error}"))
                continue
            try:
                result = await self._handler(request)
            except RequestRefused as refusal:
                out(_response(request.id, error=str(refusal)))
            except Exception as error:  # a failed request is answered, the server lives on
                log.exception("control request %s failed", request.request)
                out(_response(request.id, error=f"{type(error).__name__}: {error}"))
            else:
                out(_response(request.id, result=result))


def _line(message: dict[str, Any]) -> bytes:
    """Encoded, with any registered secret masked (the last line of defence)."""
    data = encode(message)
    text = data.decode()
    masked = redact(text)
    return data if masked == text else masked.encode()


def _response(
    ident: Any, *, result: dict[str, Any] | None = None, error: str | None = None
) -> dict[str, Any]:
    if error is not None:
        return {"type": "response", "id": ident, "ok": False, "error": error}
    return {"type": "response", "id": ident, "ok": True, "result": result or {}}


def _id_of(line: bytes) -> Any:
    with contextlib.suppress(Exception):
        data = json.loads(line)
        if isinstance(data, dict):
            return data.get("id")
    return None


async def _alive(path: Path) -> bool:
    """Whether a process accepts connections on ``path`` (else the file is stale)."""
    try:
        with reachable_path(path) as where:
            _, writer = await asyncio.wait_for(asyncio.open_unix_connection(where), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True
