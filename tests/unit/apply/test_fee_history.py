"""Fees per signer from the audit log, followed as it grows, within the runway window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from poolkeeper.apply.audit import AuditCall, AuditEntry, AuditLog
from poolkeeper.apply.fee_history import FeeHistory
from poolkeeper.model.observed import ChainHead, FeesPaid, Observed

NOW = datetime(2026, 1, 10, tzinfo=UTC)


def _entry(address: str, fee: int | None, days_ago: float) -> AuditEntry:
    return AuditEntry(
        extrinsic_hash="0x01",
        signer_address=address,
        nonce=1,
        status="in_block",
        calls=(AuditCall("start_computing:worker/w", ok=True),),
        fee=fee,
        ts=NOW - timedelta(days=days_ago),
    )


def _observed(at: datetime = NOW) -> Observed:
    return Observed(read_at=at, head=ChainHead(best_number=1, finalized_number=1))


def test_fees_of_the_window_per_signer_and_the_record_start(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.record(_entry("A", 100, days_ago=9))  # outside a 7-day window
    log.record(_entry("A", 10, days_ago=2))
    log.record(_entry("A", 5, days_ago=1))
    log.record(_entry("B", None, days_ago=1))  # no fee known: not counted
    history = FeeHistory(tmp_path / "audit.jsonl")
    seen = history.note(_observed(), window_days=7)
    assert seen.fees_paid == {"A": FeesPaid(plancks=15, extrinsics=2)}
    assert seen.fees_since == NOW - timedelta(days=7)
    # appended lines are read on the next pass; a torn last line waits for its end
    log.record(_entry("B", 7, days_ago=0.5))
    with (tmp_path / "audit.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"v":1,"ts":"2026-01-09T')
    seen = history.note(_observed(), window_days=7)
    assert seen.fees_paid["B"] == FeesPaid(plancks=7, extrinsics=1)


def test_a_young_log_starts_the_record_at_its_first_entry(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.record(_entry("A", 3, days_ago=0.25))
    seen = FeeHistory(tmp_path / "audit.jsonl").note(_observed(), window_days=7)
    assert seen.fees_since == NOW - timedelta(days=0.25)


def test_no_log_no_record(tmp_path: Path) -> None:
    assert FeeHistory(tmp_path / "audit.jsonl").note(_observed(), 7).fees_since is None
    assert FeeHistory(None).note(_observed(), 7).fees_since is None
