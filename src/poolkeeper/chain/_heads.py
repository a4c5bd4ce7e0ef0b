"""New-block signals for the block follower, from a head subscription.

The follower settles submitted extrinsics by scanning each new block. Polling the head on
the reads' connection made every inclusion wait out the poll interval, and any long read
(10,000 workers) in progress on that connection. A subscription on the pipelined socket
(shared with the reads: notifications interleave with answers) wakes the follower as soon
as the node announces a block. When the node cannot subscribe or the
socket drops, the signal falls back to polling at the given interval, and subscribes again
after a delay taken from a backoff sequence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from poolkeeper.backoff import Backoff
from poolkeeper.chain._rpc import AsyncRpc, RpcSubscription
from poolkeeper.errors import ChainCallFailed, ChainUnavailable

DEFAULT_RESUBSCRIBE_BACKOFF: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0)
# With a live subscription the follower still looks once in a while, in case a
# notification was lost: this is how long it waits for one.
IDLE_SECONDS = 6.0


class HeadSignal:
    """``await wait()`` returns when the node announced a new head (best or finalized),
    or after ``poll_seconds`` while there is no subscription."""

    def __init__(
        self,
        rpc: AsyncRpc,
        *,
        finalized: bool,
        poll_seconds: float,
        backoff: Sequence[float] = DEFAULT_RESUBSCRIBE_BACKOFF,
    ) -> None:
        self._rpc = rpc
        kind = "FinalizedHeads" if finalized else "NewHeads"
        self._method, self._unsubscribe = f"chain_subscribe{kind}", f"chain_unsubscribe{kind}"
        self._poll = poll_seconds
        self._backoff = Backoff(backoff)
        self._retry_at = 0.0
        self._subscription: RpcSubscription | None = None
        self.notifications = 0

    @property
    def subscribed(self) -> bool:
        return self._subscription is not None

    async def wait(self) -> None:
        if self._subscription is None and time.monotonic() >= self._retry_at:
            try:
                self._subscription = await self._rpc.subscribe(self._method, [], self._unsubscribe)
                self._backoff.reset()
            except (ChainUnavailable, ChainCallFailed):
                self._failed()
        subscription = self._subscription
        if subscription is None:
            await asyncio.sleep(self._poll)
            return
        try:
            # ``close()`` may drop the subscription while this waits: keep our own reference.
            await subscription.next(timeout=IDLE_SECONDS)
            subscription.discard_pending()  # one scan covers every head announced
            self.notifications += 1
        except TimeoutError:
            return
        except ChainUnavailable:
            self._subscription = None
            self._failed()

    def _failed(self) -> None:
        self._retry_at = time.monotonic() + self._backoff.next_delay()

    async def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.close()
