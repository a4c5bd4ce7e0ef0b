"""The main screen, pixel for pixel, from the example snapshot at fixed terminal sizes:
80×24 (the smallest supported: name, phase, glyph, behind and the footer's `?`/`q` stay
visible), 150×24 and 160×50.

Update the stored SVGs with ``pytest tests/tui --snapshot-update`` after an intended change.
"""

from __future__ import annotations

from typing import Any

import pytest

from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed
from poolkeeper_tui._data import SnapshotSource
from poolkeeper_tui.app import PoolkeeperApp

from .conftest import svg_text


def test_main_screen(snap_compare: Any, desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    assert snap_compare(app, terminal_size=(150, 24))


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_main_screen_at(
    snap_compare: Any, desired: Desired, observed: Observed, size: tuple[int, int]
) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    assert snap_compare(app, terminal_size=size)


async def test_80x24_keeps_the_essentials(desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = svg_text(app.export_screenshot()).splitlines()
        header = next(line for line in lines if "worker" in line and "phase" in line)
        assert "behind" in header
        row = next(line for line in lines if "rack-a-01" in line)
        assert row.lstrip().startswith("+"), "the glyph"
        assert "Uninitialized" in row
        footer = lines[-1]
        assert "help" in footer and "quit" in footer
        assert footer.index("quit") < 40, "help and quit come first"


async def test_help_scrolls_at_80x24(desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        text = svg_text(app.export_screenshot())
        assert "workers / accounts / event log / pools" in text
        box = app.screen.query_one("VerticalScroll")
        assert box.max_scroll_y > 0, "taller than 24 lines: it scrolls"
        box.scroll_end(animate=False)
        await pilot.pause()
        assert "not observed yet" in svg_text(app.export_screenshot())
