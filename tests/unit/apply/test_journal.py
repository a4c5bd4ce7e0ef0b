"""The journal survives reopening and keeps top-up totals per day."""

from __future__ import annotations

from pathlib import Path

from poolkeeper.apply.journal import Journal, JournalStatus


def test_rows_survive_a_reopen_and_settle(tmp_path: Path) -> None:
    path = tmp_path / "state" / "journal.sqlite"
    journal = Journal(path)
    journal.record_prepared(
        extrinsic_hash="0xab",
        signer="s",
        nonce=4,
        data=b"\x01",
        action_ids=["a", "b"],
        era_start=10,
        era_period=64,
    )
    journal.close()
    reopened = Journal(path)
    [entry] = reopened.unsettled()
    assert (entry.nonce, entry.action_ids, entry.era_start) == (4, ("a", "b"), 10)
    reopened.settle("0xab", JournalStatus.FINALIZED, block_number=12, results=[("a", True, None)])
    assert reopened.unsettled() == []
    assert reopened.entries()[0].status is JournalStatus.FINALIZED


def test_top_ups_sum_per_day_and_destination(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    journal.record_top_up("2026-11-25", "d1", 5, "0x1")
    journal.record_top_up("2026-11-25", "d1", 7, "0x2")
    journal.record_top_up("2026-11-24", "d1", 100, "0x3")
    journal.record_top_up("2026-11-25", "d2", 1, "0x4")
    assert journal.topped_up_on("2026-11-25") == {"d1": 12, "d2": 1}
