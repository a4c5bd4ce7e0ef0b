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
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

from poolkeeper.apply.journal import Journal, JournalStatus
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


class MirroredJournal(Journal):
    """The local journal, each unsettled extrinsic mirrored into etcd first.

    ``may_write`` is asked before every record: a fenced process records nothing, so it
    sends nothing (the executor records before it sends).

    ``created_at`` (since when this journal saw every top-up, for the daily cap) is the
    later of the file's creation and the moment this process last won the shard: before
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
        """This process owns the shard since ``wall`` (Unix seconds)."""
        self._complete_since = wall

    def __init__(
        self,
        path: Path,
        *,
        remote: BackendThread,
        owner_key: str,
        owner_value: Callable[[], str],
        journal_prefix: str,
        may_write: Callable[[], bool],
    ) -> None:
        super().__init__(path)
        self._remote = remote
        self._owner_key = owner_key
        self._owner_value = owner_value
        self._prefix = journal_prefix
        self._may_write = may_write

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
        if not self._may_write():
            raise TemporaryError("not the shard's owner (HA lease not held): nothing is signed")
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
                    self._owner_key, self._owner_value(), self._prefix + extrinsic_hash, value
                )
            )
        except LeaseBackendError as exc:
            raise TemporaryError(f"HA journal: {exc}; extrinsic not sent") from None
        if not ok:
            raise TemporaryError("HA journal: the shard is no longer ours; extrinsic not sent")
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
        super().settle(
            extrinsic_hash,
            status,
            block_number=block_number,
            block_hash=block_hash,
            error=error,
            results=results,
        )
        # A record left behind is harmless: the next owner finds it settled.
        if status.settled:
            with contextlib.suppress(LeaseBackendError):
                self._remote.run(
                    self._remote.backend.delete_if_owner(
                        self._owner_key, self._owner_value(), self._prefix + extrinsic_hash
                    )
                )

    def adopt_remote(self) -> list[str]:
        """Load etcd's unsettled records this journal does not have, as unsettled (before
        the first pass of a new owner); their hashes."""
        found = self._remote.run(self._remote.backend.read_prefix(self._prefix))
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
            adopted.append(record["hash"])
        return adopted

    def drop_settled_remote(self) -> None:
        """Remove etcd records this journal knows to be settled (left by a crash)."""
        found = self._remote.run(self._remote.backend.read_prefix(self._prefix))
        settled = {e.extrinsic_hash for e in self.entries() if e.status.settled}
        for key, raw in found.items():
            if json.loads(raw)["hash"] in settled:
                self._remote.run(
                    self._remote.backend.delete_if_owner(self._owner_key, self._owner_value(), key)
                )
