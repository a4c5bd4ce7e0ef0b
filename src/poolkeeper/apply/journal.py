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

Losing it silently would be the worst fault of all (extrinsics re-planned, the daily
top-up cap reset), so opening it checks it first: SQLite's header, the WAL header, the
``quick_check``, every table, and a ``meta`` table (schema version, creation time, a
journal id). A marker file beside it (``journal.id``) proves the state dir had a journal:
without it a missing journal would look like a fresh start. Any doubt raises
``JournalDamaged`` naming the file and the way out; ``journal reset`` moves it aside.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from poolkeeper.errors import JournalDamaged

SCHEMA_VERSION = 1
"""Bumped when the tables change; a journal of a newer version is refused, not guessed at."""
FILE_MODE = 0o600
_SQLITE_MAGIC = b"SQLite format 3\x00"
_WAL_MAGICS = {0x377F0682: "<", 0x377F0683: ">"}
_TABLES = ("extrinsics", "action_results", "created_pools", "top_ups", "meta")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
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


def marker_path(path: Path) -> Path:
    """The file proving a journal existed at ``path`` (``journal.id`` for ``journal.sqlite``)."""
    return path.with_name(path.stem + ".id")


def side_files(path: Path) -> tuple[Path, Path]:
    """SQLite's WAL and shared-memory files of ``path``."""
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


class Journal:
    """SQLite-backed journal; one per state directory. Raises ``JournalDamaged``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        marker = marker_path(path)
        expected = _read_marker(marker)
        fresh = _is_fresh(path, expected)
        if not fresh:
            _check_files(path)
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            raise JournalDamaged(path, f"cannot be opened by SQLite ({error})") from None
        try:
            if fresh:
                self.journal_id, self.created_at = self._create()
            else:
                self.journal_id, self.created_at = self._check(expected)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as error:
            self._db.close()
            raise JournalDamaged(path, f"cannot be read by SQLite ({error})") from None
        except JournalDamaged:
            self._db.close()
            raise
        if expected != self.journal_id:
            _write_marker(marker, self.journal_id)
        for file in (path, *side_files(path)):
            _private(file)

    def _create(self) -> tuple[str, float]:
        """Every table and the meta rows in one transaction: a process opening the journal
        at the same instant (a read-only ``status`` beside a first ``run``) sees either no
        table or all of them, never a journal that looks damaged."""
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            return self._insert_meta()

    def _check(self, expected: str | None) -> tuple[str, float]:
        path = self.path
        rows = self._db.execute("PRAGMA quick_check").fetchall()
        verdict = "; ".join(str(r[0]) for r in rows[:3])
        if verdict != "ok":
            raise JournalDamaged(path, f"fails SQLite's integrity check: {verdict}")
        tables = {
            str(r[0])
            for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if not tables and expected is None:
            # Another process is creating it this instant (its transaction not yet
            # visible), or its creation was cut short: create it, after theirs.
            return self._create()
        if "meta" not in tables and expected is None and tables >= set(_TABLES[:-1]):
            # A journal written before the meta table existed: adopt it as it is.
            self._db.executescript(_SCHEMA)
            return self._create_meta()
        missing = [t for t in _TABLES if t not in tables]
        if missing:
            raise JournalDamaged(path, f"lacks the table(s) {', '.join(missing)}")
        meta = {str(k): str(v) for k, v in self._db.execute("SELECT key, value FROM meta")}
        absent = [k for k in ("schema_version", "created_at", "journal_id") if k not in meta]
        if absent:
            raise JournalDamaged(path, f"has lost its meta row(s) {', '.join(absent)}")
        try:
            version = int(meta["schema_version"])
            created_at = float(meta["created_at"])
        except ValueError:
            raise JournalDamaged(path, "has an unreadable meta table") from None
        if version != SCHEMA_VERSION:
            newer = " (written by a newer poolkeeper?)" if version > SCHEMA_VERSION else ""
            raise JournalDamaged(
                path,
                f"has schema version {version}{newer}; this poolkeeper reads version "
                f"{SCHEMA_VERSION}",
            )
        if expected is not None and meta["journal_id"] != expected:
            raise JournalDamaged(
                path,
                f"is journal {meta['journal_id']}, but {marker_path(path).name} says this state "
                f"dir's journal is {expected}",
            )
        return meta["journal_id"], created_at

    def _create_meta(self) -> tuple[str, float]:
        """Write the meta rows; a process creating the same journal at the same instant
        (a read-only ``plan`` beside ``apply``) keeps the first one's."""
        with self._transaction():
            return self._insert_meta()

    def _insert_meta(self) -> tuple[str, float]:
        """The meta rows (inside the caller's transaction); the first writer's are kept."""
        self._db.executemany(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
            [
                ("schema_version", str(SCHEMA_VERSION)),
                ("created_at", repr(time.time())),
                ("journal_id", uuid.uuid4().hex),
            ],
        )
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        return str(meta["journal_id"]), float(meta["created_at"])

    def close(self) -> None:
        self._db.close()

    def summary(self, day: str) -> JournalSummary:
        """What this journal holds that matters to an operator about to lose it."""
        return JournalSummary(
            unsettled=len(self.unsettled()),
            top_ups_today=sum(self.topped_up_on(day).values()),
            created_pools=tuple(sorted(self.created_pools())),
        )

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


