"""Serving devnet chains from a daemon thread, for tests and embedding.

A test wants a chain it can start, reach over the network and stop, from synchronous or
asynchronous code alike. Both handles (one chain; a relay chain with its parachain) run
their servers on an event loop of their own in a daemon thread, and touch the chains
only on that loop. This is that loop: started until the servers listen, a way to run a
function on it, and a stop that drops open connections so shutdown never waits on a
client.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

PortsCallback = Callable[..., None]
"""Called by the serving coroutine with the port(s) it bound, once it listens."""


class _Droppable(Protocol):
    def drop_connections(self) -> int: ...


class BackgroundLoop:
    """An event loop in a daemon thread serving until ``stop``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
        stop: asyncio.Future[None],
    ) -> None:
        self._loop, self._thread, self._stop = loop, thread, stop

    @classmethod
    def start(
        cls,
        name: str,
        serve: Callable[[PortsCallback], Coroutine[Any, Any, None]],
        servers: Sequence[_Droppable],
    ) -> tuple[BackgroundLoop, list[int]]:
        """Run ``serve(on_started)`` in a new thread; return once it reported its ports."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        ports: list[int] = []
        failure: list[BaseException] = []
        stop: asyncio.Future[None] = loop.create_future()

        async def main() -> None:
            def on_started(*bound: int) -> None:
                ports.extend(bound)
                started.set()

            task = asyncio.create_task(serve(on_started))
            done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
            if task in done and task.exception() is not None:
                failure.append(task.exception())  # type: ignore[arg-type]
                started.set()
            for server in servers:
                server.drop_connections()  # clients left open must not hold the shutdown
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(main())
            loop.close()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        started.wait(30)
        if failure or not ports:
            raise RuntimeError(f"{name} did not start: {failure[0] if failure else 'timeout'}")
        return cls(loop, thread, stop), ports

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the loop (the only thread that may touch the chains)."""

        async def wrapper() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(30)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(
                lambda: None if self._stop.done() else self._stop.set_result(None)
            )
            self._thread.join(10)
