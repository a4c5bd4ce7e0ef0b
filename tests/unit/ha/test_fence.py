"""The fence state machine and the shard agent, with a fake clock and a fake backend."""

from __future__ import annotations

import asyncio

import pytest

from poolkeeper.ha.agent import ShardAgent
from poolkeeper.ha.fence import Fence, FenceState
from poolkeeper.ha.ports import LeaseBackendError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeEtcd:
    """Leases expire on the fake clock; the owner key dies with its lease."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.leases: dict[int, float] = {}
        self.ttls: dict[int, int] = {}
        self.keys: dict[str, tuple[str, int]] = {}
        self.down = False
        self.next = 1

    def _expire(self) -> None:
        for lease, until in list(self.leases.items()):
            if until <= self.clock.now:
                del self.leases[lease]
                self.keys = {k: v for k, v in self.keys.items() if v[1] != lease}

    def _check(self) -> None:
        if self.down:
            raise LeaseBackendError("etcd unreachable")
        self._expire()

    async def grant(self, ttl_seconds: int) -> int:
        self._check()
        lease, self.next = self.next, self.next + 1
        self.leases[lease] = self.clock.now + ttl_seconds
        self.ttls[lease] = ttl_seconds
        return lease

    async def renew(self, lease: int) -> int:
        self._check()
        if lease not in self.leases:
            return 0
        self.leases[lease] = self.clock.now + self.ttls[lease]
        return self.ttls[lease]

    async def revoke(self, lease: int) -> None:
        self._check()
        self.leases.pop(lease, None)
        self.keys = {k: v for k, v in self.keys.items() if v[1] != lease}

    async def lease_ttl(self, lease: int) -> int:
        self._check()
        return int(self.leases[lease] - self.clock.now) if lease in self.leases else -1

    async def acquire(self, key: str, value: str, lease: int) -> bool:
        self._check()
        if key in self.keys:
            return False
        self.keys[key] = (value, lease)
        return True

    async def read(self, key: str) -> tuple[str, int] | None:
        self._check()
        return self.keys.get(key)

    async def put_if_owner(self, owner_key: str, owner_value: str, key: str, value: str) -> bool:
        self._check()
        if self.keys.get(owner_key, ("", 0))[0] != owner_value:
            return False
        self.keys[key] = (value, 0)
        return True

    async def delete_if_owner(self, owner_key: str, owner_value: str, key: str) -> bool:
        self._check()
        if self.keys.get(owner_key, ("", 0))[0] != owner_value:
            return False
        self.keys.pop(key, None)
        return True

    async def read_prefix(self, prefix: str) -> dict[str, str]:
        self._check()
        return {k: v for k, (v, _) in self.keys.items() if k.startswith(prefix)}

    async def close(self) -> None:
        return None


def agent(etcd: FakeEtcd, clock: Clock, name: str, fenced: list[str]) -> ShardAgent:
    return ShardAgent(
        backend=etcd,
        cluster="c",
        shard="s",
        identity=name,
        fence=Fence(ttl_seconds=3.0, lock_delay_seconds=1.0),
        log=lambda _m: None,
        on_fenced=fenced.append,
        clock=clock,
        wall=lambda: 0.0,
    )


def test_fence_waits_the_lock_delay_then_fences_before_the_ttl() -> None:
    fence = Fence(ttl_seconds=3.0, lock_delay_seconds=1.0)
    assert not fence.may_write(0.0)
    fence.won(lease=7, sent_at=10.0, wall=0.0)
    assert fence.tick(10.5) is FenceState.WAITING
    assert not fence.may_write(10.9)
    assert fence.may_write(11.0)
    # Renew deadline: valid_until (13.0) minus a third of the TTL -> 12.0, before expiry.
    assert fence.may_write(11.99)
    assert not fence.may_write(12.0)
    assert fence.state is FenceState.FENCED
    assert fence.renew_deadline < fence.valid_until


def test_renewal_extends_from_the_time_it_was_sent_not_received() -> None:
    fence = Fence(ttl_seconds=3.0, lock_delay_seconds=0.0)
    fence.won(lease=1, sent_at=0.0, wall=0.0)
    fence.renewed(sent_at=1.5, remaining_ttl=3)
    assert fence.valid_until == 4.5
    assert fence.may_write(3.49)
    assert not fence.may_write(3.5)


def test_a_fenced_owner_does_not_come_back_by_a_late_renewal() -> None:
    fence = Fence(ttl_seconds=3.0, lock_delay_seconds=0.0)
    fence.won(lease=1, sent_at=0.0, wall=0.0)
    assert not fence.may_write(5.0)
    fence.renewed(sent_at=5.0, remaining_ttl=3)
    assert fence.state is FenceState.FENCED
    assert not fence.may_write(5.1)


def test_renewal_that_finds_the_lease_expired_fences() -> None:
    fence = Fence(ttl_seconds=3.0, lock_delay_seconds=0.0)
    fence.won(lease=1, sent_at=0.0, wall=0.0)
    fence.renewed(sent_at=0.5, remaining_ttl=0)
    assert fence.state is FenceState.FENCED


async def test_one_owner_and_a_standby_that_takes_over_only_after_expiry() -> None:
    clock = Clock()
    etcd = FakeEtcd(clock)
    fenced_a: list[str] = []
    a, b = agent(etcd, clock, "a", fenced_a), agent(etcd, clock, "b", [])
    await a.step()
    await b.step()
    assert a.fence.state is FenceState.WAITING and b.fence.state is FenceState.STANDBY
    clock.now += 1.0
    assert a.may_write() and not b.may_write()
    # a keeps renewing: b never wins.
    for _ in range(10):
        clock.now += 0.5
        await a.step()
        await b.step()
        assert a.may_write() and not b.may_write()
    # a freezes (no more steps): it fences itself before its lease can expire ...
    frozen_at = clock.now
    while a.may_write():
        clock.now += 0.1
    fenced_at = clock.now
    lease_expiry = etcd.leases[a.fence.lease]
    assert fenced_at < lease_expiry
    # ... and b wins only once the lease expired, then waits its lock-delay.
    while True:
        await b.step()
        if b.fence.is_owner(clock.now):
            break
        assert clock.now < lease_expiry + 0.1
        clock.now += 0.1
    assert clock.now >= lease_expiry
    assert not b.may_write()
    clock.now += 1.0
    assert b.may_write()
    assert not a.may_write()
    # a wakes up: its step notices, reports the loss once, and it stays standby.
    await a.step()
    assert fenced_a and not a.may_write()
    assert frozen_at < fenced_at


async def test_etcd_unreachable_fences_the_owner_before_the_ttl() -> None:
    clock = Clock()
    etcd = FakeEtcd(clock)
    fenced: list[str] = []
    a = agent(etcd, clock, "a", fenced)
    await a.step()
    clock.now += 1.0
    assert a.may_write()
    etcd.down = True
    expiry = etcd.leases[a.fence.lease]
    while a.may_write():
        await a.step()
        clock.now += 0.05
    assert clock.now < expiry
    await a.step()
    assert fenced and "etcd unreachable" in fenced[0]


async def test_owner_key_taken_away_fences() -> None:
    clock = Clock()
    etcd = FakeEtcd(clock)
    fenced: list[str] = []
    a = agent(etcd, clock, "a", fenced)
    await a.step()
    clock.now += 1.0
    etcd.keys[a.owner_key] = ("intruder", 0)
    await a.step()
    assert not a.may_write() and fenced


@pytest.mark.parametrize("ttl", [3.0, 10.0])
async def test_run_gives_the_shard_up_on_stop(ttl: float) -> None:
    clock = Clock()
    etcd = FakeEtcd(clock)
    a = agent(etcd, clock, "a", [])
    a.fence.ttl_seconds = ttl
    stop = asyncio.Event()
    stop.set()
    await a.step()
    await a.run(stop)
    assert a.owner_key not in etcd.keys
