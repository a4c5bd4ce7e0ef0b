"""The live drill-down: conditions and the transitions seen across passes, the worker's
extrinsics from a written audit log, and the tail of its relay's log file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from textual.widgets import Static

from poolkeeper.apply.audit import AuditCall, AuditEntry, AuditLog
from poolkeeper.model.conditions import Conditions, derive_conditions
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed, PRuntimeInfo
from poolkeeper_tui._data import Frame, SnapshotSource
from poolkeeper_tui._screens import DrillDownScreen
from poolkeeper_tui.app import PoolkeeperApp

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class LoopLikeSource(SnapshotSource):
    """Frames carrying conditions derived pass after pass, as the loop keeps them."""

    static = False

    def __init__(self, desired: Desired, observed: Observed) -> None:
        super().__init__(desired, observed)
        self.conditions: Conditions | None = None

    async def refresh(self) -> Frame:
        frame = await super().refresh()
        self.conditions = derive_conditions(
            self.desired, self.observed, self.conditions, self.observed.read_at
        )
        return Frame(frame.desired, frame.observed, frame.plan, conditions=self.conditions)


def write_records(state_dir: Path) -> None:
    """Two extrinsics in the audit log (one touches rack-a-01) and a relay log."""
    log = AuditLog(state_dir / "audit.jsonl")
    log.record(
        AuditEntry(
            extrinsic_hash="0xaaa1",
            signer_address="5Owner",
            signer_name="owner",
            nonce=7,
            status="included",
            block_number=42,
            calls=(
                AuditCall(
                    "add_worker:rack-a-01", "PhalaStakePoolv2.add_worker", "rack-a-01", ok=True
                ),
                AuditCall(
                    "add_worker:rack-a-02", "PhalaStakePoolv2.add_worker", "rack-a-02", ok=True
                ),
            ),
            fee=10**10,
            ts=T0,
        )
    )
    log.record(
        AuditEntry(
            extrinsic_hash="0xbbb2",
            signer_address="5Owner",
            nonce=8,
            status="included",
            calls=(AuditCall("start:rack-b-01", "PhalaStakePoolv2.start_computing", "rack-b-01"),),
            ts=T0 + timedelta(minutes=1),
        )
    )
    relays = state_dir / "relays"
    relays.mkdir()
    lines = [f"pherry: synced block {n}" for n in range(100)]
    (relays / "rack-a-01.log").write_text("\n".join(lines) + "\n", encoding="utf-8")


def live_text(app: PoolkeeperApp) -> str:
    static = app.screen.query_one("#live", Static)
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(static.content)
    return console.export_text()


async def test_drill_down_shows_transitions_extrinsics_and_relay_tail(
    desired: Desired, observed: Observed, tmp_path: Path
) -> None:
    write_records(tmp_path)
    source = LoopLikeSource(desired, observed)
    source.state_dir = tmp_path
    app = PoolkeeperApp(source, readonly=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await pilot.press("enter")  # rack-a-01, the first row
        await pilot.pause()
        assert isinstance(app.screen, DrillDownScreen) and app.screen.key == "rack-a-01"
        text = live_text(app)
        assert "NotInitialized" in text
        assert "0xaaa1" in text and "add_worker:rack-a-01" in text
        assert "0xbbb2" not in text, "another worker's extrinsic"
        assert "add_worker:rack-a-02" not in text
        assert "(and 1 call(s) for other workers)" in text
        assert "pherry: synced block 99" in text and "pherry: synced block 80" not in text

        # A second pass: rack-a-01's pRuntime synced; the drill-down follows it and keeps
        # the transition it saw before.
        endpoint = desired.workers_by_name["rack-a-01"].endpoint
        synced = observed.pruntimes[endpoint].model_copy(
            update={"info": PRuntimeInfo(initialized=True, blocknum=10, headernum=10)}
        )
        source.replace(
            observed.model_copy(
                update={
                    "read_at": T0 + timedelta(minutes=5),
                    "pruntimes": {**observed.pruntimes, endpoint: synced},
                }
            )
        )
        app.action_refresh()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, DrillDownScreen)
        text = live_text(app)
        history = app.condition_history.transitions("rack-a-01")
        synced_seen = [(t.status, t.reason) for t in history if t.type == "Synced"]
        assert synced_seen == [("False", "NotInitialized"), ("True", "Ok")]
        assert "2026-01-01 00:05:00Z" in text, "when Synced turned True"
        assert "at block 10" in text


async def test_drill_down_derives_conditions_when_the_source_gives_none(
    desired: Desired, observed: Observed
) -> None:
    app = PoolkeeperApp(SnapshotSource(desired, observed), readonly=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        text = live_text(app)
        assert "Synced" in text and "NotInitialized" in text
        assert "state directory unknown" in text
        assert "no relay log file" in text
