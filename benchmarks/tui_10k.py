"""The TUI with 10,000 workers, driven by Textual's Pilot: build, a status delta, filter
keystrokes, sorting, the plan screen and peak RSS (the targets of docs/benchmarks.md).

Builds a 10,000-worker inventory (50 pools) and a fresh snapshot (every pRuntime
uninitialized), runs the app headless (``App.run_test``) and times:

- plan: ``plan_for`` inside the snapshot source (the product's cost, not the TUI's);
- build: turning the frame into 10,000 table rows (``show_frame``: rows + add_row);
- status update: a second observation where 1,000 pRuntimes became synced, patched by key
  (the changed cells only; no rebuild), until painted;
- filter keystrokes (``w-0`` -> ``w-00``: 10,000 -> 1,000 rows, and back), a field filter;
- sorts (names descending, stake as numbers, off) and the plan screen, each until painted;
- attached: the same update as a running loop streams it (hub, client view, the attached
  source's frame; no socket): folding the delta into a frame, then show_frame + paint.

    .venv/bin/python benchmarks/tui_10k.py [--workers 10000] [--changed 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tui")]

from textual.widgets import Input  # noqa: E402

from poolkeeper.cli._live import status_rows  # noqa: E402
from poolkeeper.control.client import StatusView  # noqa: E402
from poolkeeper.control.server import StatusHub  # noqa: E402
from poolkeeper.model.conditions import derive_conditions  # noqa: E402
from poolkeeper.model.desired import Desired  # noqa: E402
from poolkeeper.model.observed import (  # noqa: E402
    ChainHead,
    Observed,
    PRuntimeInfo,
    PRuntimeObservation,
)
from poolkeeper.model.ss58 import encode_address  # noqa: E402
from poolkeeper.plan import plan_for  # noqa: E402
from poolkeeper.render import plan_document  # noqa: E402
from poolkeeper_tui._data import AttachedSource, RowCache, SnapshotSource  # noqa: E402
from poolkeeper_tui._screens import PlanScreen  # noqa: E402
from poolkeeper_tui.app import PoolkeeperApp  # noqa: E402

POOLS = 50
PHA = 10**12


def inventory(workers: int) -> Desired:
    owner = encode_address(bytes([1]) * 32)
    per_pool = workers // POOLS
    return Desired.model_validate(
        {
            "settings": {"network": "devnet"},
            "accounts": [{"name": "owner", "role": "owner", "address": owner}],
            "pools": [
                {"name": f"pool-{p:02d}", "pid": p, "owner": "owner", "default_stake": 5000 * PHA}
                for p in range(POOLS)
            ],
            "workers": [
                {
                    "name": f"w-{i:05d}",
                    "endpoint": f"http://127.0.0.1:{20000 + i}",
                    "pool": f"pool-{min(i // per_pool, POOLS - 1):02d}",
                }
                for i in range(workers)
            ],
        }
    )


def fresh_world(desired: Desired) -> Observed:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Observed(
        read_at=now,
        head=ChainHead(best_number=1002, finalized_number=1000),
        pruntimes={
            w.endpoint: PRuntimeObservation(
                endpoint=w.endpoint, info=PRuntimeInfo(initialized=False), read_at=now
            )
            for w in desired.workers
        },
    )


def with_synced(observed: Observed, desired: Desired, changed: int) -> Observed:
    pruntimes = dict(observed.pruntimes)
    step = max(1, len(desired.workers) // changed)
    for worker in desired.workers[::step][:changed]:
        pruntimes[worker.endpoint] = PRuntimeObservation(
            endpoint=worker.endpoint,
            info=PRuntimeInfo(initialized=True, blocknum=1000, headernum=1000),
        )
    return observed.model_copy(update={"pruntimes": pruntimes})


class _Timer:
    """Wall-clock and CPU time of one step (these machines are shared: both matter)."""

    def __init__(self, figures: dict[str, tuple[float, float]], name: str) -> None:
        self.figures, self.name = figures, name

    def __enter__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *_: object) -> None:
        self.figures[self.name] = (
            time.perf_counter() - self.wall,
            time.process_time() - self.cpu,
        )


async def measure(workers: int, changed: int) -> dict[str, tuple[float, float]]:
    desired = inventory(workers)
    observed = fresh_world(desired)
    source = SnapshotSource(desired, observed)
    app = PoolkeeperApp(source, readonly=True)
    figures: dict[str, tuple[float, float]] = {}
    counts: dict[str, float] = {}
    startup = _Timer(figures, "startup, plan and first frame shown")
    startup.__enter__()
    async with app.run_test(size=(200, 50)) as pilot:
        startup.__exit__()
        table = app.workers_table
        assert table.row_count == workers, table.row_count
        frame = first = await source.refresh()
        # Initial build alone: a fresh app state, the same frame.
        app._shown_keys = []
        app._row_cache = RowCache()
        with _Timer(figures, f"build {workers} rows (show_frame)"):
            app.show_frame(frame)
        with _Timer(figures, "paint after build"):
            await pilot.pause()

        source.replace(with_synced(observed, desired, changed))
        with _Timer(figures, "plan_for of the changed world"):
            frame = await source.refresh()
        rebuilds = table.rebuilds
        keys_before = set(table.rows)
        with _Timer(figures, f"status update: {changed} rows change (show_frame + paint)"):
            with _Timer(figures, "  of which show_frame (row records, diff, patch)"):
                app.show_frame(frame)
            await pilot.pause()
        counts["row records rebuilt by the status update"] = len(app._row_cache.changed or ())
        assert set(table.rows) == keys_before and table.row_count == workers
        assert table.rebuilds == rebuilds, "a status delta patches cells, it rebuilds nothing"
        assert table.get_cell(desired.workers[0].name, "phase") == "Synced"
        # The same kind of update the way it was done before the row cache: every
        # worker's record rebuilt (a fresh cache), here back to the first observation.
        app._row_cache = RowCache()
        with _Timer(figures, f"the same, {changed} rows back, all records rebuilt (before)"):
            with _Timer(figures, "  of which show_frame (all 10,000 records rebuilt)"):
                app.show_frame(first)
            await pilot.pause()
        assert table.get_cell(desired.workers[0].name, "phase") == "Uninitialized"
        assert table.rebuilds == rebuilds
        app.show_frame(frame)  # the synced world again, for the steps below
        await pilot.pause()

        with _Timer(figures, "a key bound to nothing (Pilot's own cost)"):
            await pilot.press("f12")
        # Filter: typing "w-00" cuts 10,000 rows (all "w-0....") to 1,000 on the last key.
        await pilot.press("slash", "w", "-", "0")
        assert table.row_count == workers
        with _Timer(figures, f"filter keystroke: {workers} -> {workers // 10} rows"):
            await pilot.press("0")
        assert table.row_count == workers // 10, table.row_count
        with _Timer(figures, f"filter keystroke: {workers // 10} -> {workers} rows"):
            await pilot.press("backspace")
        assert table.row_count == workers
        with _Timer(figures, "field filter `pool:pool-07 behind<5` typed at once"):
            app.query_one("#filter", Input).value = "pool:pool-07 behind<5"
            await pilot.pause()
        counts["rows kept by `pool:pool-07 behind<5`"] = table.row_count
        await pilot.press("escape")
        assert table.row_count == workers

        with _Timer(figures, f"sort {workers} rows by worker name, descending (S)"):
            await pilot.press("S")
        assert app.sort_column == "name" and app.sort_reverse
        app._set_sort("relay", reverse=False)
        await pilot.pause()
        with _Timer(figures, f"sort {workers} rows by stake (numeric, s)"):
            await pilot.press("s")
        assert app.sort_column == "stake"
        with _Timer(figures, "sort off (inventory order)"):
            app._set_sort(None, reverse=False)
            await pilot.pause()

        with _Timer(figures, f"plan screen ({len(frame.plan.actions):,} actions) open + paint"):
            await pilot.press("p")
            await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        with _Timer(figures, "plan screen: page down + paint"):
            await pilot.press("pagedown")
            await pilot.pause()
        await pilot.press("escape")
        counts["table rebuilds (filter/sort changes)"] = table.rebuilds - rebuilds
        counts["peak RSS MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        await attached_update(
            app, pilot, desired, observed, changed=changed, figures=figures, counts=counts
        )
    counts["peak RSS MB after the attached step (the loop's hub in this process too)"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    counts["load average (1 min) at the end"] = os.getloadavg()[0]
    for name, value in counts.items():
        print(f"{name:<56} {value:,.1f}")
    return figures


class _Client:
    """What ``AttachedSource`` reads of its ``ControlClient``: the folded view."""

    def __init__(self, view: StatusView) -> None:
        self.view = view
        self.hello: dict[str, object] = {}


async def attached_update(
    app: PoolkeeperApp,
    pilot: Any,
    desired: Desired,
    observed: Observed,
    *,
    changed: int,
    figures: dict[str, tuple[float, float]],
    counts: dict[str, float],
) -> None:
    """The same status update as a running loop streams it: its hub publishes the two
    worlds (rows with conditions where the code streams them), a client view folds the
    messages, and the attached source turns the view into frames (no socket)."""
    hub = StatusHub()
    queue = hub.subscribe()
    view = StatusView()
    view.apply(hub.snapshot())
    source = AttachedSource(Path("/nonexistent/control.sock"), desired, readonly=True)
    source._client = _Client(view)  # type: ignore[assignment]
    conditions = None

    def publish(world: Observed, at: datetime) -> None:
        nonlocal conditions
        conditions = derive_conditions(desired, world, conditions, at)
        document = world.model_dump(mode="json")
        try:
            hub.publish_observed(document, status_rows(desired, world), conditions)
        except TypeError:  # code from before conditions were streamed
            hub.publish_observed(document, status_rows(desired, world))
        hub.publish_plan(plan_document(plan_for(desired, world)), "digest")

    def fold() -> Any:
        while not queue.empty():
            message = queue.get_nowait()
            assert message is not None
            view.apply(message)
        return source._frame()

    now = datetime(2026, 1, 1, tzinfo=UTC)
    publish(observed, now)
    app.show_frame(fold())  # the first frame from the stream: every row built
    await pilot.pause()
    publish(with_synced(observed, desired, changed), now + timedelta(seconds=30))
    with _Timer(figures, "attached: fold the delta into a frame (observation, plan)"):
        frame = fold()
    with _Timer(figures, f"attached: status update, {changed} rows change (show_frame + paint)"):
        with _Timer(figures, "  of which show_frame (attached)"):
            app.show_frame(frame)
        await pilot.pause()
    rebuilt = app._row_cache.changed
    counts["row records rebuilt by the attached update"] = (
        len(desired.workers) if rebuilt is None else len(rebuilt)
    )
    assert app.workers_table.get_cell(desired.workers[0].name, "phase") == "Synced"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=1_000)
    args = parser.parse_args()
    print(f"{'step':<56} {'wall':>9} {'CPU':>9}")
    figures = asyncio.run(measure(args.workers, args.changed))
    for name, (wall, cpu) in figures.items():
        print(f"{name:<56} {wall * 1000:6.0f} ms {cpu * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
