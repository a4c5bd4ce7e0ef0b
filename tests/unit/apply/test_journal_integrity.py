"""Opening the journal checks it; the few cases the devnet fault tests do not cover."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from poolkeeper.apply.journal import Journal, marker_path
from poolkeeper.errors import JournalDamaged


def test_a_new_journal_gets_a_meta_row_and_a_marker(tmp_path: Path) -> None:
    path = tmp_path / "state" / "journal.sqlite"
    journal = Journal(path)
    journal.close()
    assert marker_path(path).read_text().strip() == journal.journal_id
    reopened = Journal(path)
    assert (reopened.journal_id, reopened.created_at) == (journal.journal_id, journal.created_at)
    reopened.close()


def test_a_journal_from_before_the_meta_table_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE meta")
    db.execute("INSERT INTO top_ups VALUES ('2026-12-01', 'd', 5, '0x1')")
    db.commit()
    db.close()
    marker_path(path).unlink()  # older versions wrote no marker
    journal = Journal(path)
    assert journal.topped_up_on("2026-12-01") == {"d": 5}
    assert marker_path(path).read_text().strip() == journal.journal_id


def test_a_zero_byte_file_without_a_marker_is_a_creation_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"")
    Journal(path).close()
    assert marker_path(path).exists()


def test_another_journal_in_place_of_this_one_is_refused(tmp_path: Path) -> None:
    one, other = tmp_path / "a" / "journal.sqlite", tmp_path / "b" / "journal.sqlite"
    Journal(one).close()
    Journal(other).close()
    one.write_bytes(other.read_bytes())
    with pytest.raises(JournalDamaged, match=r"but journal\.id says this state dir's journal"):
        Journal(one)


def test_a_killed_writer_leaves_a_wal_that_opens_fine(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    journal.record_top_up("2026-12-01", "d", 7, "0x1")
    # No close: the WAL stays, as after SIGKILL; its header must pass the check.
    assert path.with_name("journal.sqlite-wal").stat().st_size > 0
    second = Journal(path)
    assert second.topped_up_on("2026-12-01") == {"d": 7}
    second.close()
    journal.close()
