"""The bound on pRuntime request bytes in flight: order, cancellation, no leaked bytes."""

from __future__ import annotations

import asyncio

import pytest

from poolkeeper.pruntime._budget import ByteBudget


async def test_requests_that_fit_go_at_once_and_waiters_go_in_arrival_order() -> None:
    budget = ByteBudget(1_000)
    started: list[str] = []
    release = {name: asyncio.Event() for name in "abcd"}

    async def request(name: str, size: int) -> None:
        async with budget.hold(size):
            started.append(name)
            await release[name].wait()

    tasks = [
        asyncio.create_task(request(n, s)) for n, s in zip("abcd", (400, 500, 300, 50), strict=True)
    ]
    await asyncio.sleep(0)
    # a and b fit (900); c does not; d would fit but waits behind c (no overtaking).
    assert started == ["a", "b"] and budget.in_use == 900
    release["a"].set()
    await asyncio.sleep(0.01)
    assert started == ["a", "b", "c", "d"] and budget.in_use == 850
    for event in release.values():
        event.set()
    await asyncio.gather(*tasks)
    assert budget.in_use == 0 and budget.peak == 900


@pytest.mark.parametrize("when", ["while waiting", "just after being granted"])
async def test_a_cancelled_request_gives_its_bytes_back_and_lets_the_next_one_go(
    when: str,
) -> None:
    budget = ByteBudget(1_000)
    first_done = asyncio.Event()
    got_in: list[str] = []

    async def first() -> None:
        async with budget.hold(800):
            await first_done.wait()

    async def waiting(name: str, size: int) -> None:
        async with budget.hold(size):
            got_in.append(name)
            await asyncio.sleep(0.01)

    holder = asyncio.create_task(first())
    await asyncio.sleep(0)
    victim = asyncio.create_task(waiting("victim", 500))
    after = asyncio.create_task(waiting("after", 500))
    await asyncio.sleep(0)
    if when == "while waiting":
        victim.cancel()
        await asyncio.sleep(0)
        first_done.set()
    else:
        first_done.set()
        await asyncio.sleep(0)  # the holder leaves: victim is granted, not yet resumed
        victim.cancel()
    await asyncio.gather(holder, after)
    with pytest.raises(asyncio.CancelledError):
        await victim
    assert "after" in got_in and "victim" not in got_in
    assert budget.in_use == 0
    assert not budget._waiters


async def test_one_request_larger_than_the_budget_goes_alone() -> None:
    budget = ByteBudget(100)
    async with budget.hold(5_000):
        assert budget.in_use == 5_000
    assert budget.in_use == 0
