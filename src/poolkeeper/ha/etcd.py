"""The etcd adapter of ``LeaseBackend`` (aetcd, asyncio, v3 gRPC API; works against
etcd 3.4 and later). Several endpoints may be given: a request that fails on one is
retried on the next, so losing one member of a 3-member cluster is not an outage."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aetcd
import grpc

from poolkeeper.ha.ports import LeaseBackendError

T = TypeVar("T")


def parse_endpoints(spec: str) -> tuple[tuple[str, int], ...]:
    """``etcd://HOST:PORT[,HOST:PORT…]`` → ((host, port), …); ValueError naming the fault."""
    if not spec.startswith("etcd://"):
        raise ValueError(f"--ha {spec!r}: expected etcd://HOST:PORT[,HOST:PORT…]")
    found: list[tuple[str, int]] = []
    for part in spec.removeprefix("etcd://").split(","):
        parsed = urlsplit(f"//{part.strip()}")
        try:
            port = parsed.port
        except ValueError:
            port = None
        if not parsed.hostname or port is None:
            raise ValueError(f"--ha {spec!r}: {part!r} is not HOST:PORT")
        found.append((parsed.hostname, port))
    return tuple(found)


class EtcdBackend:
    """``LeaseBackend`` over etcd; ``timeout`` bounds each request."""

    def __init__(self, endpoints: Sequence[tuple[str, int]], *, timeout: float = 1.0) -> None:
        self._endpoints = list(endpoints)
        self._timeout = timeout
        self._current = 0
        self._client: aetcd.Client | None = None

    async def _connected(self) -> aetcd.Client:
        if self._client is None:
            host, port = self._endpoints[self._current]
            client = aetcd.Client(host=host, port=port, timeout=self._timeout)
            await asyncio.wait_for(client.connect(), self._timeout)
            self._client = client
        return self._client

    async def _call(self, what: str, fn: Callable[[aetcd.Client], Awaitable[T]]) -> T:
        errors: list[str] = []
        for _ in range(len(self._endpoints)):
            try:
                client = await self._connected()
                return await asyncio.wait_for(fn(client), self._timeout)
            except (aetcd.exceptions.ClientError, grpc.RpcError, OSError, TimeoutError) as exc:
                host, port = self._endpoints[self._current]
                errors.append(f"{host}:{port}: {type(exc).__name__} {exc}".strip())
                await self._drop()
                self._current = (self._current + 1) % len(self._endpoints)
        raise LeaseBackendError(f"etcd {what} failed: " + "; ".join(errors))

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def grant(self, ttl_seconds: int) -> int:
        async def go(c: aetcd.Client) -> int:
            return int((await c.lease(ttl_seconds)).id)

        return await self._call("lease grant", go)

    async def renew(self, lease: int) -> int:
        async def go(c: aetcd.Client) -> int:
            reply: Any = await c.refresh_lease(lease)
            return int(reply.TTL)

        return await self._call("lease renewal", go)

    async def revoke(self, lease: int) -> None:
        async def go(c: aetcd.Client) -> None:
            await c.revoke_lease(lease)

        await self._call("lease revoke", go)

    async def lease_ttl(self, lease: int) -> int:
        async def go(c: aetcd.Client) -> int:
            reply: Any = await c.get_lease_info(lease, keys=False)
            return int(reply.TTL)

        return await self._call("lease read", go)

    async def acquire(self, key: str, value: str, lease: int) -> bool:
        async def go(c: aetcd.Client) -> bool:
            t = c.transactions
            ok, _ = await c.transaction(
                compare=[t.create(key.encode()) == 0],
                success=[t.put(key.encode(), value.encode(), lease=lease)],
                failure=[],
            )
            return bool(ok)

        return await self._call("election", go)

    async def read(self, key: str) -> tuple[str, int] | None:
        async def go(c: aetcd.Client) -> tuple[str, int] | None:
            got = await c.get(key.encode())
            if got is None:
                return None
            return got.value.decode(), int(got.lease)

        return await self._call("read", go)

    async def put_if_owner(self, owner_key: str, owner_value: str, key: str, value: str) -> bool:
        async def go(c: aetcd.Client) -> bool:
            t = c.transactions
            ok, _ = await c.transaction(
                compare=[t.value(owner_key.encode()) == owner_value.encode()],
                success=[t.put(key.encode(), value.encode())],
                failure=[],
            )
            return bool(ok)

        return await self._call("journal write", go)

    async def delete_if_owner(self, owner_key: str, owner_value: str, key: str) -> bool:
        async def go(c: aetcd.Client) -> bool:
            t = c.transactions
            ok, _ = await c.transaction(
                compare=[t.value(owner_key.encode()) == owner_value.encode()],
                success=[t.delete(key.encode())],
                failure=[],
            )
            return bool(ok)

        return await self._call("journal delete", go)

    async def read_prefix(self, prefix: str) -> dict[str, str]:
        async def go(c: aetcd.Client) -> dict[str, str]:
            found = await c.get_prefix(prefix.encode())
            return {kv.key.decode(): kv.value.decode() for kv in found}

        return await self._call("read", go)

    async def close(self) -> None:
        await self._drop()
