"""A small async JSON-RPC client over one websocket, with requests pipelined.

substrate-interface serialises every request on its connection; the relays need
hundreds of header and storage-change requests per second, so they use this client,
which keeps many requests in flight on one socket and matches replies by id.
It also carries subscriptions (new heads for the block follower), on a connection of
their own: a subscription does not survive a reconnect; its reader then raises
``ChainUnavailable`` and the owner subscribes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import deque
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from poolkeeper.errors import ChainCallFailed, ChainUnavailable


class RpcError(ChainCallFailed):
    """The node answered a request with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: object = None) -> None:
        self.method, self.code, self.rpc_message, self.data = method, code, message, data
        detail = f": {data}" if data not in (None, "") else ""
        super().__init__(f"{method}: {code} {message}{detail}")


class AsyncRpc:
    """Pipelined JSON-RPC over websocket; reconnects lazily on the next call."""

    def __init__(self, url: str, *, timeout_seconds: float = 30.0) -> None:
        self.url = url
        self._timeout = timeout_seconds
        self._conn: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._connect_lock = asyncio.Lock()
        self._subscriptions: dict[str, RpcSubscription] = {}
        # Notifications that arrive before their subscriber holds the id.
        self._early: dict[str, deque[Any]] = {}
        self.requests = 0

    async def _connection(self) -> ClientConnection:
        async with self._connect_lock:
            if self._conn is None:
                try:
                    self._conn = await websockets.connect(
                        self.url, max_size=256 * 1024 * 1024, open_timeout=self._timeout
                    )
                except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                    raise ChainUnavailable(f"{self.url}: {exc}") from exc
                self._reader = asyncio.create_task(self._read(self._conn))
            return self._conn

    async def _read(self, conn: ClientConnection) -> None:
        error = ChainUnavailable(f"{self.url}: connection closed")
        try:
            async for raw in conn:
                message = json.loads(raw)
                if "id" not in message and "params" in message:
                    self._notify(message["params"])
                    continue
                future = self._pending.pop(message.get("id"), None)
                if future is None or future.done():
                    continue
                if "error" in message:
                    future.set_exception(_as_error(message["error"]))
                else:
                    future.set_result(message.get("result"))
        except (OSError, websockets.WebSocketException) as exc:
            error = ChainUnavailable(f"{self.url}: {exc}")
        finally:
            if self._conn is conn:
                self._conn = None
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)
            self._pending.clear()
            for subscription in self._subscriptions.values():
                subscription.lost(error)
            self._subscriptions.clear()
            self._early.clear()

    def _notify(self, params: dict[str, Any]) -> None:
        key = str(params.get("subscription"))
        subscription = self._subscriptions.get(key)
        if subscription is None:
            self._early.setdefault(key, deque(maxlen=16)).append(params.get("result"))
        else:
            subscription.deliver(params.get("result"))

    async def subscribe(self, method: str, params: list[Any], unsubscribe: str) -> RpcSubscription:
        """Start a subscription (e.g. ``chain_subscribeNewHeads``); read it with ``next``."""
        key = str(await self.call(method, params))
        subscription = RpcSubscription(self, key, unsubscribe)
        for early in self._early.pop(key, ()):
            subscription.deliver(early)
        self._subscriptions[key] = subscription
        return subscription

    async def _unsubscribe(self, subscription: RpcSubscription) -> None:
        if self._subscriptions.pop(subscription.key, None) is not None and self._conn is not None:
            with contextlib.suppress(ChainCallFailed, ChainUnavailable):
                await self.call(subscription.unsubscribe_method, [subscription.key])

    async def call(
        self, method: str, params: list[Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Send one request and wait for its result (``timeout`` seconds, default the
        client's: callers sharing the socket may wait differently)."""
        conn = await self._connection()
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        payload = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or []}
        self.requests += 1
        try:
            await conn.send(json.dumps(payload))
        except (OSError, websockets.WebSocketException) as exc:
            self._pending.pop(request_id, None)
            raise ChainUnavailable(f"{self.url}: {exc}") from exc
        try:
            return await asyncio.wait_for(future, self._timeout if timeout is None else timeout)
        except TimeoutError as exc:
            self._pending.pop(request_id, None)
            raise ChainUnavailable(f"{self.url}: {method} timed out") from exc
        except RpcError as exc:
            raise RpcError(method, exc.code, exc.rpc_message, exc.data) from None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


class RpcSubscription:
    """The notifications of one subscription, newest kept when the reader falls behind."""

    def __init__(self, rpc: AsyncRpc, key: str, unsubscribe_method: str) -> None:
        self.key, self.unsubscribe_method = key, unsubscribe_method
        self._rpc = rpc
        self._items: deque[Any] = deque(maxlen=64)
        self._ready = asyncio.Event()
        self._error: ChainUnavailable | None = None

    def deliver(self, item: Any) -> None:
        self._items.append(item)
        self._ready.set()

    def lost(self, error: ChainUnavailable) -> None:
        self._error = error
        self._ready.set()

    def discard_pending(self) -> None:
        self._items.clear()

    async def next(self, timeout: float | None = None) -> Any:
        """The next notification; ``TimeoutError`` if none within ``timeout`` seconds,
        ``ChainUnavailable`` once the connection is gone."""
        while not self._items:
            if self._error is not None:
                raise self._error
            self._ready.clear()
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self._items.popleft()

    async def close(self) -> None:
        await self._rpc._unsubscribe(self)


def _as_error(error: dict[str, Any]) -> RpcError:
    return RpcError("", int(error.get("code", 0)), str(error.get("message", "")), error.get("data"))
