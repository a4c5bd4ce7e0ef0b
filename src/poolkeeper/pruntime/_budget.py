"""A bound on the bytes of pRuntime requests in flight, beside the bound on their number.

Relays at the same height send the very same ``DispatchBlocks`` body, but each request
in flight holds its own encoded copy (protobuf framing, HTTP framing, the socket
buffer while a slow pRuntime reads). With 500 requests in flight and a block whose
storage changes weigh half a megabyte, that is hundreds of megabytes for a moment:
``run`` on 1,000 workers peaked above 1 GB. A request waits here until the bytes in
flight leave room for it; one larger than the whole budget goes alone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ByteBudget:
    """``async with budget.hold(n):`` waits until ``n`` more bytes fit in ``limit``.

    Every pRuntime request passes here, so the common case (room, nobody waiting) takes
    no lock and schedules nothing; waiters are woken in arrival order."""

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("the byte budget must be positive")
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, size: int) -> bool:
        return self.in_use == 0 or self.in_use + size <= self.limit

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        if self._waiters or not self._fits(size):
            waiter = asyncio.get_running_loop().create_future()
            entry = (size, waiter)
            self._waiters.append(entry)
            try:
                await waiter  # resolved by _wake once it fits, its bytes already taken
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._give_back(size)  # granted as it was cancelled: return it
                else:
                    if entry in self._waiters:
                        self._waiters.remove(entry)
                    self._wake()
                raise
        else:
            self._take(size)
        try:
            yield
        finally:
            self._give_back(size)

    def _take(self, size: int) -> None:
        self.in_use += size
        self.peak = max(self.peak, self.in_use)

    def _give_back(self, size: int) -> None:
        self.in_use -= size
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            size, waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self._take(size)
            waiter.set_result(None)
