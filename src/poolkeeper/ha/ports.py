"""The port the HA code needs from a coordination engine, so etcd is one adapter of it
and a Kubernetes Lease (docs/ha.md) could be another: leases with a TTL, a key owned
through a lease, and writes that succeed only while that ownership still holds."""

from __future__ import annotations

from typing import Protocol


class LeaseBackendError(Exception):
    """The coordination engine could not be reached or refused the request."""


class LeaseBackend(Protocol):
    """Leases and owned keys. Every method raises ``LeaseBackendError`` on failure."""

    async def grant(self, ttl_seconds: int) -> int:
        """A new lease of ``ttl_seconds``; its id."""
        ...

    async def renew(self, lease: int) -> int:
        """Keep ``lease`` alive; its remaining TTL in seconds (<= 0: it has expired)."""
        ...

    async def revoke(self, lease: int) -> None:
        """End ``lease`` now (its keys disappear)."""
        ...

    async def lease_ttl(self, lease: int) -> int:
        """Seconds ``lease`` has left (<= 0: expired or unknown)."""
        ...

    async def acquire(self, key: str, value: str, lease: int) -> bool:
        """Create ``key`` = ``value`` attached to ``lease`` unless ``key`` exists."""
        ...

    async def read(self, key: str) -> tuple[str, int] | None:
        """``key``'s value and the lease it is attached to (0: none), or None."""
        ...

    async def put_if_owner(self, owner_key: str, owner_value: str, key: str, value: str) -> bool:
        """Write ``key`` (not attached to any lease: it must outlive its writer) only
        while ``owner_key`` = ``owner_value``."""
        ...

    async def delete_if_owner(self, owner_key: str, owner_value: str, key: str) -> bool:
        """Delete ``key`` only while ``owner_key`` = ``owner_value``."""
        ...

    async def read_prefix(self, prefix: str) -> dict[str, str]:
        """Every key under ``prefix`` with its value."""
        ...

    async def close(self) -> None: ...
