"""Sync rates measured between observations, remembered in the state directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from poolkeeper.model.observed import ChainHead, Observed, PRuntimeInfo, PRuntimeObservation
from poolkeeper.observe.sync_rates import SyncRateMemory

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _observed(at: datetime, **blocks: int) -> Observed:
    return Observed(
        read_at=at,
        head=ChainHead(best_number=10_000, finalized_number=10_000),
        pruntimes={
            name: PRuntimeObservation(
                endpoint=name, info=PRuntimeInfo(initialized=True, blocknum=n), read_at=at
            )
            for name, n in blocks.items()
        },
    )


def test_rate_between_two_observations_smoothed_and_remembered(tmp_path: Path) -> None:
    path = tmp_path / "sync_rates.json"
    memory = SyncRateMemory(path)
    assert memory.note(_observed(T0, a=100, b=100)).sync_rates == {}
    seen = memory.note(_observed(T0 + timedelta(seconds=10), a=200, b=100))
    assert seen.sync_rates == {"a": 10.0, "b": 0.0}
    seen = memory.note(_observed(T0 + timedelta(seconds=20), a=240, b=100))
    assert seen.sync_rates["a"] == 7.0  # half of 4, half of 10
    # a second process (a one-shot plan) starts from the file
    later = SyncRateMemory(path).note(_observed(T0 + timedelta(seconds=30), a=300, b=100))
    assert later.sync_rates["a"] == 6.5


def test_no_rate_from_a_stale_sample_a_reset_or_a_too_close_one(tmp_path: Path) -> None:
    memory = SyncRateMemory(None)
    memory.note(_observed(T0, a=100, b=100, c=100))
    assert memory.note(_observed(T0 + timedelta(seconds=0.2), a=105)).sync_rates == {}
    seen = memory.note(_observed(T0 + timedelta(seconds=1000), a=200, b=50))
    assert seen.sync_rates == {}  # a: older than 15 min; b: went backwards (pRuntime reset)


def test_unreadable_file_means_no_memory(tmp_path: Path) -> None:
    path = tmp_path / "sync_rates.json"
    path.write_text("{not json", encoding="utf-8")
    assert SyncRateMemory(path).note(_observed(T0, a=1)).sync_rates == {}


def test_endpoints_gone_from_the_inventory_are_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "sync_rates.json"
    memory = SyncRateMemory(path)
    memory.note(_observed(T0, a=1, b=1))
    memory.note(_observed(T0 + timedelta(seconds=5), a=6))
    assert set(json.loads(path.read_text())) == {"a"}