@dataclass(frozen=True)
class JournalSummary:
    """Counts of what a journal holds (shown before a reset throws it away)."""

    unsettled: int
    top_ups_today: int
    created_pools: tuple[str, ...]


def _read_marker(marker: Path) -> str | None:
    try:
        text = marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise JournalDamaged(marker, f"cannot be read ({error})") from None
    return text or None


def _write_marker(marker: Path, journal_id: str) -> None:
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, journal_id.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_fresh(path: Path, expected: str | None) -> bool:
    """No journal yet and no sign of one: a brand-new state dir."""
    wal, _ = side_files(path)
    has_wal = wal.exists() and wal.stat().st_size > 0
    if os.path.lexists(path):
        # A 0-byte file with nothing committed anywhere is a creation cut short.
        empty = path.is_file() and path.stat().st_size == 0 and not has_wal
        return empty and expected is None
    if expected is not None:
        raise JournalDamaged(
            path,
            f"is missing, but {marker_path(path)} shows this state dir had one "
            f"(journal {expected})",
        )
    if has_wal:
        raise JournalDamaged(path, f"is missing, but its WAL file {wal} is there")
    return True


def _check_files(path: Path) -> None:
    """What can be told without SQLite: a file, a database header, a whole page count."""
    if path.is_dir():
        raise JournalDamaged(path, "is a directory, not a file")
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            header = file.read(100)
    except OSError as error:
        raise JournalDamaged(path, f"cannot be read ({error.strerror or error})") from None
    if size == 0:
        raise JournalDamaged(path, "is empty (0 bytes)")
    if not header.startswith(_SQLITE_MAGIC):
        if _SQLITE_MAGIC.startswith(header[: len(_SQLITE_MAGIC)]) and len(header) < 16:
            raise JournalDamaged(path, f"is truncated ({size} bytes)")
        raise JournalDamaged(path, "is not an SQLite database (its header is wrong)")
    if len(header) < 100:
        raise JournalDamaged(path, f"is truncated ({size} bytes, not even a header)")
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise JournalDamaged(path, "is not an SQLite database (its page size is wrong)")
    pages, counter, valid_for = (
        struct.unpack(">I", header[28:32])[0],
        struct.unpack(">I", header[24:28])[0],
        struct.unpack(">I", header[92:96])[0],
    )
    if size % page_size or (pages and counter == valid_for and size < pages * page_size):
        raise JournalDamaged(
            path, f"is truncated ({size} bytes; its header says {pages} pages of {page_size})"
        )
    _check_wal(side_files(path)[0], path)


def _check_wal(wal: Path, path: Path) -> None:
    """SQLite ignores a WAL whose header is invalid, silently losing what it held."""
    try:
        with wal.open("rb") as file:
            header = file.read(32)
    except FileNotFoundError:
        return
    except OSError as error:
        raise JournalDamaged(path, f"has an unreadable WAL file {wal} ({error})") from None
    if not header:
        return
    magic = struct.unpack(">I", header[:4])[0] if len(header) >= 4 else 0
    order = _WAL_MAGICS.get(magic)
    if len(header) < 32 or order is None:
        raise JournalDamaged(path, f"has a damaged WAL file {wal} (not a WAL header)")
    s0 = s1 = 0
    for i in range(0, 24, 8):
        x0, x1 = struct.unpack(order + "II", header[i : i + 8])
        s0 = (s0 + x0 + s1) & 0xFFFFFFFF
        s1 = (s1 + x1 + s0) & 0xFFFFFFFF
    if (s0, s1) != struct.unpack(">II", header[24:32]):
        raise JournalDamaged(path, f"has a damaged WAL file {wal} (header checksum mismatch)")


def _private(file: Path) -> None:
    try:
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(FILE_MODE)
    except OSError:
        pass  # the -shm file may vanish between the two calls


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
