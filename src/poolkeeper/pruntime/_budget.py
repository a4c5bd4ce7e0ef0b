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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ByteBudget:
    """``async with budget.hold(n):`` waits until ``n`` more bytes fit in ``limit``."""

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("the byte budget must be positive")
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self._changed: asyncio.Condition | None = None

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        if self._changed is None:
            self._changed = asyncio.Condition()
        changed = self._changed
        async with changed:
            await changed.wait_for(lambda: self.in_use == 0 or self.in_use + size <= self.limit)
            self.in_use += size
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            async with changed:
                self.in_use -= size
                changed.notify_all()
