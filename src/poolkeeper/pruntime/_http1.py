"""A lean keep-alive HTTP/1.1 client for plain-``http://`` pRPC calls.

A pool manager polls thousands of pRuntimes every round. httpx costs about 0.8 ms of
CPU per request and its pool bookkeeping grows with the number of open connections,
which made 10,000 GetInfo calls take minutes with 500 in flight (docs/benchmarks.md).
pRPC needs little of HTTP: a POST with a body, a status and a body back, over plain TCP.
This module does exactly that on asyncio protocols, with idle connections kept per host
and a stale keep-alive connection retried once. ``https://`` URLs stay with httpx.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

_MAX_HEAD = 64 * 1024
_JOIN_BELOW = 16 * 1024  # smaller bodies go out with their head in one write


class HttpProtocolError(ConnectionError):
    """The peer answered something that is not HTTP/1.1, or closed mid-answer."""


Answered = Callable[[int, bytes, bool, BaseException | None], None]
"""Called once with ``(status, body, keep_alive, None)``, or ``(0, b"", False, error)``."""


class _Exchange(asyncio.Protocol):
    """One TCP connection; carries one request/response at a time, answered to a future
    (``send``) or to a callback (``start``: no future, no task)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.on_answer: Answered | None = None
        self.closed = False
        self.got_bytes = False
        self.aborted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an ``asyncio.Transport`` subclass); idempotent:
        # the pool calls it too, see ``_exchange``.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = HttpProtocolError(f"connection closed: {exc or 'by peer'}")
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        on_answer, self.on_answer = self.on_answer, None
        if on_answer is not None:
            on_answer(0, b"", False, error)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.buffer += data
        waiter = self.waiter
        on_answer = self.on_answer
        if on_answer is None and (waiter is None or waiter.done()):
            return
        try:
            parsed = _parse_response(self.buffer)
        except HttpProtocolError as exc:
            if on_answer is not None:
                self.on_answer = None
                self.close()
                on_answer(0, b"", False, exc)
            elif waiter is not None:
                waiter.set_exception(exc)
            return
        if parsed is not None:
            status, body, keep_alive, consumed = parsed
            del self.buffer[:consumed]
            if on_answer is not None:
                self.on_answer = None
                on_answer(status, body, keep_alive, None)
            elif waiter is not None:
                waiter.set_result((status, body, keep_alive))

    def send(self, head: bytes, body: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        waiter = asyncio.get_running_loop().create_future()
        self._write(head, body, waiter, None)
        return waiter

    def start(self, head: bytes, body: bytes, on_answer: Answered) -> None:
        self._write(head, body, None, on_answer)

    def _write(
        self,
        head: bytes,
        body: bytes,
        waiter: asyncio.Future[tuple[int, bytes, bool]] | None,
        on_answer: Answered | None,
    ) -> None:
        assert self.transport is not None
        self.got_bytes = False
        self.buffer.clear()
        self.waiter = waiter
        self.on_answer = on_answer
        if len(body) < _JOIN_BELOW:
            self.transport.write(head + body)
        else:  # a large body (the same object for many workers) is not copied to join it
            self.transport.write(head)
            self.transport.write(body)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def abort(self) -> None:
        """Give up the request in progress (its answer becomes an error)."""
        self.aborted = True
        self.close()


def _parse_response(buffer: bytearray) -> tuple[int, bytes, bool, int] | None:
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > _MAX_HEAD:
            raise HttpProtocolError("response head too large")
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status_line = head[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
        raise HttpProtocolError(f"not an HTTP/1.x answer: {head[0][:80]!r}")
    status = int(status_line[1])
    headers: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    keep_alive = headers.get("connection", "").lower() != "close" and status_line[0] != "HTTP/1.0"
    start = end + 4
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _parse_chunked(buffer, start, status, keep_alive)
    length_text = headers.get("content-length")
    if length_text is None:
        raise HttpProtocolError("answer without content-length")
    length = int(length_text)
    if len(buffer) < start + length:
        return None
    return status, bytes(buffer[start : start + length]), keep_alive, start + length


def _parse_chunked(
    buffer: bytearray, pos: int, status: int, keep_alive: bool
) -> tuple[int, bytes, bool, int] | None:
    body = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buffer[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", pos - 2)
            if trailer_end < 0:
                return None
            return status, bytes(body), keep_alive, trailer_end + 4
        if len(buffer) < pos + size + 2:
            return None
        body += buffer[pos : pos + size]
        pos += size + 2


_MAX_HOST_BYTES = 1 << 20
"""Bytes the parsed hosts may hold (``_host``); past it they are parsed afresh.

Kept per ``host:port``, not per URL: one entry per pRuntime method URL (the first
request line of each) was ~470 bytes an entry, 28 MB at 10,000 workers and six methods,
filling up over hours as workers went through their phases (docs/benchmarks.md, "Soak")."""
_HOST_ENTRY_BYTES = 200
"""Charged per parsed host on top of its ``host:port`` (dict slot, tuple, strings)."""


class Http1Pool:
    """Keep-alive connections per ``host:port``; ``post`` returns ``(status, body)``.

    Raises ``TimeoutError`` after ``timeout`` seconds, ``OSError`` (including
    ``HttpProtocolError``) when the peer is unreachable or breaks the protocol.
    """

    def __init__(self, *, timeout: float, user_agent: str = "poolkeeper") -> None:
        self._timeout = timeout
        self._user_agent = user_agent
        self._agent_line = f"user-agent: {user_agent}\r\n"
        self._idle: defaultdict[tuple[str, int], list[_Exchange]] = defaultdict(list)
        self._busy: set[_Exchange] = set()
        self._hosts: dict[str, tuple[str, int]] = {}
        self._host_bytes = 0

    @property
    def timeout(self) -> float:
        """Seconds a request may take (``post_soon``'s callers enforce it themselves)."""
        return self._timeout

    async def post(
        self, url: str, body: bytes, content_type: str | None = None
    ) -> tuple[int, bytes]:
        key, request = self._request(url, body, content_type)
        async with asyncio.timeout(self._timeout):
            return await self._exchange(key, request, body)

    def _request(
        self, url: str, body: bytes, content_type: str | None = None
    ) -> tuple[tuple[str, int], bytes]:
        """``(host, port)`` and the request's head for ``body``."""
        key, start = self._target(url)
        head = f"content-length: {len(body)}\r\n"
        if content_type:
            head += f"content-type: {content_type}\r\n"
        return key, start + head.encode("latin-1") + b"\r\n"

    def post_soon(
        self, url: str, body: bytes, on_done: Callable[[int, bytes, BaseException | None], None]
    ) -> Callable[[], None]:
        """Send now on an idle keep-alive connection and call ``on_done(status, body,
        None)`` or ``on_done(0, b"", error)`` from the protocol: no task, no future, no
        timer per request, which is most of a request's CPU when thousands of pRuntimes
        are sent the same block. Without an idle connection (or when an idle one turns
        out closed by the server before answering) the request goes through ``post``'s
        path in a task. No timeout here: the caller calls the returned function to abort
        (the answer is then an error)."""
        key, request = self._request(url, body)
        idle = self._idle[key]
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            self._busy.add(connection)

            def answered(
                status: int,
                answer: bytes,
                keep_alive: bool,
                error: BaseException | None,
                connection: _Exchange = connection,
            ) -> None:
                self._busy.discard(connection)
                if error is not None:
                    connection.close()
                    if connection.aborted:
                        on_done(0, b"", TimeoutError("aborted"))
                        return
                    if not connection.got_bytes and isinstance(error, HttpProtocolError):
                        # the server closed an idle keep-alive connection: a fresh one
                        self._post_in_task(key, request, body, on_done)
                        return
                    on_done(0, b"", error)
                    return
                if keep_alive and not connection.closed:
                    self._idle[key].append(connection)
                else:
                    connection.close()
                on_done(status, answer, None)

            connection.start(request, body, answered)
            return connection.abort
        return self._post_in_task(key, request, body, on_done)

    def _post_in_task(
        self,
        key: tuple[str, int],
        request: bytes,
        body: bytes,
        on_done: Callable[[int, bytes, BaseException | None], None],
    ) -> Callable[[], None]:
        task = asyncio.ensure_future(self._exchange(key, request, body))

        def finished(task: asyncio.Task[tuple[int, bytes]]) -> None:
            if task.cancelled():
                on_done(0, b"", TimeoutError("aborted"))
            elif (error := task.exception()) is not None:
                on_done(0, b"", error)
            else:
                status, answer = task.result()
                on_done(status, answer, None)

        task.add_done_callback(finished)

        def abort() -> None:
            task.cancel()

        return abort

    def _target(self, url: str) -> tuple[tuple[str, int], bytes]:
        """``(host, port)`` and the request's first lines; the host parsed once per
        ``host:port`` (within ``_MAX_HOST_BYTES``), the lines built per request."""
        if not url.startswith("http://"):
            raise ValueError(f"Http1Pool serves plain http:// URLs, not {url!r}")
        netloc, slash, path = url[7:].partition("/")
        if "?" in netloc or "#" in netloc:  # no path, a query or fragment right away
            end = min(i for i in (netloc.find("?"), netloc.find("#")) if i >= 0)
            netloc, path = netloc[:end], netloc[end:] + slash + path
        if "#" in path:
            path = path.partition("#")[0]
        start = f"POST /{path} HTTP/1.1\r\nhost: {netloc}\r\n{self._agent_line}".encode("latin-1")
        return self._host(url, netloc), start

    def _host(self, url: str, netloc: str) -> tuple[str, int]:
        known = self._hosts.get(netloc)
        if known is not None:
            return known
        parts = urlsplit(url)
        if parts.hostname is None:
            raise ValueError(f"Http1Pool serves plain http:// URLs, not {url!r}")
        size = len(netloc) + _HOST_ENTRY_BYTES
        if self._host_bytes + size > _MAX_HOST_BYTES:
            self._hosts.clear()
            self._host_bytes = 0
        known = self._hosts[netloc] = (parts.hostname, parts.port or 80)
        self._host_bytes += size
        return known

    async def _exchange(
        self, key: tuple[str, int], request: bytes, body: bytes
    ) -> tuple[int, bytes]:
        idle = self._idle[key]
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            try:
                return await self._send(key, connection, request, body)
            except HttpProtocolError:
                if connection.got_bytes:
                    raise
                # the server closed an idle keep-alive connection: try a fresh one
                break
        loop = asyncio.get_running_loop()
        transport, connection = await loop.create_connection(_Exchange, key[0], key[1])
        # uvloop may return before it has called ``connection_made``.
        connection.connection_made(transport)
        return await self._send(key, connection, request, body)

    async def _send(
        self, key: tuple[str, int], connection: _Exchange, request: bytes, body: bytes
    ) -> tuple[int, bytes]:
        self._busy.add(connection)
        try:
            status, answer, keep_alive = await connection.send(request, body)
        except BaseException:
            connection.close()
            raise
        finally:
            self._busy.discard(connection)
        if keep_alive and not connection.closed:
            self._idle[key].append(connection)
        else:
            connection.close()
        return status, answer

    async def aclose(self) -> None:
        """Close every connection, idle or busy."""
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        for connection in list(self._busy):
            connection.close()
