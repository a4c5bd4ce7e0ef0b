"""The worker table's filter language and sort order (pure), then the same through the
app with Pilot: numeric sorting, reverse and off, the filter keeping the sort, columns
widening to their values, and one bulk rebuild per change instead of row removals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from textual.widgets._data_table import ColumnKey

from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import (
    ChainHead,
    ChainWorker,
    Observed,
    PRuntimeInfo,
    PRuntimeObservation,
    SessionState,
)
from poolkeeper.model.ss58 import encode_address
from poolkeeper_tui._data import SnapshotSource
from poolkeeper_tui._table import WorkerRow, matching, natural_key, sorted_keys
from poolkeeper_tui.app import PoolkeeperApp

from .conftest import svg_text
from .test_app import row_keys

PHA = 10**12
BLOCKNUMS = {"w-01": 0, "w-02": 988, "w-03": 850, "w-04": 998, "w-05": 1000, "w-06": None}
"""pRuntime block per worker (None: not initialized); the finalized head is 1000, so the
workers are behind by 1000, 12, 150, 2, 0 and unknown."""


def row(values: tuple[str, ...] = ("=",), **kw: Any) -> WorkerRow:
    return WorkerRow(values, **kw)


def test_field_filters() -> None:
    rows = {
        "a": row(("=", "a"), pool="pool-a", phase="Computing", labels=(("rack", "a"),)),
        "b": row(("~", "b"), pool="pool-b", phase="Syncing", drift=True, behind=40),
        "c": row(("!", "c"), pool="pool-a", phase="Unresponsive", alert=True, drift=True),
        "d": row(("=", "d"), pool="-", behind=3, stake=5000 * PHA, labels=(("rack", "b"),)),
    }
    pairs = list(rows.items())
    assert matching(pairs, "pool:pool-a") == ["a", "c"]
    assert matching(pairs, "pool:POOL-*") == ["a", "b", "c"]
    assert matching(pairs, "phase:syncing") == ["b"]
    assert matching(pairs, "label:rack=a") == ["a"]
    assert matching(pairs, "label:rack") == ["a", "d"]
    assert matching(pairs, "drift") == ["b", "c"]
    assert matching(pairs, "alert") == ["c"]
    assert matching(pairs, "behind>10") == ["b"]
    assert matching(pairs, "behind<=3") == ["d"]
    assert matching(pairs, "stake>=5000") == ["d"]
    assert matching(pairs, "drift pool:pool-a") == ["c"], "all tokens must hold"
    assert matching(pairs, "pool:") == list(rows), "an unfinished token filters nothing"
    assert matching(pairs, "behind>") == list(rows)
    assert matching(pairs, "B") == ["b"], "free text: any cell, case-insensitive"


def test_numeric_columns_sort_as_numbers_and_missing_values_go_last() -> None:
    rows = {
        k: row(("=", k), behind=b)
        for k, b in [("w1", 1000), ("w2", 12), ("w3", 150), ("w4", 2), ("w5", None)]
    }
    assert sorted_keys(rows, "behind", 3, reverse=False) == ["w4", "w2", "w3", "w1", "w5"]
    assert sorted_keys(rows, "behind", 3, reverse=True) == ["w1", "w3", "w2", "w4", "w5"]
    assert natural_key("w-2") < natural_key("w-10")


def world() -> tuple[Desired, Observed]:
    owner = encode_address(bytes([1]) * 32)
    desired = Desired.model_validate(
        {
            "settings": {"network": "devnet"},
            "accounts": [{"name": "owner", "role": "owner", "address": owner}],
            "pools": [{"name": "pool-a", "pid": 0, "owner": "owner", "default_stake": 1}],
            "workers": [
                {
                    "name": name,
                    "endpoint": f"http://127.0.0.1:{8100 + i}",
                    "pubkey": f"{i:064x}",
                    "pool": "pool-a",
                    "labels": {"rack": "a" if i % 2 else "b"},
                }
                for i, name in enumerate(BLOCKNUMS)
            ],
        }
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    pruntimes = {}
    chain = {}
    for i, block in enumerate(BLOCKNUMS.values()):
        endpoint = f"http://127.0.0.1:{8100 + i}"
        info = PRuntimeInfo(
            initialized=block is not None, blocknum=block or 0, public_key=f"{i:064x}"
        )
        pruntimes[endpoint] = PRuntimeObservation(endpoint=endpoint, info=info, read_at=now)
        chain[f"{i:064x}"] = ChainWorker(
            pubkey=f"{i:064x}",
            initial_score=[1000, 12, 150, 2, 7, 30][i],
            session_state=SessionState.WORKER_IDLE,
            stake=[4500250000000000, 120 * PHA, 90 * PHA, 2 * PHA, 10 * PHA, 3 * PHA][i],
            pool_pid=0,
        )
    observed = Observed(
        read_at=now,
        head=ChainHead(best_number=1002, finalized_number=1000),
        pruntimes=pruntimes,
        chain_workers=chain,
    )
    return desired, observed


async def test_sort_numeric_reverse_off_and_the_filter_keeps_it() -> None:
    desired, observed = world()
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        inventory_order = list(BLOCKNUMS)
        assert row_keys(app) == inventory_order
        await pilot.press(*"s" * 4)  # glyph, name, phase, behind
        await pilot.pause()
        assert app.sort_column == "behind"
        assert row_keys(app) == ["w-05", "w-04", "w-02", "w-03", "w-01", "w-06"]
        await pilot.press("S")
        await pilot.pause()
        assert row_keys(app) == ["w-01", "w-03", "w-02", "w-04", "w-05", "w-06"]
        assert "sort: behind ▼" in str(app.query_one("#summary").render())
        # The filter keeps the sort, and clearing it restores the sorted order.
        await pilot.press("slash", *"label:rack=a")
        await pilot.pause()
        assert row_keys(app) == ["w-02", "w-04", "w-06"]
        await pilot.press("escape")
        await pilot.pause()
        assert row_keys(app) == ["w-01", "w-03", "w-02", "w-04", "w-05", "w-06"]
        app._set_sort("score", reverse=False)
        await pilot.pause()
        assert row_keys(app) == ["w-04", "w-05", "w-02", "w-06", "w-03", "w-01"]
        await pilot.press("s", "s", "s")  # endpoint, message, then off
        await pilot.pause()
        assert sort_of(app) == (None, False)
        assert row_keys(app) == inventory_order


def sort_of(app: PoolkeeperApp) -> tuple[str | None, bool]:
    return app.sort_column, app.sort_reverse


async def test_header_click_cycles_ascending_descending_off() -> None:
    desired, observed = world()
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        table = app.workers_table
        for expected in [("stake", False), ("stake", True), (None, False)]:
            column = table.columns[ColumnKey("stake")]
            table.post_message(table.HeaderSelected(table, column.key, 7, column.label))
            await pilot.pause()
            assert sort_of(app) == expected
        assert row_keys(app) == list(BLOCKNUMS)


async def test_columns_widen_to_their_values() -> None:
    desired, observed = world()
    source = SnapshotSource(desired, observed)
    app = PoolkeeperApp(source, readonly=True)
    async with app.run_test(size=(200, 30)) as pilot:
        await pilot.pause()
        table = app.workers_table
        assert table.get_cell("w-01", "stake") == "4500.25 PHA"
        stake = table.columns[ColumnKey("stake")]
        assert stake.content_width == len("4500.25 PHA")
        assert "4500.25 PHA" in svg_text(app.export_screenshot())
        # A status update with a longer value widens the column (no rebuild).
        worker = next(iter(observed.chain_workers.values()))
        richer = worker.model_copy(update={"stake": 1234567891234567891})
        source.replace(
            observed.model_copy(
                update={"chain_workers": {**observed.chain_workers, worker.pubkey: richer}}
            )
        )
        rebuilds = table.rebuilds
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert table.rebuilds == rebuilds
        assert table.get_cell("w-01", "stake") == "1234567.891234567891 PHA"
        assert stake.content_width == len("1234567.891234567891 PHA")
        assert "1234567.891234567891 PHA" in svg_text(app.export_screenshot())


async def test_a_filter_change_is_one_rebuild_never_row_removals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    desired, observed = world()
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        table = app.workers_table

        def forbidden(*_: Any, **__: Any) -> None:
            raise AssertionError("rows are replaced in bulk, never one by one")

        monkeypatch.setattr(table, "remove_row", forbidden)
        monkeypatch.setattr(table, "add_row", forbidden)
        await pilot.press("slash")
        before = table.rebuilds
        await pilot.press("3")  # "3": w-03 only (and cells with a 3)
        await pilot.pause()
        assert table.rebuilds == before + 1, "one rebuild per keystroke that changes rows"
        app.query_one("#filter").value = "behind>100"  # type: ignore[attr-defined]
        await pilot.pause()
        assert row_keys(app) == ["w-01", "w-03"]
        rebuilds = table.rebuilds
        app.query_one("#filter").value = "behind>100 "  # type: ignore[attr-defined]
        await pilot.pause()
        assert table.rebuilds == rebuilds, "the same rows in the same order: no rebuild"
