"""The audit log: written append-only and 0600, read back with damaged lines named."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from poolkeeper.apply.audit import (
    AuditCall,
    AuditEntry,
    AuditLog,
    read_audit,
    read_selected,
    render_history,
    select,
)
from poolkeeper.cli._history import parse_since


def entry(n: int, worker: str, ts: datetime, *, fee_estimated: bool = False) -> AuditEntry:
    return AuditEntry(
        extrinsic_hash=f"0x{n:064x}",
        signer_address="5Foo",
        signer_name="operator-a",
        nonce=n,
        status="in_block",
        calls=(
            AuditCall(
                f"start_computing:worker/{worker}",
                "PhalaStakePoolv2.start_computing",
                worker,
                "pool-a",
                True,
            ),
            AuditCall(
                "top_up:account/x",
                "Balances.transfer_keep_alive",
                None,
                None,
                False,
                "Balances.InsufficientBalance",
            ),
        ),
        block_number=10 + n,
        block_hash=f"0x{n:02x}",
        fee=1234,
        fee_estimated=fee_estimated,
        ts=ts,
    )


def test_written_0600_appended_and_read_back(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state" / "audit.jsonl")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    log.record(entry(1, "w1", now))
    log.record(entry(2, "w2", now + timedelta(hours=1), fee_estimated=True))
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    read = read_audit(log.path)
    assert read.warnings == []
    assert [e["nonce"] for e in read.entries] == [1, 2]
    first = read.entries[0]
    assert first["signer"] == {"name": "operator-a", "address": "5Foo"}
    assert first["block"] == {"number": 11, "hash": "0x01"}
    assert first["fee"] == {"plancks": 1234, "estimated": False}
    assert first["calls"][0]["call"] == "PhalaStakePoolv2.start_computing"
    assert first["calls"][1]["error"] == "Balances.InsufficientBalance"
    assert read.entries[1]["fee"]["estimated"] is True


def test_an_existing_wider_file_is_narrowed_to_0600(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    path.chmod(0o644)
    AuditLog(path).record(entry(1, "w1", datetime.now(UTC)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_torn_last_line_is_skipped_with_its_file_and_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.record(entry(1, "w1", datetime.now(UTC)))
    with log.path.open("a") as handle:
        handle.write('{"ts": "2026-01-01T00:00:00+00:00", "nonce": 2, "calls": [{"act')
    read = read_audit(log.path)
    assert [e["nonce"] for e in read.entries] == [1]
    assert read.warnings == [f"{log.path}:2: damaged line ignored"]


def test_select_by_time_and_worker(tmp_path: Path) -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    entries = [
        json.loads(json.dumps(entry(i, f"w{i}", now - timedelta(hours=3 - i)).to_json()))
        for i in range(3)
    ]
    since = parse_since("90m", now)
    assert [e["nonce"] for e in select(entries, since=since)] == [2]
    assert [e["nonce"] for e in select(entries, worker="w1")] == [1]
    assert [e["nonce"] for e in select(entries, since=now - timedelta(hours=5), worker="w9")] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", datetime(2026, 1, 1, 11, 30, tzinfo=UTC)),
        ("2h", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("1d", datetime(2025, 12, 31, 12, tzinfo=UTC)),
        ("2026-01-01T08:00:00", datetime(2026, 1, 1, 8, tzinfo=UTC)),
        ("2026-01-01T08:00:00+01:00", datetime(2026, 1, 1, 7, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    assert parse_since(text, datetime(2026, 1, 1, 12, tzinfo=UTC)) == expected


def test_parse_since_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="--since 'yesterday'"):
        parse_since("yesterday", datetime.now(UTC))


def test_render_history_names_calls_results_and_estimated_fees() -> None:
    e = entry(3, "w3", datetime(2026, 1, 1, tzinfo=UTC), fee_estimated=True).to_json()
    text = render_history([e])
    assert "#13" in text and "nonce 3" in text and "(estimated)" in text
    assert "PhalaStakePoolv2.start_computing  start_computing:worker/w3  ok" in text
    assert "FAILED: Balances.InsufficientBalance" in text
    assert render_history([]) == "No extrinsics recorded.\n"


def test_read_selected_keeps_the_latest_entries_of_a_worker(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    assert read_selected(path, worker="w1").entries == [], "no log yet: nothing, no error"
    log = AuditLog(path)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(5):
        log.record(entry(n, "w1" if n % 2 == 0 else "w2", t0 + timedelta(minutes=n)))
    read = read_selected(path, worker="w1", last=2)
    assert [e["nonce"] for e in read.entries] == [2, 4]
    assert [e["nonce"] for e in read_selected(path, worker="w2").entries] == [1, 3]
    assert read_selected(path, worker="w1", last=0).entries == []
