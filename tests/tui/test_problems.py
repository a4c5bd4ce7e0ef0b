"""Problems first: severity colours, stale rows dimmed, the problems-only toggle (`!`),
the next-alert key (`n`), j/k/g/G, the data age in the header and the per-pool view."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from poolkeeper.model.actions import Alert, Severity
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed, PRuntimeInfo
from poolkeeper_tui._data import Frame, SnapshotSource
from poolkeeper_tui.app import PoolkeeperApp

from .conftest import INVENTORY, svg_text
from .test_app import row_keys


class AlertingSource(SnapshotSource):
    """The example snapshot plus a critical alert on rack-a-03 and a warning on rack-b-02."""

    static = False

    async def refresh(self) -> Frame:
        frame = await super().refresh()
        alerts = (
            Alert(target="worker/rack-a-03", severity=Severity.CRITICAL, message="test: down"),
            Alert(target="worker/rack-b-02", severity=Severity.WARN, message="test: slow"),
        )
        return Frame(
            frame.desired, frame.observed, frame.plan.model_copy(update={"alerts": alerts})
        )


def summary(app: PoolkeeperApp) -> str:
    return str(app.query_one("#summary").render())


async def test_problems_toggle_next_alert_and_colours(desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(AlertingSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        table = app.workers_table
        styles = table.row_styles
        assert styles["rack-a-03"].color is not None and styles["rack-a-03"].color.name == "red"
        assert styles["rack-b-02"].color is not None and styles["rack-b-02"].color.name == "yellow"
        assert styles["rack-a-01"].color is not None and styles["rack-a-01"].color.name == "cyan"
        assert table.get_cell("rack-a-03", "glyph") == "!"
        # n: from the first row to the next problem, then the one after, then around.
        assert table.cursor_row == 0
        await pilot.press("n")
        assert table.cursor_key() == "rack-a-03"
        await pilot.press("n")
        assert table.cursor_key() == "rack-b-02"
        await pilot.press("n")
        assert table.cursor_key() == "rack-a-03"
        # !: problems only, on and off; the cursor stays on its worker.
        await pilot.press("exclamation_mark")
        await pilot.pause()
        assert row_keys(app) == ["rack-a-03", "rack-b-02"]
        assert table.cursor_key() == "rack-a-03"
        assert "problems only (!)" in summary(app)
        await pilot.press("exclamation_mark")
        await pilot.pause()
        assert len(row_keys(app)) == len(desired.workers)
        assert table.cursor_key() == "rack-a-03"


async def test_j_k_g_and_capital_g_move_the_cursor(desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        table = app.workers_table
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == len(desired.workers) - 1
        await pilot.press("g")
        assert table.cursor_row == 0


async def test_data_age_in_the_header_and_stale_rows_dimmed(
    desired: Desired, observed: Observed
) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(minutes=10)
    endpoint = desired.workers_by_name["rack-a-02"].endpoint
    pruntimes = {
        e: p.model_copy(update={"read_at": old if e == endpoint else now})
        for e, p in observed.pruntimes.items()
    }
    fresh = observed.model_copy(
        update={"read_at": now - timedelta(seconds=5), "pruntimes": pruntimes}
    )
    app = PoolkeeperApp(AlertingSource(desired, fresh), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        age = re.search(r"data age (\d+) s", summary(app))
        assert age is not None and 5 <= int(age.group(1)) < 60, summary(app)
        styles = app.workers_table.row_styles
        assert styles["rack-a-02"].dim, "a pRuntime read 10 minutes before the pass"
        assert not styles["rack-a-01"].dim


async def test_snapshot_header_gives_the_observation_date(
    desired: Desired, observed: Observed
) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        assert "observed 2026-01-01 00:00:00Z" in summary(app)


async def test_the_pools_view_sums_workers_per_pool(desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(AlertingSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("4")
        await pilot.pause()
        pools = app.query_one("#pools")
        assert pools.get_row("pool-a")[:6] == ["pool-a", "4", "0", "1", "0", "3"]  # type: ignore[attr-defined]
        assert pools.get_row("pool-b")[:6] == ["pool-b", "3", "0", "0", "1", "2"]  # type: ignore[attr-defined]
        assert pools.get_row("-")[1] == "1"  # type: ignore[attr-defined]
        assert "max behind" in svg_text(app.export_screenshot())


class NeverObserved(SnapshotSource):
    """A chain that is down from the start: every pass fails."""

    static = False

    async def refresh(self) -> Frame:
        raise OSError("chain unreachable (test)")


async def test_inventory_workers_are_listed_before_any_observation(
    desired: Desired, observed: Observed
) -> None:
    app = PoolkeeperApp(NeverObserved(desired, observed), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert sorted(row_keys(app)) == sorted(w.name for w in desired.workers)
        table = app.workers_table
        assert table.get_cell("rack-a-01", "glyph") == "?"
        assert table.get_cell("rack-a-01", "message") == "not observed yet"
        assert table.row_styles["rack-a-01"].dim
        assert "no observation yet" in summary(app)


async def test_the_drill_down_follows_the_passes(desired: Desired, observed: Observed) -> None:
    source = SnapshotSource(desired, observed)
    app = PoolkeeperApp(source, readonly=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert "Uninitialized" in svg_text(app.export_screenshot())
        endpoint = desired.workers_by_name["rack-a-01"].endpoint
        synced = observed.pruntimes[endpoint].model_copy(
            update={"info": PRuntimeInfo(initialized=True, blocknum=10, headernum=10)}
        )
        source.replace(
            observed.model_copy(update={"pruntimes": {**observed.pruntimes, endpoint: synced}})
        )
        app.action_refresh()
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = svg_text(app.export_screenshot())
        assert "worker rack-a-01" in text and "Synced" in text


async def test_c_copies_the_address_under_the_cursor(
    desired: Desired, observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    copied: list[str] = []
    monkeypatch.setattr(app, "copy_to_clipboard", copied.append)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2", "c")  # accounts: owner is not derived yet
        await pilot.pause()
        assert copied == []
        assert any("no address known" in n.message for n in app._notifications)
        await pilot.press("G", "c")  # treasury, declared by address
        await pilot.pause()
        assert copied == ["447okwgqnpaKuseEXECNcXK8KUMPpgM1cjczMvKx9T7c5MXr"]


async def test_e_opens_the_declaring_file_at_its_line(
    desired: Desired, observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = SnapshotSource(desired, observed)
    source.directory = INVENTORY
    app = PoolkeeperApp(source, readonly=True)
    ran: list[list[str]] = []
    monkeypatch.setenv("EDITOR", "vi -R")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setattr(app, "run_editor", ran.append)
    monkeypatch.setattr(app, "suspend", contextlib.nullcontext)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("j", "e")  # rack-a-02: workers/rack-a.yaml:9
        await pilot.pause()
        assert ran == [["vi", "-R", "+9", str(INVENTORY / "workers" / "rack-a.yaml")]]
        monkeypatch.delenv("EDITOR")
        await pilot.press("e")
        await pilot.pause()
        assert len(ran) == 1
        assert any("set $EDITOR" in n.message for n in app._notifications)
