"""The apply journal: a local record of every extrinsic before and after it leaves.

A crash between "sent" and "seen on chain" must never lead to sending the same
actions again. So the executor writes the signed extrinsic (hash, nonce, bytes and the
actions it carries) here *before* submitting it, and updates the row when the outcome
is known. On the next run, unsettled rows are resolved against the chain first:
included ones are never re-sent; pending ones are re-sent byte for byte (the same
nonce cannot execute twice); only an extrinsic proven dropped frees its actions.
It also records top-up transfers so a daily cap survives restarts, and the pids of
pools it created, so a pool declared with ``create: true`` is created only once.

SQLite in WAL mode under the state directory. Nothing secret is stored: signed
extrinsics are public once sent.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS extrinsics (
    id INTEGER PRIMARY KEY,
    extrinsic_hash TEXT NOT NULL UNIQUE,
    signer TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    data BLOB NOT NULL,
    era_start INTEGER,
    era_period INTEGER,
    action_ids TEXT NOT NULL,
    status TEXT NOT NULL,
    block_number INTEGER,
    block_hash TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS extrinsics_status ON extrinsics(status);
CREATE TABLE IF NOT EXISTS action_results (
    extrinsic_id INTEGER NOT NULL REFERENCES extrinsics(id),
    action_id TEXT NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT,
    PRIMARY KEY (extrinsic_id, action_id)
);
CREATE TABLE IF NOT EXISTS created_pools (
    name TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    extrinsic_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS top_ups (
    day TEXT NOT NULL,
    destination TEXT NOT NULL,
    amount INTEGER NOT NULL,
    extrinsic_hash TEXT NOT NULL
);
"""


class JournalStatus(StrEnum):
    """Where a journaled extrinsic stands."""

    PREPARED = "prepared"
    """Signed and recorded; may or may not have reached the node."""
    IN_BLOCK = "in_block"
    FINALIZED = "finalized"
    FAILED = "failed"
    REJECTED = "rejected"
    DROPPED = "dropped"

    @property
    def settled(self) -> bool:
        return self is not JournalStatus.PREPARED


@dataclass(frozen=True)
class JournalEntry:
    """One row of the journal."""

    id: int
    extrinsic_hash: str
    signer: str
    nonce: int
    data: bytes
    era_start: int | None
    era_period: int | None
    action_ids: tuple[str, ...]
    status: JournalStatus
    block_number: int | None
    error: str | None


class Journal:
    """SQLite-backed journal; one per state directory."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

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
        """Record a signed extrinsic before it is sent. Durable when this returns."""
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO extrinsics (extrinsic_hash, signer, nonce, data, era_start, era_period,"
            " action_ids, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                extrinsic_hash,
                signer,
                nonce,
                data,
                era_start,
                era_period,
                json.dumps(list(action_ids)),
                JournalStatus.PREPARED.value,
                now,
                now,
            ),
        )
        return int(cur.lastrowid or 0)

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
        """Record the outcome of an extrinsic and of each action it carried."""
        with self._transaction():
            row = self._db.execute(
                "SELECT id FROM extrinsics WHERE extrinsic_hash = ?", (extrinsic_hash,)
            ).fetchone()
            if row is None:
                raise KeyError(f"extrinsic {extrinsic_hash} is not in the journal")
            self._db.execute(
                "UPDATE extrinsics SET status=?, block_number=?, block_hash=?, error=?,"
                " updated_at=? WHERE id=?",
                (status.value, block_number, block_hash, error, time.time(), row[0]),
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO action_results (extrinsic_id, action_id, ok, error)"
                " VALUES (?,?,?,?)",
                [(row[0], action_id, int(ok), err) for action_id, ok, err in results],
            )

    def unsettled(self) -> list[JournalEntry]:
        """Extrinsics recorded but not known to be settled, oldest first."""
        rows = self._db.execute(
            "SELECT id, extrinsic_hash, signer, nonce, data, era_start, era_period, action_ids,"
            " status, block_number, error FROM extrinsics WHERE status = ? ORDER BY id",
            (JournalStatus.PREPARED.value,),
        ).fetchall()
        return [_entry(r) for r in rows]

    def entries(self) -> list[JournalEntry]:
        """Every extrinsic, oldest first."""
        rows = self._db.execute(
            "SELECT id, extrinsic_hash, signer, nonce, data, era_start, era_period, action_ids,"
            " status, block_number, error FROM extrinsics ORDER BY id"
        ).fetchall()
        return [_entry(r) for r in rows]

    def pending_action_ids(self) -> set[str]:
        """Actions carried by extrinsics that are not settled yet: never plan them again."""
        ids: set[str] = set()
        for entry in self.unsettled():
            ids.update(entry.action_ids)
        return ids

    def record_created_pool(self, name: str, pid: int, extrinsic_hash: str) -> None:
        """Remember the pid of a pool poolkeeper created, so it is never created twice."""
        self._db.execute(
            "INSERT OR REPLACE INTO created_pools (name, pid, extrinsic_hash) VALUES (?,?,?)",
            (name, pid, extrinsic_hash),
        )

    def created_pools(self) -> dict[str, int]:
        """Pools created by poolkeeper: name → pid."""
        rows = self._db.execute("SELECT name, pid FROM created_pools").fetchall()
        return {str(name): int(pid) for name, pid in rows}

    def record_top_up(self, day: str, destination: str, amount: int, extrinsic_hash: str) -> None:
        self._db.execute(
            "INSERT INTO top_ups (day, destination, amount, extrinsic_hash) VALUES (?,?,?,?)",
            (day, destination, amount, extrinsic_hash),
        )

    def topped_up_on(self, day: str) -> dict[str, int]:
        """Plancks sent by top-ups on ``day`` (UTC, ``YYYY-MM-DD``), by destination.

        A top-up counts from the moment its extrinsic is signed (recorded before it is
        journaled), unless that extrinsic is settled as never executed (rejected,
        dropped, failed): a transfer whose outcome a crash left unknown, or that is
        still in the pool, already uses the day's cap."""
        rows = self._db.execute(
            "SELECT t.destination, SUM(t.amount) FROM top_ups t"
            " LEFT JOIN extrinsics e ON e.extrinsic_hash = t.extrinsic_hash"
            " WHERE t.day = ? AND (e.status IS NULL OR e.status NOT IN (?, ?, ?))"
            " GROUP BY t.destination",
            (
                day,
                JournalStatus.REJECTED.value,
                JournalStatus.DROPPED.value,
                JournalStatus.FAILED.value,
            ),
        ).fetchall()
        return {str(dest): int(total) for dest, total in rows}

    def cancel_top_up(self, extrinsic_hash: str, destination: str) -> None:
        """Forget a top-up whose transfer failed inside an included batch."""
        self._db.execute(
            "DELETE FROM top_ups WHERE extrinsic_hash = ? AND destination = ?",
            (extrinsic_hash, destination),
        )

    def _transaction(self) -> _Tx:
        return _Tx(self._db)


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _entry(row: tuple[object, ...]) -> JournalEntry:
    (id_, h, signer, nonce, data, era_start, era_period, action_ids, status, block, error) = row
    assert isinstance(data, bytes)
    return JournalEntry(
        id=int(str(id_)),
        extrinsic_hash=str(h),
        signer=str(signer),
        nonce=int(str(nonce)),
        data=data,
        era_start=None if era_start is None else int(str(era_start)),
        era_period=None if era_period is None else int(str(era_period)),
        action_ids=tuple(json.loads(str(action_ids))),
        status=JournalStatus(str(status)),
        block_number=None if block is None else int(str(block)),
        error=None if error is None else str(error),
    )
