"""A TCP forwarder on loopback for the HA tests, whose ``cut`` closes every connection
through it: the clients must open new ones (a new TLS handshake), as after a network
blip or an etcd restart."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target``, on a loop of its own thread."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True).start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.port: int = self._server.sockets[0].getsockname()[1]

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def cut(self) -> int:
        """Close every connection now; how many there were (both sides counted)."""

        async def close_all() -> int:
            writers = list(self._writers)
            for w in writers:
                w.transport.abort()
            return len(writers)

        return asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(10)

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
