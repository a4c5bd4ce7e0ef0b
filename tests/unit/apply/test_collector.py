"""TxCollector: batching by window and size, batches in flight side by side, results per job."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from poolkeeper.apply.collector import TxCollector
from poolkeeper.apply.executor import ActionResult, Executor, Job
from poolkeeper.chain.ports import CallSpec


class SlowExecutor:
    """Each batch waits for ``release`` (its inclusion); records batches and concurrency."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.batches: list[list[str]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def execute_jobs(self, jobs: Sequence[Job], *, quiet: bool = False) -> list[ActionResult]:
        assert quiet
        self.batches.append([j.id for j in jobs])
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        return [ActionResult(j.id, not j.id.endswith("bad"), None) for j in jobs]


def job(name: str) -> Job:
    return Job(name, CallSpec("PhalaMq", "sync_offchain_message", {}), "relay-signer")


async def test_a_slow_batch_does_not_hold_back_the_next_ones() -> None:
    executor = SlowExecutor()
    collector = TxCollector(cast(Executor, executor), window=0.01, max_calls=3, max_in_flight=2)
    names = [f"j{i}" for i in range(8)] + ["j8bad"]
    waiting = [asyncio.ensure_future(collector.submit(job(n))) for n in names]
    for _ in range(50):
        await asyncio.sleep(0.01)
        if len(executor.batches) >= 2:
            break
    # Two batches of three are out at once, the third waits for a free slot.
    assert executor.batches == [["j0", "j1", "j2"], ["j3", "j4", "j5"]]
    assert executor.most_in_flight == 2
    executor.release.set()
    results = await asyncio.gather(*waiting)
    assert [r.action_id for r in results] == names
    assert [r.ok for r in results] == [True] * 8 + [False]
    assert executor.batches[2] == ["j6", "j7", "j8bad"]
    assert collector.extrinsic_batches == 3
    await collector.close()


async def test_a_cancelled_caller_is_left_out_of_the_batch() -> None:
    executor = SlowExecutor()
    executor.release.set()
    collector = TxCollector(cast(Executor, executor), window=0.05)
    gone = asyncio.ensure_future(collector.submit(job("gone")))
    kept = asyncio.ensure_future(collector.submit(job("kept")))
    await asyncio.sleep(0)
    gone.cancel()
    result: Any = await kept
    assert result.ok
    assert executor.batches == [["kept"]]
    await collector.close()
