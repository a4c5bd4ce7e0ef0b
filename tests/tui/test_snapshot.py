"""The main screen, pixel for pixel, from the example snapshot at a fixed terminal size.

Update the stored SVG with ``pytest tests/tui --snapshot-update`` after an intended change.
"""

from __future__ import annotations

from typing import Any

from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed
from poolkeeper_tui._data import SnapshotSource
from poolkeeper_tui.app import PoolkeeperApp


def test_main_screen(snap_compare: Any, desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    assert snap_compare(app, terminal_size=(150, 24))
