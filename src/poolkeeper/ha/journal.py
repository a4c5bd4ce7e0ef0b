"""The unsettled extrinsics a standby must know about, kept in etcd next to the shard's
owner key: each is written there before it is sent (journal-first, as locally) and
removed when settled, so a new owner loads them into its own journal as unsettled and
recovers them by the money-safety rule (same bytes, or proven dropped) instead of
planning their actions again.

The records are deliberately NOT attached to the owner's lease: they must outlive the
owner whose death they describe. Writes are conditioned on still owning the shard."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from poolkeeper.apply.journal import Journal, JournalEntry, JournalStatus
from poolkeeper.errors import TemporaryError
from poolkeeper.ha.ports import LeaseBackend, LeaseBackendError

T = TypeVar("T")


def record_json(
    *,
    extrinsic_hash: str,
    signer: str,
    nonce: int,
    data: bytes,
    action_ids: Sequence[str],
    era_start: int | None,
    era_period: int | None,
) -> str:
    return json.dumps(
        {
            "hash": extrinsic_hash,
            "signer": signer,
            "nonce": nonce,
            "bytes": data.hex(),
            "era_start": era_start,
            "era_period": era_period,
            "action_ids": list(action_ids),
        },
        sort_keys=True,
    )


class BackendThread:
    """Runs a backend's coroutines on a loop of its own thread, so the synchronous
    journal (called inside the main loop) can wait for etcd without re-entering it."""

    def __init__(self, make: Callable[[], LeaseBackend], timeout: float) -> None:
        self._timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="ha-journal", daemon=True
        )
        self._thread.start()
        self.backend = self.call_factory(make)

    def call_factory(self, make: Callable[[], LeaseBackend]) -> LeaseBackend:
        async def build() -> LeaseBackend:
            return make()

        return self.run(build())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(self._timeout)
        except FutureTimeout:
            future.cancel()
            raise LeaseBackendError(f"etcd did not answer within {self._timeout:.1f}s") from None

    def close(self) -> None:
        with contextlib.suppress(LeaseBackendError):
            self.run(self.backend.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=2)


@dataclass(frozen=True)
class ShardRoute:
    """Where one shard's records go and whether this process may write them now."""

    shard: str
    owner_key: str
    owner_value: Callable[[], str]
    prefix: str
    """The shard's journal prefix in etcd (records are ``prefix + hash``)."""
    may_write: Callable[[], bool]
    """May sign for the shard now: its fence ACTIVE and its earlier extrinsics recovered
    (asked synchronously before every record)."""
    owned: Callable[[], bool]
    """The shard's fence is ACTIVE: its unsettled entries are this process's to recover."""


