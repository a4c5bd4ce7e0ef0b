"""A minimal HTTP/1.1 server on asyncio, enough for pRPC and the devnet admin endpoint.

One simulator process serves thousands of pRuntimes, so the server is an
``asyncio.Protocol`` with keep-alive and no per-request task unless a handler has to
wait (the "slow" fault). It checks ``Content-Length`` against a per-route limit before
reading a body (pRuntime answers 413 ``Entity too large`` there), and a handler can ask
to drop the connection without an answer (the "unreachable" fault).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

_MAX_HEAD = 64 * 1024


@dataclass
class Request:
    """A parsed request; ``path`` excludes the query string."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""
    local_port: int = 0


@dataclass
class Response:
    """What to answer; ``drop`` closes the connection without answering."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    close: bool = False
    drop: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)


class Handler:
    """What the server calls: a body limit per request head, then the request itself."""

    open_connections: set[asyncio.Transport]

    def close_connections(self) -> None:
        """Abort every open connection (server shutdown, or a worker gone unreachable)."""
        for transport in list(getattr(self, "open_connections", ())):
            transport.abort()

    def body_limit(self, request: Request) -> int:
        raise NotImplementedError

    def accept(self, local_port: int) -> bool:
        """False drops new connections on that port at once."""
        return True

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        raise NotImplementedError


class _Connection(asyncio.Protocol):
    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._registered: asyncio.Transport | None = None
        self._task: asyncio.Future[None] | None = None
        self._pending: Request | None = None
        self._need = 0
        self._busy = False
        self._keep_alive = True
        self._port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if not hasattr(self._handler, "open_connections"):
            self._handler.open_connections = set()
        self._handler.open_connections.add(transport)
        self._registered = transport
        sockname = transport.get_extra_info("sockname")
        self._port = int(sockname[1]) if sockname else 0
        if not self._handler.accept(self._port):
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._registered is not None:
            self._handler.open_connections.discard(self._registered)
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._process()

    def _process(self) -> None:
        while self._transport is not None and not self._busy:
            if self._pending is None:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buffer) > _MAX_HEAD:
                        self._answer(Response(431, b"Request header too large", close=True))
                    return
                head = bytes(self._buffer[:end]).decode("latin-1")
                del self._buffer[: end + 4]
                request = _parse_head(head, self._port)
                if request is None:
                    self._answer(Response(400, b"Bad request", close=True))
                    return
                length_text = request.headers.get("content-length", "0")
                if "chunked" in request.headers.get("transfer-encoding", ""):
                    self._answer(Response(411, b"Length required", close=True))
                    return
                try:
                    length = int(length_text)
                except ValueError:
                    self._answer(Response(400, b"Bad content-length", close=True))
                    return
                if length > self._handler.body_limit(request):
                    self._answer(Response(413, b"Entity too large", close=True))
                    return
                self._keep_alive = request.headers.get("connection", "").lower() != "close"
                self._pending = request
                self._need = length
            if len(self._buffer) < self._need:
                return
            request = self._pending
            request.body = bytes(self._buffer[: self._need])
            del self._buffer[: self._need]
            self._pending = None
            result = self._handler.handle(request)
            if isinstance(result, Response):
                self._answer(result)
            else:
                self._busy = True
                self._task = asyncio.ensure_future(self._finish(result))

    async def _finish(self, pending: Awaitable[Response]) -> None:
        try:
            response = await pending
        except Exception as exc:
            response = Response(500, f"simulator error: {exc!r}".encode())
        self._busy = False
        self._answer(response)
        if self._transport is not None and self._buffer:
            self._process()

    def _answer(self, response: Response) -> None:
        transport = self._transport
        if transport is None:
            return
        if response.drop:
            transport.abort()
            self._transport = None
            return
        close = response.close or not self._keep_alive
        reason = _REASONS.get(response.status, "Unknown")
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"content-type: {response.content_type}",
            f"content-length: {len(response.body)}",
        ]
        lines += [f"{k}: {v}" for k, v in response.extra_headers.items()]
        if close:
            lines.append("connection: close")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)
        if close:
            transport.close()
            self._transport = None


_REASONS = {status.value: status.phrase for status in HTTPStatus}


def _parse_head(head: str, port: int) -> Request | None:
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    method, target, _version = parts
    path, _, query = target.partition("?")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    return Request(method, path, query, headers, local_port=port)


async def serve(handler: Handler, host: str, port: int, *, backlog: int = 2048) -> asyncio.Server:
    """Listen on ``host:port`` (0 = any free port)."""
    loop = asyncio.get_running_loop()
    factory: Callable[[], asyncio.Protocol] = lambda: _Connection(handler)  # noqa: E731
    return await loop.create_server(factory, host, port, backlog=backlog, reuse_address=True)
