"""A journal being created by one process is never taken for a damaged one by another.

Found in CI: ``status`` (read-only, no lock) opened the journal while the first ``run`` was
creating it table by table, saw some tables missing and exited 1 ("lacks the table(s)").
Creation is now one transaction, and a reader that sees no table waits for it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from poolkeeper.apply import journal as journal_module
from poolkeeper.apply.journal import Journal


def test_a_journal_opened_while_another_process_creates_it_is_that_journal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    created = threading.Event()
    release = threading.Event()

    def creator() -> None:
        db = sqlite3.connect(str(path), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN IMMEDIATE")
        for statement in journal_module._SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("schema_version", str(journal_module.SCHEMA_VERSION)),
                ("created_at", repr(time.time())),
                ("journal_id", "first-creator"),
            ],
        )
        created.set()
        release.wait(10)
        db.execute("COMMIT")
        db.close()

    thread = threading.Thread(target=creator)
    thread.start()
    assert created.wait(10)
    timer = threading.Timer(0.5, release.set)
    timer.start()
    try:
        opened = Journal(path)
    finally:
        release.set()
        thread.join(10)
        timer.cancel()
    try:
        assert opened.journal_id == "first-creator"
        assert opened.unsettled() == []
    finally:
        opened.close()


def test_two_journals_created_at_once_agree(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    ids: list[str] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            j = Journal(path)
            ids.append(j.journal_id)
            j.close()
        except BaseException as exc:  # the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    assert len(set(ids)) == 1, ids
