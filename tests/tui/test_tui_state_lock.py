"""A TUI that may apply is a writer: it takes the state dir lock; ``--readonly`` does not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from poolkeeper.apply.statedir import StateDirLock
from poolkeeper.errors import StateDirBusy
from poolkeeper.inventory import load_inventory
from poolkeeper_tui._data import LiveSource
from tests.unit.apply.test_statedir import hold_in_child

ROOT = Path(__file__).resolve().parents[2]


def test_a_live_tui_is_refused_while_another_writer_holds_and_readonly_is_not(
    tmp_path: Path,
) -> None:
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventory", inventory)
    desired = load_inventory(inventory)
    state = tmp_path / ".poolkeeper"
    child = hold_in_child(state)
    try:
        # poolkeeper.app raises; run_tui says "error: ..." and exits 1 (no typer here).
        with pytest.raises(StateDirBusy) as caught:
            LiveSource(inventory, desired, readonly=False)
        assert "`run`, since" in str(caught.value)
        LiveSource(inventory, desired, readonly=True)  # read-only: no lock asked
        holder = StateDirLock.holder_of(state)
        assert holder is not None and holder.pid == child.pid
    finally:
        child.kill()
        child.wait()
