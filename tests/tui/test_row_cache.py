"""Status updates rebuild only the rows whose inputs changed, and show the same rows as
a rebuild of all of them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from poolkeeper.model.actions import Alert, Severity
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import ChainHead, Observed, PRuntimeInfo, PRuntimeObservation
from poolkeeper.model.ss58 import encode_address
from poolkeeper_tui._data import STALE_SECONDS, Frame, RowCache, SnapshotSource, worker_records
from poolkeeper_tui._widgets import EventLog
from poolkeeper_tui.app import PoolkeeperApp

from .conftest import svg_text
from .test_app import row_keys


async def frames(desired: Desired, observed: Observed) -> tuple[Frame, Frame]:
    source = SnapshotSource(desired, observed)
    first = await source.refresh()
    endpoint = desired.workers_by_name["rack-a-02"].endpoint
    synced = observed.pruntimes[endpoint].model_copy(
        update={"info": PRuntimeInfo(initialized=True, blocknum=10, headernum=10, score=3)}
    )
    source.replace(
        observed.model_copy(update={"pruntimes": {**observed.pruntimes, endpoint: synced}})
    )
    second = await source.refresh()
    alert = Alert(target="worker/rack-b-03", severity=Severity.CRITICAL, message="test: down")
    plan = second.plan.model_copy(update={"alerts": (*second.plan.alerts, alert)})
    return first, Frame(second.desired, second.observed, plan)


async def test_only_changed_rows_are_rebuilt(desired: Desired, observed: Observed) -> None:
    first, second = await frames(desired, observed)
    cache = RowCache()
    before = worker_records(first, cache)
    assert cache.changed is None, "no previous frame: everything is new"
    after = worker_records(second, cache)
    assert sorted(cache.changed or ()) == ["rack-a-02", "rack-b-03"]
    assert all(after[k] is before[k] for k in after if k not in ("rack-a-02", "rack-b-03"))
    fresh = worker_records(second)
    assert {k: r.values for k, r in after.items()} == {k: r.values for k, r in fresh.items()}
    assert [r.severity for r in after.values()] == [r.severity for r in fresh.values()]


async def test_the_table_after_an_incremental_update_matches_a_fresh_one(
    desired: Desired, observed: Observed
) -> None:
    first, second = await frames(desired, observed)
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        app.show_frame(first)
        app.show_frame(second)
        await pilot.pause()
        table = app.workers_table
        assert app._row_cache.changed is not None, "the update went the incremental way"
        fresh = worker_records(second)
        assert row_keys(app) == list(fresh)
        assert [table.get_row(k) for k in fresh] == [list(r.values) for r in fresh.values()]
        assert table.row_styles["rack-b-03"].color is not None
        assert table.row_styles["rack-b-03"].color.name == "red"
        assert app._phase_counts.get("Synced") == 1


def many_workers(count: int) -> tuple[Desired, Observed]:
    """``count`` workers, every pRuntime uninitialized (more rows than a screen)."""
    owner = encode_address(bytes([1]) * 32)
    desired = Desired.model_validate(
        {
            "settings": {"network": "devnet"},
            "accounts": [{"name": "owner", "role": "owner", "address": owner}],
            "pools": [{"name": "pool-a", "pid": 0, "owner": "owner", "default_stake": 1}],
            "workers": [
                {"name": f"w-{i:02d}", "endpoint": f"http://127.0.0.1:{9000 + i}", "pool": "pool-a"}
                for i in range(count)
            ],
        }
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    observed = Observed(
        read_at=now,
        head=ChainHead(best_number=1002, finalized_number=1000),
        pruntimes={
            w.endpoint: PRuntimeObservation(
                endpoint=w.endpoint, info=PRuntimeInfo(initialized=False), read_at=now
            )
            for w in desired.workers
        },
    )
    return desired, observed


def screen_rows(app: PoolkeeperApp) -> dict[str, str]:
    """Each worker row on screen (as painted), by worker name."""
    text = svg_text(app.export_screenshot())
    return {m.group(1): line for line in text.splitlines() if (m := re.search(r"(w-\d\d)", line))}


async def test_a_status_update_repaints_only_the_changed_rows_on_screen() -> None:
    desired, observed = many_workers(60)
    source = SnapshotSource(desired, observed)
    app = PoolkeeperApp(source, readonly=True)
    async with app.run_test(size=(160, 24)) as pilot:
        await pilot.pause()
        table = app.workers_table
        await pilot.press("G")  # row w-59 rendered (and cached), then back to the top
        await pilot.pause()
        await pilot.press("g")
        await pilot.pause()
        assert "Uninitialized" in screen_rows(app)["w-01"]
        app._paint_summary()  # as the once-a-second repaint does: the header's size known
        await pilot.pause()
        rendered: list[int] = []
        render_cell = table._render_cell

        def counting(row: int, column: int, *args: Any, **kwargs: Any) -> Any:
            rendered.append(row)
            return render_cell(row, column, *args, **kwargs)

        table._render_cell = counting  # type: ignore[method-assign]
        layouts: list[object] = []
        refresh_layout = app.screen._refresh_layout

        def laid_out(*args: Any, **kwargs: Any) -> None:
            layouts.append(args)
            refresh_layout(*args, **kwargs)

        app.screen._refresh_layout = laid_out  # type: ignore[method-assign]
        pruntimes = dict(observed.pruntimes)
        for name in ("w-01", "w-03", "w-59"):  # two on screen, one below it
            endpoint = desired.workers_by_name[name].endpoint
            pruntimes[endpoint] = PRuntimeObservation(
                endpoint=endpoint,
                info=PRuntimeInfo(initialized=True, blocknum=1000, headernum=1000),
                read_at=observed.read_at,
            )
        source.replace(observed.model_copy(update={"pruntimes": pruntimes}))
        app.action_refresh()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app._row_cache.changed == ["w-01", "w-03", "w-59"]
        assert set(rendered) == {1, 3}, "only the changed rows on screen were rendered again"
        assert layouts == [], "no layout pass (the header and the hidden log kept their size)"
        shown = screen_rows(app)
        assert "Synced" in shown["w-01"] and "Synced" in shown["w-03"]
        assert "Uninitialized" in shown["w-02"] and "Uninitialized" in shown["w-04"]
        await pilot.press("G")  # w-59 was rendered before the update: not from the cache
        await pilot.pause()
        assert "Synced" in screen_rows(app)["w-59"]
        assert "Uninitialized" in screen_rows(app)["w-58"]


async def test_the_event_log_written_while_hidden_shows_every_line() -> None:
    desired, observed = many_workers(3)
    source = SnapshotSource(desired, observed)
    app = PoolkeeperApp(source, readonly=True)
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.pause()
        for _ in range(2):
            app.action_refresh()
            await app.workers.wait_for_complete()
        await pilot.pause()
        log = app.query_one("#log", EventLog)
        assert not log.display and log._held, "hidden: the lines wait"
        await pilot.press("3")
        await pilot.pause()
        assert not log._held
        text = svg_text(app.export_screenshot())
        assert text.count("pass at #1002: 3 action(s)") == 3, text


async def test_time_and_the_head_alone_rebuild_the_rows_they_change() -> None:
    """The same pRuntime observations (the same objects) in a later pass: a row turns
    stale when its reading gets too old, and an initialized worker's `behind` follows
    the finalized head."""
    desired, observed = many_workers(3)
    endpoint = desired.workers_by_name["w-01"].endpoint
    synced = PRuntimeObservation(
        endpoint=endpoint,
        info=PRuntimeInfo(initialized=True, blocknum=990, headernum=990),
        read_at=observed.read_at,
    )
    observed = observed.model_copy(update={"pruntimes": {**observed.pruntimes, endpoint: synced}})
    source = SnapshotSource(desired, observed)
    cache = RowCache()
    first = worker_records(await source.refresh(), cache)
    assert first["w-01"].values[3] == "10" and not first["w-00"].stale
    later = observed.model_copy(
        update={
            "read_at": observed.read_at + timedelta(seconds=STALE_SECONDS + 1),
            "head": ChainHead(best_number=1003, finalized_number=1001),
        }
    )
    source.replace(later)
    second = worker_records(await source.refresh(), cache)
    assert sorted(cache.changed or ()) == ["w-00", "w-01", "w-02"]
    assert all(r.stale for r in second.values())
    assert second["w-01"].values[3] == "11"
    source.replace(
        later.model_copy(update={"head": ChainHead(best_number=1004, finalized_number=1002)})
    )
    third = worker_records(await source.refresh(), cache)
    assert cache.changed == ["w-01"], "only the initialized worker's row follows the head"
    assert third["w-01"].values[3] == "12" and third["w-00"] is second["w-00"]


def test_row_marks_agree_with_the_grouped_plan() -> None:
    """The one-pass marks give each target the glyph and message its grouped lines give
    (``glyph_of``, ``_last_message``), and whether a critical alert is among them."""
    from poolkeeper.model.actions import Action, ActionKind, Drift, Plan, Wait
    from poolkeeper_tui._data import _last_message, glyph_of, items_by_target, row_marks

    def act(target: str, kind: ActionKind, n: int = 0) -> Action:
        return Action(id=f"{kind.value}:{target}:{n}", kind=kind, target=target, reason=f"r{n}")

    plan = Plan(
        actions=(
            act("worker/create", ActionKind.ADD_WORKER),
            act("worker/both", ActionKind.START_COMPUTING, 1),
            act("worker/both", ActionKind.STOP_COMPUTING, 2),
            act("worker/change", ActionKind.RESTART_COMPUTING),
            act("worker/change", ActionKind.ADD_WORKER, 3),
            act("worker/warned", ActionKind.ADD_WORKER),
            act("account/owner", ActionKind.TOP_UP),
        ),
        waits=(
            Wait(target="worker/waits", awaiting="sync", reason="first"),
            Wait(target="worker/waits", awaiting="score", reason="second"),
            Wait(target="worker/create", awaiting="sync", reason="behind the action"),
        ),
        alerts=(
            Alert(target="worker/warned", severity=Severity.WARN, message="low"),
            Alert(target="worker/down", severity=Severity.WARN, message="first"),
            Alert(target="worker/down", severity=Severity.CRITICAL, message="second"),
        ),
        drift=(
            Drift(target="worker/drifts", message="cap differs"),
            Drift(target="worker/waits", message="after the waits"),
        ),
    )
    marks = row_marks(plan)
    grouped = items_by_target(plan)
    assert set(marks) == set(grouped)
    for target, items in grouped.items():
        critical = any(a.severity is Severity.CRITICAL for a in items.alerts)
        assert marks[target] == (glyph_of(items), _last_message(None, items), critical), target
    assert marks["worker/both"][0] == "-" and marks["worker/change"][0] == "+"
    assert marks["worker/waits"][1] == "waiting for sync: first"
