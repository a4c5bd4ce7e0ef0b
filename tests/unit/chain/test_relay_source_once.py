"""The relay source's shared fetch survives cancelled askers.

At 10,000 workers a relay stopped (or timed out) while waiting for a block another relay
was fetching; the waiter's cancellation cancelled the shared future, and the fetching
relay then died on ``future.set_result``: ``InvalidStateError``.
"""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain.relay_source import RelaySource


def source() -> RelaySource:
    return RelaySource(cast(AsyncRpc, object()))


async def test_a_cancelled_waiter_does_not_break_the_fetch() -> None:
    src = source()
    release = asyncio.Event()
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "block"

    owner = asyncio.create_task(src._once("k", fetch))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(src._once("k", fetch))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    assert await owner == "block"
    assert calls == 1
    assert await src._once("k", fetch) == "block"  # cached
    assert calls == 1


async def test_a_waiter_fetches_itself_when_the_fetcher_is_cancelled() -> None:
    src = source()
    first_started = asyncio.Event()
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            first_started.set()
            await asyncio.sleep(3600)
        return "block"

    owner = asyncio.create_task(src._once("k", fetch))
    await first_started.wait()
    waiter = asyncio.create_task(src._once("k", fetch))
    await asyncio.sleep(0)
    owner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await owner
    assert await asyncio.wait_for(waiter, 5) == "block"
    assert calls == 2


async def test_a_failed_fetch_reaches_every_waiter_and_is_not_cached() -> None:
    src = source()
    release = asyncio.Event()

    async def fetch() -> str:
        await release.wait()
        raise ConnectionError("node gone")

    tasks = [asyncio.create_task(src._once("k", fetch)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    for task in tasks:
        with pytest.raises(ConnectionError):
            await task

    async def ok() -> str:
        return "later"

    assert await src._once("k", ok) == "later"
