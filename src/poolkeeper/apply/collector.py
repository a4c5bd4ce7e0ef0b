"""Collects calls from many relays into few extrinsics.

Each relay produces a trickle of calls (a registration, egress messages). Sending
each alone would cost one extrinsic per message per worker; instead calls wait here
for up to ``window`` seconds (or until ``max_calls``) and go out through the
executor as one force_batch per signer, as PRB's transaction manager does.
"""

from __future__ import annotations

import asyncio
import contextlib

from poolkeeper.apply.executor import ActionResult, Executor, Job


class TxCollector:
    """Batches submitted jobs by time window; each caller awaits its own result.

    A batch waits for its inclusion, which takes a block or more; the next batch does not
    wait for it (up to ``max_in_flight`` batches at once), so egress keeps flowing while
    the node is slow and a burst (a relay catching up) does not delay everyone's
    heartbeats by whole batch round trips.
    """

    def __init__(
        self,
        executor: Executor,
        *,
        window: float = 1.0,
        max_calls: int = 100,
        max_in_flight: int = 4,
    ) -> None:
        self._executor = executor
        self._window = window
        self._max = max_calls
        self._queue: list[tuple[Job, asyncio.Future[ActionResult]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._batches: set[asyncio.Task[None]] = set()
        self.extrinsic_batches = 0

    async def submit(self, job: Job) -> ActionResult:
        """Queue a job and wait for its result."""
        future: asyncio.Future[ActionResult] = asyncio.get_running_loop().create_future()
        self._queue.append((job, future))
        if len(self._queue) >= self._max:
            self._wakeup.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())
        return await future

    async def _flush_soon(self) -> None:
        while self._queue:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._window)
            self._wakeup.clear()
            while self._queue:
                await self._slots.acquire()
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                batch = [(job, future) for job, future in batch if not future.done()]
                if not batch:
                    self._slots.release()
                    continue
                self.extrinsic_batches += 1
                task = asyncio.create_task(self._send(batch))
                self._batches.add(task)
                task.add_done_callback(self._batches.discard)

    async def _send(self, batch: list[tuple[Job, asyncio.Future[ActionResult]]]) -> None:
        try:
            results = await self._executor.execute_jobs([job for job, _ in batch], quiet=True)
        except Exception as exc:  # every caller must hear about it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            self._slots.release()
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def close(self) -> None:
        if self._flusher is not None:
            self._wakeup.set()
            with contextlib.suppress(Exception):
                await self._flusher
        if self._batches:
            await asyncio.gather(*self._batches, return_exceptions=True)
