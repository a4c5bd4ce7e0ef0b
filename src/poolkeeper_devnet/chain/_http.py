"""JSON-RPC over HTTP POST on the websocket's port, as a Substrate node serves both.

A node answers ``POST /`` with a JSON-RPC body (single or batch) on the same port as its
websocket. The ``websockets`` server only parses GET handshakes, so each connection is
first classified by its request line: ``GET`` goes on to the websocket handshake; anything
else is parsed here as HTTP/1.1 (Content-Length bodies, keep-alive) and answered like
jsonrpsee, the node's server: 405 for other methods than POST, 415 unless the body is
``application/json``, 413 above the size limit, else 200 with the JSON-RPC answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from websockets.asyncio.server import ServerConnection

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 2**26
"""A request body limit as large as the websocket message limit (64 MiB)."""

HandleText = Callable[[bytes], Awaitable[str | None]]
"""Answers one JSON-RPC text (single or batch); None when nothing is to be answered."""


class _BadRequest(Exception):
    """A request that cannot be parsed: answered with this status, then the connection closes."""


@dataclass(frozen=True)
class _Request:
    method: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool
    refusal: str | None = None
    """The status of a request that could not be parsed (the last one of the connection)."""


class HttpExchange:
    """One HTTP connection: requests parsed in order, answered in order."""

    def __init__(self, transport: asyncio.Transport, handle: HandleText) -> None:
        self.transport = transport
        self.handle = handle
        self.buffer = bytearray()
        self.requests: asyncio.Queue[_Request | None] = asyncio.Queue()
        self.worker = asyncio.get_running_loop().create_task(self._answer())
        self.closed = False

    def feed(self, data: bytes) -> None:
        if self.closed:
            return
        self.buffer += data
        while not self.closed:
            try:
                request = self._take_request()
            except _BadRequest as exc:
                self.requests.put_nowait(_Request("", {}, b"", False, refusal=str(exc)))
                self.closed = True
                return
            if request is None:
                return
            self.requests.put_nowait(request)

    def _take_request(self) -> _Request | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise _BadRequest("431 Request Header Fields Too Large")
            return None
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest("400 Bad Request")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest("400 Bad Request")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise _BadRequest("411 Length Required")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _BadRequest("400 Bad Request") from None
        if length < 0:
            raise _BadRequest("400 Bad Request")
        if length > MAX_BODY_BYTES:
            raise _BadRequest("413 Payload Too Large")
        if len(self.buffer) < end + 4 + length:
            return None
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        keep_alive = (
            parts[2] == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        ) or headers.get("connection", "").lower() == "keep-alive"
        return _Request(parts[0], headers, body, keep_alive)

    async def _answer(self) -> None:
        while True:
            request = await self.requests.get()
            if request is None:
                return
            keep_alive = request.keep_alive
            if request.refusal is not None:
                self._respond(request.refusal, "", keep_alive=False)
                return
            if request.method != "POST":
                self._respond("405 Method Not Allowed", "", keep_alive)
            elif "json" not in request.headers.get("content-type", "").lower():
                self._respond(
                    "415 Unsupported Media Type",
                    "Supplied content type is not allowed. Content-Type: application/json is "
                    "required",
                    keep_alive,
                )
            else:
                answer = await self.handle(request.body)
                self._respond("200 OK", answer or "", keep_alive, json_body=True)
            if not keep_alive:
                return

    def _respond(
        self, status: str, body: str, keep_alive: bool, *, json_body: bool = False
    ) -> None:
        if self.transport.is_closing():
            return
        data = body.encode()
        content_type = "application/json; charset=utf-8" if json_body else "text/plain"
        head = (
            f"HTTP/1.1 {status}\r\n"
            f"content-type: {content_type}\r\n"
            f"content-length: {len(data)}\r\n"
            f"connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        self.transport.write(head.encode() + data)
        if not keep_alive:
            self.transport.close()

    def close(self) -> None:
        self.closed = True
        self.requests.put_nowait(None)
        if not self.worker.done():
            self.worker.cancel()


class SharedPortConnection(ServerConnection):
    """A connection of the websocket server that may turn out to be plain HTTP.

    Subclassed per server by ``shared_port_connection`` to know where HTTP goes.
    """

    handle_http: ClassVar[HandleText]
    http_transports: ClassVar[set[asyncio.Transport]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = b""
        self._websocket = False
        self._http: HttpExchange | None = None

    def data_received(self, data: bytes) -> None:
        if self._websocket:
            super().data_received(data)
            return
        if self._http is not None:
            self._http.feed(data)
            return
        self._head += data
        if len(self._head) < 4:
            return
        data, self._head = self._head, b""
        if data.startswith(b"GET "):
            self._websocket = True
            super().data_received(data)
            return
        self._http = HttpExchange(self.transport, type(self).handle_http)
        type(self).http_transports.add(self.transport)
        self._http.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._http is not None:
            type(self).http_transports.discard(self.transport)
            self._http.close()
        super().connection_lost(exc)


def shared_port_connection(
    handle: HandleText, transports: set[asyncio.Transport]
) -> type[SharedPortConnection]:
    """A ``create_connection`` class for ``websockets.serve`` answering HTTP with ``handle``."""
    return type(
        "DevnetConnection",
        (SharedPortConnection,),
        {"handle_http": staticmethod(handle), "http_transports": transports},
    )
