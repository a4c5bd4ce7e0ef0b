"""The lean HTTP/1.1 client: keep-alive reuse, stale connections, chunked answers, failures."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest

from poolkeeper.pruntime._http1 import Http1Pool, HttpProtocolError


async def serve(
    answer: Callable[[int], bytes], *, close_after: bool = False
) -> tuple[asyncio.Server, list[int]]:
    """A raw server answering request n with ``answer(n)``; records connections opened."""
    connections: list[int] = []
    counter = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode().split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                await reader.readexactly(length)
                counter[0] += 1
                writer.write(answer(counter[0]))
                await writer.drain()
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, connections


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


@pytest.fixture
async def pool() -> AsyncIterator[Http1Pool]:
    client = Http1Pool(timeout=2.0)
    yield client
    await client.aclose()


async def test_keep_alive_reuses_one_connection(pool: Http1Pool) -> None:
    server, connections = await serve(
        lambda n: b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n" + str(n).encode()
    )
    async with server:
        url = f"http://127.0.0.1:{port_of(server)}/prpc/X"
        assert [await pool.post(url, b"abc") for _ in range(3)] == [
            (200, b"1"),
            (200, b"2"),
            (200, b"3"),
        ]
        assert len(connections) == 1


async def test_a_connection_closed_by_the_server_is_replaced(pool: Http1Pool) -> None:
    server, connections = await serve(
        lambda n: b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 2\r\n\r\nno",
        close_after=True,
    )
    async with server:
        url = f"http://127.0.0.1:{port_of(server)}/"
        assert await pool.post(url, b"") == (500, b"no")
        await asyncio.sleep(0.05)
        assert await pool.post(url, b"") == (500, b"no")
        assert len(connections) == 2


async def test_chunked_answers_are_reassembled(pool: Http1Pool) -> None:
    body = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    server, _ = await serve(lambda n: body)
    async with server:
        url = f"http://127.0.0.1:{port_of(server)}/"
        assert await pool.post(url, b"") == (200, b"abcde")
        assert await pool.post(url, b"") == (200, b"abcde")


async def test_garbage_answer_is_a_protocol_error(pool: Http1Pool) -> None:
    server, _ = await serve(lambda n: b"SSH-2.0-OpenSSH\r\n\r\n")
    async with server:
        with pytest.raises(HttpProtocolError):
            await pool.post(f"http://127.0.0.1:{port_of(server)}/", b"")


async def test_refused_and_timeout(pool: Http1Pool) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError):
        await pool.post(f"http://127.0.0.1:{port}/", b"")
    held: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda r, w: held.append(w), "127.0.0.1", 0)
    async with silent:
        quick = Http1Pool(timeout=0.2)
        with pytest.raises(TimeoutError):
            await quick.post(f"http://127.0.0.1:{port_of(silent)}/", b"")
        await quick.aclose()


async def test_only_plain_http(pool: Http1Pool) -> None:
    with pytest.raises(ValueError):
        await pool.post("https://127.0.0.1:1/", b"")


def test_request_lines_as_urlsplit_reads_them() -> None:
    pool = Http1Pool(timeout=1.0, user_agent="ua")
    for url, target, netloc in [
        (
            "http://10.0.0.5:8000/prpc/PhactoryAPI.GetInfo",
            "/prpc/PhactoryAPI.GetInfo",
            "10.0.0.5:8000",
        ),
        ("http://h:1/prpc/PhactoryAPI.GetInfo?json", "/prpc/PhactoryAPI.GetInfo?json", "h:1"),
        ("http://h:1?x=1", "/?x=1", "h:1"),
        ("http://h", "/", "h"),
        ("http://h:2/a#frag", "/a", "h:2"),
        ("http://[::1]:8000/w/3/prpc/X", "/w/3/prpc/X", "[::1]:8000"),
    ]:
        key, start = pool._target(url)
        parts = urlsplit(url)
        assert key == (parts.hostname, parts.port or 80)
        assert start == f"POST {target} HTTP/1.1\r\nhost: {netloc}\r\nuser-agent: ua\r\n".encode()
    with pytest.raises(ValueError):
        pool._target("https://h/x")


def test_parsed_targets_stay_within_their_byte_bound() -> None:
    """One entry per pRuntime method URL was ~470 bytes: 28 MB at 10,000 workers and six
    methods, filling up as workers went through their phases. What the pool keeps of the
    URLs it saw stays within ``_MAX_HOST_BYTES``, on one host or on many."""
    import gc
    import tracemalloc

    from poolkeeper.pruntime._http1 import _MAX_HOST_BYTES

    pool = Http1Pool(timeout=1.0)
    methods = ("GetInfo", "SyncHeader", "DispatchBlocks", "GetEgressMessages", "InitRuntime")
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(6_000):
            for method in methods:
                pool._target(f"http://127.0.0.1:8000/w/{i}/prpc/PhactoryAPI.{method}")
        for i in range(20_000):
            pool._target(f"http://10.{i // 250}.{i % 250}.1:8000/prpc/PhactoryAPI.GetInfo")
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 2 * _MAX_HOST_BYTES


async def post_soon(pool: Http1Pool, url: str, body: bytes) -> tuple[int, bytes, object]:
    """``post_soon``'s callback as a result (the test's only future)."""
    done: asyncio.Future[tuple[int, bytes, object]] = asyncio.get_running_loop().create_future()
    pool.post_soon(url, body, lambda s, b, e: done.set_result((s, b, e)))
    return await asyncio.wait_for(done, 5)


async def test_post_soon_answers_by_callback_on_kept_alive_connections(pool: Http1Pool) -> None:
    server, connections = await serve(
        lambda n: b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n" + str(n).encode()
    )
    async with server:
        url = f"http://127.0.0.1:{port_of(server)}/prpc/X"
        assert await pool.post(url, b"abc") == (200, b"1")  # opens the connection
        answers = [await post_soon(pool, url, b"x" * size) for size in (3, 20_000, 3)]
        assert answers == [(200, b"2", None), (200, b"3", None), (200, b"4", None)]
        assert len(connections) == 1


async def test_post_soon_without_an_idle_connection_or_on_a_stale_one(pool: Http1Pool) -> None:
    server, connections = await serve(
        lambda n: b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", close_after=True
    )
    async with server:
        url = f"http://127.0.0.1:{port_of(server)}/"
        assert await post_soon(pool, url, b"") == (200, b"ok", None)  # connects in a task
        await asyncio.sleep(0.05)  # the server has closed the kept connection
        assert await post_soon(pool, url, b"") == (200, b"ok", None)  # retried on a new one
        assert len(connections) == 2


async def test_post_soon_errors_and_abort(pool: Http1Pool) -> None:
    server, _ = await serve(lambda n: b"SSH-2.0-OpenSSH\r\n\r\n")
    async with server:
        status, _body, error = await post_soon(pool, f"http://127.0.0.1:{port_of(server)}/", b"")
        assert status == 0 and isinstance(error, HttpProtocolError)
    # answers the first request, then stays silent
    first_only, _ = await serve(
        lambda n: b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n1" if n == 1 else b""
    )
    async with first_only:
        url = f"http://127.0.0.1:{port_of(first_only)}/"
        assert await post_soon(pool, url, b"") == (200, b"1", None)
        outcomes: list[tuple[int, object]] = []
        abort = pool.post_soon(url, b"", lambda s, b, e: outcomes.append((s, e)))  # kept conn
        await asyncio.sleep(0.05)
        assert outcomes == []  # no answer comes
        abort()
        await asyncio.sleep(0.05)
        assert len(outcomes) == 1 and outcomes[0][0] == 0
        assert isinstance(outcomes[0][1], TimeoutError)
        abort = pool.post_soon(url, b"", lambda s, b, e: outcomes.append((s, e)))  # in a task
        await asyncio.sleep(0.05)
        abort()
        await asyncio.sleep(0.05)
        assert len(outcomes) == 2 and isinstance(outcomes[1][1], TimeoutError)
