"""The ownership and self-fencing state machine of one shard, apart from any I/O so it
can be tested with a fake clock: an owner may sign and relay only while its last
successful renewal is recent enough that the lease cannot have expired yet (the renew
deadline is the TTL minus a third of it, measured from the moment the renewal was sent,
on the monotonic clock), and a new owner waits a lock-delay before driving pRuntimes so
requests an earlier owner still had in flight have timed out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FenceState(StrEnum):
    STANDBY = "standby"
    """Not the owner: observe only."""
    WAITING = "waiting"
    """Owner, waiting out the lock-delay before signing or relaying."""
    ACTIVE = "active"
    """Owner: signs and relays."""
    FENCED = "fenced"
    """Was owner but could not renew in time: stopped writing; must win again."""


@dataclass
class Fence:
    """Ownership of one shard. Times are ``time.monotonic()`` seconds."""

    ttl_seconds: float
    lock_delay_seconds: float
    state: FenceState = FenceState.STANDBY
    lease: int = 0
    valid_until: float = 0.0
    """When the lease can at the earliest expire (sent time of the last renewal + TTL)."""
    active_from: float = 0.0
    since_wall: float | None = None
    """Wall-clock time ownership was won (for status), None when not owner."""
    reason: str = ""
    """Why the last fence happened."""

    @property
    def margin(self) -> float:
        return self.ttl_seconds / 3

    @property
    def renew_deadline(self) -> float:
        """After this, writing stops: the lease may expire within ``margin``."""
        return self.valid_until - self.margin

    def won(self, lease: int, sent_at: float, wall: float) -> None:
        """The owner key was created with ``lease`` by a request sent at ``sent_at``."""
        self.state = FenceState.WAITING
        self.lease = lease
        self.valid_until = sent_at + self.ttl_seconds
        self.active_from = sent_at + self.lock_delay_seconds
        self.since_wall = wall
        self.reason = ""

    def renewed(self, sent_at: float, remaining_ttl: float) -> None:
        """A renewal sent at ``sent_at`` succeeded with ``remaining_ttl`` seconds left."""
        if self.state not in (FenceState.WAITING, FenceState.ACTIVE):
            return
        if remaining_ttl <= 0:
            self.fence(sent_at, "the lease had expired when renewed")
            return
        self.valid_until = max(self.valid_until, sent_at + min(remaining_ttl, self.ttl_seconds))

    def fence(self, now: float, reason: str) -> None:
        """Stop writing now (lost lease, renew deadline passed, key taken)."""
        if self.state in (FenceState.WAITING, FenceState.ACTIVE):
            self.state = FenceState.FENCED
            self.reason = reason
            self.since_wall = None

    def tick(self, now: float) -> FenceState:
        """Advance with the clock: fence past the renew deadline, activate after the delay."""
        if self.state in (FenceState.WAITING, FenceState.ACTIVE) and now >= self.renew_deadline:
            self.fence(now, f"no renewal within {self.ttl_seconds - self.margin:.1f}s")
        if self.state is FenceState.WAITING and now >= self.active_from:
            self.state = FenceState.ACTIVE
        return self.state

    def may_write(self, now: float) -> bool:
        """Whether signing and relaying are allowed at ``now``."""
        return self.tick(now) is FenceState.ACTIVE

    def is_owner(self, now: float) -> bool:
        """Holds the lease (possibly still waiting out the lock-delay)."""
        return self.tick(now) in (FenceState.WAITING, FenceState.ACTIVE)

    def remaining_ttl(self, now: float) -> float:
        return max(0.0, self.valid_until - now) if self.is_owner(now) else 0.0
