"""Drives the ``Fence`` of one shard against a ``LeaseBackend``: campaigns while standby
(put-if-absent of the owner key with a fresh lease), renews while owner with a
deadline shorter than the TTL, and fences itself (stops signing and relaying) the moment
a renewal could no longer be proven in time — before the lease can expire."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from poolkeeper.ha.fence import Fence, FenceState
from poolkeeper.ha.ports import LeaseBackend, LeaseBackendError


def owner_value(identity: str, lease: int, since: float) -> str:
    """What the owner key holds: who, through which lease, since when (Unix seconds)."""
    return json.dumps({"identity": identity, "lease": lease, "since": round(since, 3)})


def shard_prefix(cluster: str, shard: str) -> str:
    return f"/poolkeeper/{cluster}/shards/{shard}/"


@dataclass
class ShardAgent:
    """One shard's election and lease keeping. ``identity`` names this process."""

    backend: LeaseBackend
    cluster: str
    shard: str
    identity: str
    fence: Fence
    log: Callable[[str], None]
    on_fenced: Callable[[str], None] = lambda _reason: None
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    fenced_count: int = 0
    recovered_lease: int = 0
    """The lease under which the previous owner's unsettled extrinsics were recovered
    (``HaGate``): until it is the current one, nothing new is signed for the shard."""
    _owner_value: str = field(default="", init=False)
    _owning: bool = field(default=False, init=False)

    @property
    def owner_key(self) -> str:
        return shard_prefix(self.cluster, self.shard) + "owner"

    @property
    def journal_prefix(self) -> str:
        return shard_prefix(self.cluster, self.shard) + "journal/"

    def owner_value(self) -> str:
        """What the owner key holds while this process owns the shard."""
        return self._owner_value

    def may_write(self) -> bool:
        return self.fence.may_write(self.clock())

    def may_sign(self) -> bool:
        """Owner past the lock-delay, and the shard's earlier extrinsics recovered."""
        return self.may_write() and self.recovered_lease == self.fence.lease

    async def step(self) -> float:
        """One round (campaign or renew, then the deadline check); seconds until the next."""
        fence = self.fence
        now = self.clock()
        state = fence.tick(now)
        if state in (FenceState.STANDBY, FenceState.FENCED):
            await self._campaign()
        else:
            await self._renew()
        state = fence.tick(self.clock())
        owning = state in (FenceState.WAITING, FenceState.ACTIVE)
        if self._owning and not owning:
            self._fenced(fence.reason)
        self._owning = owning
        if owning:
            until_deadline = fence.renew_deadline - self.clock()
            return max(0.05, min(fence.ttl_seconds / 6, until_deadline / 2))
        return max(0.1, fence.ttl_seconds / 6)

    def _fenced(self, reason: str) -> None:
        self.fenced_count += 1
        self.log(
            f"ALERT: HA lease of shard {self.shard} lost ({reason}): stopped signing and relaying"
        )
        self.on_fenced(reason)

    async def _campaign(self) -> None:
        fence = self.fence
        ttl = max(1, math.ceil(fence.ttl_seconds))
        try:
            sent = self.clock()
            lease = await self.backend.grant(ttl)
            value = owner_value(self.identity, lease, self.wall())
            won = await self.backend.acquire(self.owner_key, value, lease)
        except LeaseBackendError as exc:
            if fence.reason != str(exc):  # once per distinct problem, not every step
                self.log(f"HA: cannot campaign for shard {self.shard}: {exc}")
            fence.reason = str(exc)
            return
        if not won:
            with contextlib.suppress(LeaseBackendError):
                await self.backend.revoke(lease)
            return
        self._owner_value = value
        fence.won(lease, sent, self.wall())
        self.log(
            f"HA: this process owns shard {self.shard} (lease {lease:x}); "
            f"active after a lock-delay of {fence.lock_delay_seconds:.1f}s"
        )

    async def _renew(self) -> None:
        fence = self.fence
        sent = self.clock()
        try:
            remaining = await asyncio.wait_for(
                self.backend.renew(fence.lease), max(0.05, fence.renew_deadline - sent)
            )
            current = await self.backend.read(self.owner_key)
        except (LeaseBackendError, TimeoutError) as exc:
            fence.reason = f"renewal failed: {exc}"
            return
        if current is None or current[0] != self._owner_value:
            fence.fence(self.clock(), "the owner key is gone or held by another process")
            return
        fence.renewed(sent, remaining)

    async def run(self, stop: asyncio.Event) -> None:
        """Campaign and renew until ``stop``; then give the shard up (revoke the lease)."""
        while not stop.is_set():
            delay = await self.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        if self.fence.is_owner(self.clock()):
            self.fence.fence(self.clock(), "stopping")
            with contextlib.suppress(LeaseBackendError):
                await self.backend.revoke(self.fence.lease)
