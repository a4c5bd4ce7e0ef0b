"""The TUI driven through Textual's Pilot against the example inventory and snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from poolkeeper.model.actions import Action, ActionKind
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed, PRuntimeInfo
from poolkeeper_tui._data import Frame, SnapshotSource
from poolkeeper_tui._screens import ConfirmApply, DrillDownScreen, PlanScreen
from poolkeeper_tui.app import PoolkeeperApp

from .conftest import svg_text


class CountingSnapshot(SnapshotSource):
    """A snapshot source that records apply calls instead of refusing them."""

    def __init__(self, desired: Desired, observed: Observed, *, can_apply: bool) -> None:
        super().__init__(desired, observed)
        self.can_apply = can_apply  # type: ignore[misc]
        self.applied = 0
        self.extra_actions: tuple[Action, ...] = ()

    async def refresh(self) -> Frame:
        frame = await super().refresh()
        plan = frame.plan.model_copy(update={"actions": frame.plan.actions + self.extra_actions})
        return Frame(frame.desired, frame.observed, plan)

    async def apply(self) -> Frame:
        self.applied += 1
        frame = await self.refresh()
        return Frame(frame.desired, frame.observed, frame.plan, ("applied (test)",))


def log_lines(app: PoolkeeperApp) -> list[str]:
    return [str(line) for line in app.query_one("#log").lines]  # type: ignore[attr-defined]


def row_keys(app: PoolkeeperApp) -> list[str]:
    return [str(row.key.value) for row in app.workers_table.ordered_rows]


async def test_table_shows_the_inventory_workers(desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        assert sorted(row_keys(app)) == sorted(w.name for w in desired.workers)
        table = app.workers_table
        assert table.get_cell("rack-a-01", "phase") == "Uninitialized"
        assert table.get_cell("rack-a-01", "glyph") == "+"
        assert table.get_cell("rack-a-02", "pool") == "pool-a"
        assert table.get_cell("rack-b-04", "pool") == "-"
        assert table.get_cell("rack-a-01", "behind") == "-", "uninitialized: nothing to be behind"
        summary = str(app.query_one("#summary").render())
        assert "finalized #10" in summary
        assert "Uninitialized 8" in summary


async def test_filter_narrows_rows_and_escape_clears_it(
    desired: Desired, observed: Observed
) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"rack-b")
        await pilot.pause()
        assert sorted(row_keys(app)) == ["rack-b-01", "rack-b-02", "rack-b-03", "rack-b-04"]
        await pilot.press("enter")
        await pilot.pause()
        assert len(row_keys(app)) == 4, "Enter keeps the filter"
        await pilot.press("escape")
        await pilot.pause()
        assert len(row_keys(app)) == len(desired.workers)


async def test_sort_cycles_columns(desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("s", "s")  # glyph, then name
        await pilot.pause()
        assert row_keys(app) == sorted(w.name for w in desired.workers)
        await pilot.press("s", "s", "s")  # phase, behind, pool: rack-b-04 has none
        await pilot.pause()
        assert app.sort_column == "pool"
        assert row_keys(app)[-1] == "rack-b-04", "rows without a value go last"


async def test_enter_opens_the_drill_down_and_escape_returns(
    desired: Desired, observed: Observed
) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, DrillDownScreen)
        text = svg_text(app.export_screenshot())
        assert "worker rack-a-02" in text
        assert "workers/rack-a.yaml:9" in text, "the inventory file:line"
        assert "8000 PHA" in text, "the worker's own stake, desired"
        assert "start_relay" in text
        await pilot.press("escape")
        await pilot.pause()
        screen: object = app.screen
        assert not isinstance(screen, DrillDownScreen)
        assert app.focused is app.workers_table


async def test_plan_preview_shows_the_rendered_plan(desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(120, 80)) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        assert "Plan: 13 to add" in svg_text(app.export_screenshot())


async def test_apply_in_readonly_shows_a_notice_and_applies_nothing(
    desired: Desired, observed: Observed
) -> None:
    source = CountingSnapshot(desired, observed, can_apply=True)
    app = PoolkeeperApp(source, readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmApply)
        assert any("read-only" in n.message for n in app._notifications)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        assert source.applied == 0
        assert "apply refused: read-only" in " ".join(log_lines(app))


def _stop(worker: str) -> Action:
    return Action(
        id=f"stop_computing:worker/{worker}",
        kind=ActionKind.STOP_COMPUTING,
        target=f"worker/{worker}",
        reason="test: state is idle",
        pool="pool-a",
        destructive=True,
    )


@pytest.mark.parametrize(("answer", "applied"), [("n", 0), ("y", 1)])
async def test_apply_confirmation_lists_destructive_actions(
    desired: Desired, observed: Observed, answer: str, applied: int
) -> None:
    source = CountingSnapshot(desired, observed, can_apply=True)
    source.extra_actions = (_stop("rack-a-03"),)
    app = PoolkeeperApp(source, readonly=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        assert app.workers_table.get_cell("rack-a-03", "glyph") == "-"
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmApply)
        text = svg_text(app.export_screenshot())
        assert "1 destructive action(s)" in text
        assert "By kind:" in text and "1 stop_computing (destructive)" in text
        assert "worker/rack-a-03: stop_computing" in text
        await pilot.press(answer)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert source.applied == applied


async def test_apply_stops_when_new_destructive_actions_appear(
    desired: Desired, observed: Observed
) -> None:
    source = CountingSnapshot(desired, observed, can_apply=True)
    source.extra_actions = (_stop("rack-a-03"),)
    app = PoolkeeperApp(source, readonly=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        source.extra_actions = (_stop("rack-a-03"), _stop("rack-a-04"))
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert source.applied == 0
        assert "stop_computing:worker/rack-a-04" in " ".join(log_lines(app))


async def test_a_refresh_updates_only_the_changed_cells_by_key(
    desired: Desired, observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = SnapshotSource(desired, observed)
    app = PoolkeeperApp(source, readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        table = app.workers_table
        keys_before = row_keys(app)
        untouched_before = [table.get_row(k) for k in keys_before if k != "rack-a-01"]
        calls: list[tuple[str, int, str]] = []
        real_patch = table.patch

        def spy_patch(changes: Any) -> int:
            changes = list(changes)
            calls.extend(changes)
            return real_patch(changes)

        def forbidden(*_: Any, **__: Any) -> None:
            raise AssertionError("rows must be updated by key, not rebuilt")

        monkeypatch.setattr(table, "patch", spy_patch)
        monkeypatch.setattr(table, "replace_rows", forbidden)
        monkeypatch.setattr(table, "clear", forbidden)
        monkeypatch.setattr(table, "add_row", forbidden)
        monkeypatch.setattr(table, "remove_row", forbidden)

        endpoint = desired.workers_by_name["rack-a-01"].endpoint
        synced = observed.pruntimes[endpoint].model_copy(
            update={
                "info": PRuntimeInfo(initialized=True, blocknum=10, headernum=10, score=7),
            }
        )
        source.replace(
            observed.model_copy(update={"pruntimes": {**observed.pruntimes, endpoint: synced}})
        )
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()

        assert row_keys(app) == keys_before
        assert calls, "the changed worker's cells were updated"
        assert {row for row, _, _ in calls} == {"rack-a-01"}
        assert table.get_cell("rack-a-01", "phase") == "Synced"
        assert table.get_cell("rack-a-01", "behind") == "0"
        assert [table.get_row(k) for k in keys_before if k != "rack-a-01"] == untouched_before


async def test_views_switch_with_number_keys(desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        text = svg_text(app.export_screenshot())
        assert "treasury" in text and "25000 PHA" in text and "10000 PHA" in text
        await pilot.press("3")
        await pilot.pause()
        assert "pass at #12: 17 action(s)" in svg_text(app.export_screenshot())
        await pilot.press("1")
        await pilot.pause()
        assert "rack-a-01" in svg_text(app.export_screenshot())


async def test_help_screen_opens_and_closes(desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert "drill down" in svg_text(app.export_screenshot())
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]


class FailingSource(SnapshotSource):
    async def refresh(self) -> Frame:
        raise ValueError("chain went away")


async def test_a_failed_pass_is_logged_and_the_app_keeps_running(
    desired: Desired, observed: Observed
) -> None:
    app = PoolkeeperApp(FailingSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
        assert app.loop_state == "error"
        assert log_lines(app)[-1].endswith("pass failed: ValueError: chain went away")
        assert "no observation yet" in str(app.query_one("#summary").render())


async def test_plan_screen_pages_and_jumps(desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(120, 20)) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        lines = app.screen.query_one("#plan-text")
        assert lines.scroll_offset.y == 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert lines.scroll_offset.y > 0
        await pilot.press("G")
        await pilot.pause()
        assert lines.scroll_offset.y == lines.max_scroll_y > 0
        assert "Plan: 13 to add" in svg_text(app.export_screenshot())
        await pilot.press("g")
        await pilot.pause()
        assert lines.scroll_offset.y == 0
