"""Status updates rebuild only the rows whose inputs changed, and show the same rows as
a rebuild of all of them."""

from __future__ import annotations

from poolkeeper.model.actions import Alert, Severity
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed, PRuntimeInfo
from poolkeeper_tui._data import Frame, RowCache, SnapshotSource, worker_records
from poolkeeper_tui.app import PoolkeeperApp

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