class MirroredJournal(Journal):
    """The local journal, each unsettled extrinsic mirrored into etcd first.

    Each record is routed by its signer to the shard that signer belongs to (one shard per
    signer: the inventory refuses a signer in two): that shard's fence (``may_write``) is
    asked before every record, so a process records (and sends) nothing for a shard whose
    lease it does not hold; the record is written under that shard's prefix in a
    transaction conditioned on still owning that shard. With one route every signer goes
    to it (one shard per process); with several, a signer of none of them is refused, and
    ``unsettled`` shows only the entries of shards this process may write now, so
    recovery never re-sends bytes of a shard another process owns.

    ``created_at`` (since when this journal saw every top-up, for the daily cap) is the
    later of the file's creation and the moment this process last won a shard: before
    that another process may have sent top-ups, so the ledger reads the day's transfers
    from the chain instead of trusting this journal alone."""

    _complete_since: float = 0.0
    _file_created_at: float = 0.0

    @property
    def created_at(self) -> float:
        return max(self._file_created_at, self._complete_since)

    @created_at.setter
    def created_at(self, value: float) -> None:
        self._file_created_at = value

    def note_won(self, wall: float) -> None:
        """This process owns a shard since ``wall`` (Unix seconds)."""
        self._complete_since = max(self._complete_since, wall)

    def __init__(self, path: Path, *, remote: BackendThread, routes: Sequence[ShardRoute]) -> None:
        super().__init__(path)
        if not routes:
            raise ValueError("a mirrored journal needs at least one shard")
        self._remote = remote
        self._routes = {r.shard: r for r in routes}
        self._signers: dict[str, str] = {}
        """Signer address -> shard (``set_signers``); unused with one route."""
        self._signer_of: dict[str, str] = {}
        """Extrinsic hash -> signer address, for the records this process wrote or read."""

    @property
    def shards(self) -> tuple[str, ...]:
        return tuple(self._routes)

    def set_signers(self, signers: Mapping[str, str]) -> None:
        """Which shard each signing address belongs to (from the inventory, addresses
        derived: ``model.shards.signer_shards``)."""
        self._signers = dict(signers)

    def route_of(self, signer: str) -> ShardRoute | None:
        """The shard ``signer`` (an address) signs for; None: none of this process's."""
        if len(self._routes) == 1:
            return next(iter(self._routes.values()))
        shard = self._signers.get(signer)
        return self._routes.get(shard) if shard is not None else None

    def _owned(self, signer: str) -> bool:
        route = self.route_of(signer)
        return route is not None and route.owned()

    def unsettled(self) -> list[JournalEntry]:
        """Unsettled entries; with several shards only those of the shards this process
        may write now (another shard's are another process's to recover)."""
        entries = super().unsettled()
        for entry in entries:
            self._signer_of.setdefault(entry.extrinsic_hash, entry.signer)
        if len(self._routes) == 1:
            return entries
        return [e for e in entries if self._owned(e.signer)]

    def record_prepared(
        self,
        *,
        extrinsic_hash: str,
        signer: str,
        nonce: int,
        data: bytes,
        action_ids: Sequence[str],
        era_start: int | None,
        era_period: int | None,
    ) -> int:
        route = self.route_of(signer)
        if route is None:
            raise TemporaryError(
                f"signer {signer} belongs to none of this process's shards "
                f"({', '.join(self._routes)}): nothing is signed"
            )
        if not route.may_write():
            raise TemporaryError(
                f"not the owner of shard {route.shard} (HA lease not held): nothing is signed"
            )
        value = record_json(
            extrinsic_hash=extrinsic_hash,
            signer=signer,
            nonce=nonce,
            data=data,
            action_ids=action_ids,
            era_start=era_start,
            era_period=era_period,
        )
        try:
            ok = self._remote.run(
                self._remote.backend.put_if_owner(
                    route.owner_key, route.owner_value(), route.prefix + extrinsic_hash, value
                )
            )
        except LeaseBackendError as exc:
            raise TemporaryError(f"HA journal: {exc}; extrinsic not sent") from None
        if not ok:
            raise TemporaryError(
                f"HA journal: shard {route.shard} is no longer ours; extrinsic not sent"
            )
        self._signer_of[extrinsic_hash] = signer
        return super().record_prepared(
            extrinsic_hash=extrinsic_hash,
            signer=signer,
            nonce=nonce,
            data=data,
            action_ids=action_ids,
            era_start=era_start,
            era_period=era_period,
        )

    def settle(
        self,
        extrinsic_hash: str,
        status: JournalStatus,
        *,
        block_number: int | None = None,
        block_hash: str | None = None,
        error: str | None = None,
        results: Sequence[tuple[str, bool, str | None]] = (),
    ) -> None:
        if extrinsic_hash not in self._signer_of:  # journaled before this process started
            for entry in super().unsettled():
                self._signer_of.setdefault(entry.extrinsic_hash, entry.signer)
        super().settle(
            extrinsic_hash,
            status,
            block_number=block_number,
            block_hash=block_hash,
            error=error,
            results=results,
        )
        # A record left behind is harmless: the next owner finds it settled.
        if not status.settled:
            return
        signer = self._signer_of.pop(extrinsic_hash, None)
        route = self.route_of(signer or "")
        if route is None:
            return
        with contextlib.suppress(LeaseBackendError):
            self._remote.run(
                self._remote.backend.delete_if_owner(
                    route.owner_key, route.owner_value(), route.prefix + extrinsic_hash
                )
            )

    def adopt_remote(self, shard: str | None = None) -> list[str]:
        """Load the unsettled records etcd holds for ``shard`` (default: the only one)
        that this journal does not have, as unsettled (before the first pass of a new
        owner); their hashes."""
        route = self._route(shard)
        found = self._remote.run(self._remote.backend.read_prefix(route.prefix))
        known = {e.extrinsic_hash for e in self.entries()}
        adopted: list[str] = []
        for raw in found.values():
            record = json.loads(raw)
            if record["hash"] in known:
                continue
            super().record_prepared(
                extrinsic_hash=record["hash"],
                signer=record["signer"],
                nonce=int(record["nonce"]),
                data=bytes.fromhex(record["bytes"]),
                action_ids=tuple(record["action_ids"]),
                era_start=record["era_start"],
                era_period=record["era_period"],
            )
            self._signer_of[record["hash"]] = record["signer"]
            adopted.append(record["hash"])
        return adopted

    def drop_settled_remote(self, shard: str | None = None) -> None:
        """Remove ``shard``'s etcd records this journal knows to be settled (left by a
        crash)."""
        route = self._route(shard)
        found = self._remote.run(self._remote.backend.read_prefix(route.prefix))
        settled = {e.extrinsic_hash for e in self.entries() if e.status.settled}
        for key, raw in found.items():
            if json.loads(raw)["hash"] in settled:
                self._remote.run(
                    self._remote.backend.delete_if_owner(route.owner_key, route.owner_value(), key)
                )

    def _route(self, shard: str | None) -> ShardRoute:
        if shard is None:
            if len(self._routes) != 1:
                raise ValueError("name the shard: this journal mirrors several")
            return next(iter(self._routes.values()))
        return self._routes[shard]
