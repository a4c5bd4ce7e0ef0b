"""One node endpoint: one pipelined websocket, and substrate-interface as a codec over it.

Why: the adapter used to open up to four websockets per endpoint (substrate-interface's
own, the pipelined reads, the head subscription, the relays), each reconnecting, timing
out and failing in its own way. Here every request of the adapter goes through one
``AsyncRpc`` (the one socket, given by the caller to share it with the relays).
substrate-interface is kept for what it does well offline: metadata decoding, call and
extrinsic encoding, signing payloads, events decoding. Its requests (the metadata, a
runtime check, a storage query) are bridged onto the same ``AsyncRpc``: it is handed a
websocket-like object whose ``send`` runs the request on the event loop, so it never
opens a socket of its own.

substrate-interface is synchronous and not thread-safe, so its work runs on one
single-thread executor; the event loop stays free while it waits for its answers.
Errors are mapped here, at the boundary: a node that cannot be reached is
``ChainUnavailable``; a node that answers a JSON-RPC error is ``ChainNodeError``
naming the node and the method (both temporary: the pass is retried).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import json
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from substrateinterface import SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException

from poolkeeper.chain._decoder_classes import CachingRuntimeConfiguration
from poolkeeper.chain._rpc import AsyncRpc, RpcError
from poolkeeper.errors import ChainNodeError, ChainUnavailable

T = TypeVar("T")


class NodeConnection:
    """The adapter's way to one node: ``call`` (pipelined JSON-RPC on the event loop) and
    ``run`` (substrate-interface work on its thread, its requests on the same socket)."""

    def __init__(
        self,
        url: str,
        *,
        ss58_format: int | None = None,
        timeout_seconds: float = 120.0,
        rpc: AsyncRpc | None = None,
    ) -> None:
        self.url = url
        self._ss58_format = ss58_format
        self._timeout = timeout_seconds
        self._given_rpc = rpc
        self._given_loop: asyncio.AbstractEventLoop | None = None
        self._rpc: AsyncRpc | None = None
        self._rpc_loop: asyncio.AbstractEventLoop | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain")
        self._substrate: SubstrateInterface | None = None
        self._bridge = _RpcBridge(url, timeout_seconds)
        self._on_drop: list[Callable[[], None]] = []
        self.round_trips = 0
        """JSON-RPC requests made, the codec's own included."""

    @property
    def ss58_format(self) -> int:
        return self._ss58_format if self._ss58_format is not None else 42

    def on_drop(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` when the codec is dropped (its metadata caches are stale then)."""
        self._on_drop.append(hook)

    def rpc(self) -> AsyncRpc:
        """The socket of the running event loop: the given one on the loop that first used
        it (an ``AsyncRpc`` belongs to one loop), else one of the adapter's own."""
        loop = asyncio.get_running_loop()
        if self._given_rpc is not None:
            if self._given_loop is None:
                self._given_loop = loop
            if self._given_loop is loop:
                return self._given_rpc
        if self._rpc is None or self._rpc_loop is not loop:
            self._rpc = AsyncRpc(self.url, timeout_seconds=self._timeout)
            self._rpc_loop = loop
        return self._rpc

    async def call(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC request, pipelined with any others in flight."""
        self.round_trips += 1
        try:
            return await self.rpc().call(method, params, timeout=self._timeout)
        except RpcError as exc:
            raise ChainNodeError(self.url, method, _rpc_error_text(exc)) from None

    async def run(self, fn: Callable[[SubstrateInterface], T]) -> T:
        """``fn(codec)`` on the codec's thread; its requests go over ``rpc()``."""
        loop = asyncio.get_running_loop()
        rpc = self.rpc()
        return await loop.run_in_executor(self._pool, self._call_sync, fn, loop, rpc)

    def _call_sync(
        self, fn: Callable[[SubstrateInterface], T], loop: asyncio.AbstractEventLoop, rpc: AsyncRpc
    ) -> T:
        self._bridge.bind(loop, rpc)
        try:
            if self._substrate is None:
                self._substrate = self._open()
            return fn(self._substrate)
        except ChainUnavailable:
            self._drop()
            raise
        except SubstrateRequestException as exc:
            # ``failed_method`` is None when the library itself refused an answer
            method = self._bridge.failed_method or ""
            detail = _error_text(exc.args[0] if exc.args else exc)
            raise ChainNodeError(self.url, method, detail) from None

    def _open(self) -> SubstrateInterface:
        substrate = SubstrateInterface(
            websocket=self._bridge,
            ss58_format=self._ss58_format,
            runtime_config=CachingRuntimeConfiguration(),
        )
        self._count_requests(substrate)
        substrate.init_runtime()
        fmt = substrate.ss58_format
        if fmt is None:
            fmt = substrate.properties.get("ss58Format", 42)
            substrate.ss58_format = int(fmt)
        self._ss58_format = int(fmt)
        # The decoded metadata is some 100,000 long-lived objects; left to the cyclic
        # collector, every full collection walks them all again (about 40 % of the CPU
        # of reading 10,000 workers). Nothing in it is garbage; what is garbage now (a
        # dropped connection's codec, after a reconnect) is collected first, or frozen
        # objects would never be freed.
        gc.collect()
        gc.freeze()
        return substrate

    def _count_requests(self, s: SubstrateInterface) -> None:
        """Count the codec's requests in ``round_trips`` (the library makes some of its
        own, e.g. to check the runtime)."""
        request = s.rpc_request

        def counted(method: str, params: Any, result_handler: Any = None) -> Any:
            self.round_trips += 1
            return request(method, params, result_handler)

        s.rpc_request = counted

    def _drop(self) -> None:
        if self._substrate is not None:
            # let the collector reclaim this codec's metadata (frozen when it loaded);
            # the next one freezes what is still alive again
            gc.unfreeze()
        self._substrate = None
        for hook in self._on_drop:
            hook()

    async def close(self) -> None:
        if self._rpc is not None and self._rpc_loop is asyncio.get_running_loop():
            await self._rpc.close()  # the adapter's own (a given one is its owner's)
        self._rpc = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._drop)
        self._pool.shutdown(wait=False)


class _RpcBridge:
    """What substrate-interface takes for a websocket (``send``/``recv``/``close``): each
    request it sends is made on the event loop over ``AsyncRpc``, its answer queued for
    ``recv``. A JSON-RPC error is answered as the node's error (the library raises its
    ``SubstrateRequestException``; ``failed_method`` names the request)."""

    def __init__(self, url: str, timeout_seconds: float) -> None:
        self._url = url
        self._timeout = timeout_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rpc: AsyncRpc | None = None
        self._answers: deque[str] = deque()
        self.failed_method: str | None = None
        self.connected = True  # read by websocket-client-aware code paths

    def bind(self, loop: asyncio.AbstractEventLoop, rpc: AsyncRpc) -> None:
        self._loop, self._rpc = loop, rpc
        self._answers.clear()
        self.failed_method = None

    def send(self, text: str) -> None:
        request = json.loads(text)
        method = str(request.get("method", ""))
        if self._loop is None or self._rpc is None:
            raise ChainUnavailable(f"{self._url}: {method} outside a chain call")
        future = asyncio.run_coroutine_threadsafe(
            self._rpc.call(method, request.get("params") or [], timeout=self._timeout),
            self._loop,
        )
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        try:
            answer["result"] = self._wait(future, self._loop, method)
        except RpcError as exc:
            self.failed_method = method
            answer["error"] = {"code": exc.code, "message": exc.rpc_message}
            if exc.data not in (None, ""):
                answer["error"]["data"] = exc.data
        except concurrent.futures.CancelledError as exc:
            raise ChainUnavailable(f"{self._url}: {method} cancelled") from exc
        self._answers.append(json.dumps(answer))

    def _wait(
        self, future: concurrent.futures.Future[Any], loop: asyncio.AbstractEventLoop, method: str
    ) -> Any:
        """The request's result; gives up when the loop stops (a finished ``asyncio.run``
        must not leave this thread waiting, the interpreter joins it at exit)."""
        deadline = time.monotonic() + self._timeout + 5.0
        while True:
            try:
                return future.result(timeout=1.0)
            except concurrent.futures.TimeoutError:
                if not loop.is_running() or time.monotonic() > deadline:
                    future.cancel()
                    raise ChainUnavailable(f"{self._url}: {method} timed out") from None

    def recv(self) -> str:
        if not self._answers:
            # Only subscriptions wait for unsolicited messages; the adapter makes none
            # through the codec (heads are followed on ``AsyncRpc`` directly).
            raise ChainUnavailable(f"{self._url}: no answer pending (subscriptions unsupported)")
        return self._answers.popleft()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._answers.clear()


def _rpc_error_text(exc: RpcError) -> str:
    return _error_text({"code": exc.code, "message": exc.rpc_message, "data": exc.data})


def _error_text(error: object) -> str:
    """``code: message: data`` of a JSON-RPC error, whatever shape the node used."""
    if isinstance(error, dict):
        parts = [str(error.get("code", "")), str(error.get("message", ""))]
        if error.get("data") not in (None, ""):
            parts.append(str(error["data"]))
        return ": ".join(p for p in parts if p)
    return str(error)
