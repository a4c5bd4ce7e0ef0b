"""Outages: a hung chain ends as an error naming the pass deadline (never "observing"
forever), shown in the header; a frame older than the passes should make it dims every
row, and a fresh one undims them."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from poolkeeper.inventory import load_inventory
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed
from poolkeeper_tui._data import LiveSource, SnapshotSource
from poolkeeper_tui.app import STALE_STYLE, PoolkeeperApp

from .conftest import INVENTORY
from .test_problems import summary


class HungNode:
    """A TCP port that accepts connections and never answers (a hung node)."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port: int = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            self.held.append(conn)

    def release(self) -> None:
        """Stop and drop the connections (the chain client's thread then gives up at
        once instead of at its own RPC timeout when the app closes)."""
        self.stop.set()
        self.thread.join(2)
        for conn in self.held:
            conn.close()
        self.server.close()


@pytest.fixture
def hung_chain() -> Iterator[HungNode]:
    node = HungNode()
    yield node
    node.release()


async def test_a_hung_chain_ends_at_the_pass_deadline(tmp_path: Path, hung_chain: HungNode) -> None:
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY, inventory)
    settings = inventory / "settings.yaml"
    text = settings.read_text().replace("ws://127.0.0.1:9944", f"ws://127.0.0.1:{hung_chain.port}")
    text = text.replace(
        "    interval_seconds: 30\n", "    interval_seconds: 30\n    pass_timeout_seconds: 1.5\n"
    )
    settings.write_text(text)
    desired = load_inventory(inventory)
    assert desired.settings.loop.pass_timeout_seconds == 1.5
    source = LiveSource(inventory, desired, readonly=True)
    app = PoolkeeperApp(source, readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        assert app.loop_state == "observing"
        assert "of 1.5 s deadline" in summary(app)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.loop_state == "error"
        assert app.last_error is not None and "deadline of 1.5s" in app.last_error
        header = summary(app)
        assert "last pass failed: pass exceeded its deadline of 1.5s" in header
        assert app.workers_table.row_count == len(desired.workers), "rows listed regardless"
        hung_chain.release()


class OldThenFresh(SnapshotSource):
    """Live-like data (not a saved snapshot) whose observation is ten minutes old."""

    static = False
    interval = 30.0


async def test_old_data_dims_every_row_until_a_fresh_frame(
    desired: Desired, observed: Observed
) -> None:
    now = datetime.now(UTC)
    old = observed.model_copy(update={"read_at": now - timedelta(minutes=10)})
    source = OldThenFresh(desired, old)
    app = PoolkeeperApp(source, readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        styles = app.workers_table.row_styles
        assert app.data_stale
        assert set(styles) == {w.name for w in desired.workers}
        assert all(s.dim for s in styles.values())
        fresh = observed.model_copy(
            update={
                "read_at": now,
                "pruntimes": {
                    k: p.model_copy(update={"read_at": now}) for k, p in observed.pruntimes.items()
                },
            }
        )
        source.replace(fresh)
        app.action_refresh()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.data_stale
        assert not any(s.dim for s in app.workers_table.row_styles.values())
        assert STALE_STYLE.dim
