"""RelaySource.wait_finalized_above: many relays wait on one head poller, woken together."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain.relay_source import RelaySource


class FakeNode:
    """Answers the two head requests; the finalized number is set by the test."""

    def __init__(self) -> None:
        self.finalized = 10
        self.requests = 0

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        self.requests += 1
        if method == "chain_getFinalizedHead":
            return f"0x{self.finalized:064x}"
        assert method == "chain_getHeader"
        return {"number": hex(int(str(params and params[0]), 16))}


async def test_waiters_wake_together_when_the_head_moves_and_share_the_polling() -> None:
    node = FakeNode()
    source = RelaySource(cast(AsyncRpc, node), head_ttl=0.02)
    waiters = [asyncio.ensure_future(source.wait_finalized_above(10, 5.0)) for _ in range(200)]
    await asyncio.sleep(0.2)
    assert not any(w.done() for w in waiters)
    polled = node.requests
    assert polled <= 2 * (0.2 / 0.02 + 2), f"{polled} node requests for 200 waiters"
    node.finalized = 11
    started = time.monotonic()
    assert all(await asyncio.gather(*waiters))
    assert time.monotonic() - started < 0.5


async def test_waiting_ends_at_the_timeout_or_at_once_when_already_past() -> None:
    node = FakeNode()
    source = RelaySource(cast(AsyncRpc, node), head_ttl=0.02)
    assert await source.wait_finalized_above(9, 1.0)
    started = time.monotonic()
    assert not await source.wait_finalized_above(10, 0.1)
    assert 0.09 <= time.monotonic() - started < 0.5


async def test_waiters_timing_out_leave_nothing_behind_and_others_still_wake() -> None:
    # Each waiter has its own future: one timing out touches no other waiter's state (a
    # shared future shielded by every waiter made each timeout O(waiters)).
    node = FakeNode()
    source = RelaySource(cast(AsyncRpc, node), head_ttl=0.01)
    patient = [asyncio.ensure_future(source.wait_finalized_above(10, 5.0)) for _ in range(50)]
    hasty = [asyncio.ensure_future(source.wait_finalized_above(10, 0.05)) for _ in range(2000)]
    assert not any(await asyncio.gather(*hasty))
    assert len(source._head_waiting) == 50
    assert all(len(f._callbacks) <= 1 for f in source._head_waiting)  # type: ignore[attr-defined]
    node.finalized = 12
    assert all(await asyncio.gather(*patient))
    assert not source._head_waiting
