"""The TUI attached to a running loop's control API (a real Unix socket, a fake loop
behind it), read-only observation without one, the standalone quit question, reloads,
the stale-inventory refusal and the apply confirmation's safety."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from poolkeeper.apply.executor import ActionResult
from poolkeeper.cli._control import ControlService
from poolkeeper.inventory import load_inventory
from poolkeeper.loop import PassResult
from poolkeeper.model.actions import Action, ActionKind, Plan
from poolkeeper.model.conditions import Conditions, derive_conditions
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed, PRuntimeInfo
from poolkeeper.observe.snapshot import load_snapshot
from poolkeeper.plan import PlanPolicy
from poolkeeper_tui._data import AttachedSource, Frame, LiveSource, SnapshotSource
from poolkeeper_tui._screens import ConfirmApply, ConfirmQuit, DrillDownScreen
from poolkeeper_tui.app import PoolkeeperApp, build_app, run_tui
from tests.unit.control.fake_loop import FakeReconciler

from .conftest import INVENTORY, SNAPSHOT, svg_text
from .test_app import log_lines, row_keys


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    target = tmp_path / "inv"
    shutil.copytree(INVENTORY, target)
    return target


def forbid_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Attached, nothing may build a reconciler, a relay supervisor or a live source."""

    def forbidden(*_: Any, **__: Any) -> None:
        raise AssertionError("the attached TUI built a reconciler or relays")

    monkeypatch.setattr("poolkeeper.loop.Reconciler.__init__", forbidden)
    monkeypatch.setattr("poolkeeper.relay.supervisor.RelaySupervisor.__init__", forbidden)
    monkeypatch.setattr("poolkeeper.relay.worker.WorkerRelay.__init__", forbidden)
    monkeypatch.setattr("poolkeeper_tui._data.LiveSource.__init__", forbidden)


async def wait_until(check: Any, seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


class ApplyingFake(FakeReconciler):
    """A fake loop whose apply passes report a result per approved action (the last fails)."""

    async def reconcile_once(
        self, policy: PlanPolicy, *, execute: bool = True, only: Plan | None = None
    ) -> PassResult:
        result = await super().reconcile_once(policy, execute=execute, only=only)
        if only is not None:
            ids = [a.id for a in only.actions]
            result.results = [ActionResult(i, True) for i in ids[:-1]] + [
                ActionResult(ids[-1], False, "no master secret: owner cannot sign")
            ]
        return result


async def test_attached_tui_shows_the_stream_sends_requests_and_starts_no_relays(
    inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_the_loop(monkeypatch)
    desired = load_inventory(inventory)
    fake = ApplyingFake(desired, load_snapshot(SNAPSHOT))
    service = ControlService(fake, PlanPolicy(), inventory)  # type: ignore[arg-type]
    await service.start()
    try:
        service.publish_pass(await fake.reconcile_once(PlanPolicy()))
        app = build_app([str(inventory)])
        assert isinstance(app.source, AttachedSource)
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_until(lambda: app.frame is not None)
            assert len(row_keys(app)) == len(desired.workers)
            summary = str(app.query_one("#summary").render())
            assert "attached to `poolkeeper run` (pid" in summary
            assert "loop: attached (" in summary
            assert app.workers_table.get_cell("rack-a-01", "phase") == "Uninitialized"
            # A pass streamed by the loop updates the row.
            endpoint = desired.workers_by_name["rack-a-01"].endpoint
            synced = fake.observed.pruntimes[endpoint].model_copy(
                update={"info": PRuntimeInfo(initialized=True, blocknum=10, headernum=10)}
            )
            fake.observed = fake.observed.model_copy(
                update={"pruntimes": {**fake.observed.pruntimes, endpoint: synced}}
            )
            service.publish_pass(await fake.reconcile_once(PlanPolicy()))
            await wait_until(lambda: app.workers_table.get_cell("rack-a-01", "phase") == "Synced")
            # r: the loop reloads the inventory.
            await pilot.press("r")
            await wait_until(lambda: bool(fake.adopted))
            # a, y: the loop applies the plan shown, then observes again.
            before = len(fake.passes)
            await pilot.press("a")
            await wait_until(lambda: isinstance(app.screen, ConfirmApply))
            await pilot.press("y")
            await wait_until(lambda: any(only is not None for _, only in fake.passes[before:]))
            await wait_until(lambda: not app._busy)  # the stream worker never completes
            applied = [only for execute, only in fake.passes[before:] if only is not None]
            assert [a.id for a in applied[0].actions] == [
                a.id
                for a in app.frame.plan.actions  # type: ignore[union-attr]
            ]
            assert fake.passes[-1] == (False, None), "observed again after the apply"
            total = len(applied[0].actions)
            await wait_until(
                lambda: (
                    f"last apply: {total}/{total} done, 1 failed"
                    in str(app.query_one("#summary").render())
                )
            )
    finally:
        await service.close()


async def test_without_a_running_loop_the_tui_observes_read_only(inventory: Path) -> None:
    app = build_app([str(inventory)])
    try:
        assert isinstance(app.source, LiveSource)
        assert app.readonly and not app.source.can_apply
        assert not app.standalone
        assert app.notice is not None and "no `poolkeeper run` serves" in app.notice
        assert "--standalone" in app.notice
    finally:
        await app.source.close()


async def test_standalone_is_refused_while_a_run_serves_the_state_dir(
    inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desired = load_inventory(inventory)
    fake = FakeReconciler(desired, load_snapshot(SNAPSHOT))
    service = ControlService(fake, PlanPolicy(), inventory)  # type: ignore[arg-type]
    await service.start()
    try:
        assert run_tui([str(inventory), "--standalone"]) == 1
        assert "serves" in capsys.readouterr().err
    finally:
        await service.close()


class StandaloneFake(SnapshotSource):
    """A standalone source: relays running, reloads and an inventory that may change."""

    def __init__(self, desired: Desired, observed: Observed, relays: int) -> None:
        super().__init__(desired, observed)
        self.can_apply = True
        self.label = "standalone"
        self.relays = relays
        self.reloads = 0
        self.applied = 0
        self.changed = False
        self.secret_loaded = True

    def relays_running(self) -> int:
        return self.relays

    def inventory_changed(self) -> bool:
        return self.changed

    async def reload(self) -> Frame:
        self.reloads += 1
        self.changed = False
        return await self.refresh()

    async def apply(self) -> Frame:
        self.applied += 1
        return await self.refresh()


@pytest.mark.parametrize(("answer", "running"), [("n", True), ("y", False)])
async def test_quitting_standalone_with_relays_asks_first(
    desired: Desired, observed: Observed, answer: str, running: bool
) -> None:
    app = PoolkeeperApp(StandaloneFake(desired, observed, relays=3), standalone=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmQuit)
        assert app.screen.focused is not None and app.screen.focused.id == "no"
        assert "Quit and stop 3 relay(s)?" in svg_text(app.export_screenshot())
        await pilot.press(answer)
        await pilot.pause()
        assert app.is_running is running


async def test_quitting_without_relays_does_not_ask(desired: Desired, observed: Observed) -> None:
    app = PoolkeeperApp(StandaloneFake(desired, observed, relays=0), standalone=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


def _stop(worker: str) -> Action:
    return Action(
        id=f"stop_computing:worker/{worker}",
        kind=ActionKind.STOP_COMPUTING,
        target=f"worker/{worker}",
        reason="test: state is idle",
        pool="pool-a",
        destructive=True,
    )


class ManyDestructive(StandaloneFake):
    async def refresh(self) -> Frame:
        frame = await super().refresh()
        extra = tuple(_stop(f"w{i:02}") for i in range(60))
        return Frame(
            frame.desired, frame.observed, frame.plan.model_copy(update={"actions": extra})
        )


async def test_the_confirmation_starts_on_cancel_scrolls_and_counts_per_kind(
    desired: Desired, observed: Observed
) -> None:
    source = ManyDestructive(desired, observed, relays=0)
    app = PoolkeeperApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConfirmApply)
        assert screen.focused is not None and screen.focused.id == "no"
        for button in ("#yes", "#no"):
            region = screen.query_one(button).region
            assert region.height > 0 and region.bottom <= 24, f"{button} on screen"
        scroll = screen.query_one("#confirm-scroll")
        assert scroll.max_scroll_y > 0, "60 destructive actions scroll"
        assert "60 stop_computing (destructive)" in svg_text(app.export_screenshot())
        await pilot.press("enter")  # on Cancel
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmApply)
        assert source.applied == 0


async def test_r_reloads_and_a_changed_inventory_refuses_apply(
    desired: Desired, observed: Observed
) -> None:
    source = ManyDestructive(desired, observed, relays=0)
    app = PoolkeeperApp(source)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await app.workers.wait_for_complete()
        assert source.reloads == 1
        assert "inventory reloaded" in " ".join(log_lines(app))
        source.changed = True
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmApply)
        assert "apply refused: the inventory changed on disk" in " ".join(log_lines(app))
        assert source.applied == 0


async def test_an_inventory_edit_reloads_a_standalone_tui(
    desired: Desired, observed: Observed, tmp_path: Path
) -> None:
    source = StandaloneFake(desired, observed, relays=0)
    app = PoolkeeperApp(source, standalone=True, watch=tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause(0.3)
        (tmp_path / "workers.yaml").write_text("workers: []\n")
        await wait_until(lambda: source.reloads >= 1, 15)


async def test_the_header_says_when_no_master_secret_is_loaded(
    desired: Desired, observed: Observed
) -> None:
    source = StandaloneFake(desired, observed, relays=0)
    source.secret_loaded = False
    app = PoolkeeperApp(source, standalone=True)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        assert "NO MASTER SECRET" in str(app.query_one("#summary").render())


async def test_the_header_shows_the_attached_runs_ha_ownership(
    inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_the_loop(monkeypatch)
    desired = load_inventory(inventory)
    fake = ApplyingFake(desired, load_snapshot(SNAPSHOT))
    service = ControlService(fake, PlanPolicy(), inventory)  # type: ignore[arg-type]
    owner = {
        "shard": "a",
        "identity": "host-1:4242",
        "state": "active",
        "owner": True,
        "since": 1_780_000_000.0,
        "lease_ttl_seconds": 9.5,
        "last_problem": None,
    }
    service.hub.publish_ha(owner)
    await service.start()
    try:
        service.publish_pass(await fake.reconcile_once(PlanPolicy()))
        app = build_app([str(inventory)])
        async with app.run_test(size=(160, 40)):
            await wait_until(lambda: app.frame is not None)

            def header() -> str:
                return str(app.query_one("#summary").render())

            await wait_until(lambda: "HA shard a: owner since 20:26:40Z, lease 9.5s" in header())
            lost = {**owner, "state": "fenced", "owner": False, "lease_ttl_seconds": 0.0}
            lost["last_problem"] = "renewal failed: timeout"
            service.hub.publish_ha(lost)
            await wait_until(lambda: "HA shard a: LEASE LOST (renewal failed: timeout)" in header())
            # A run holding two shards: a word per shard, red once one lease is lost.
            two: dict[str, object] = {**lost, "shard": "a,b", "state": "mixed"}
            two["shards"] = [{**owner, "shard": "a"}, {**lost, "shard": "b"}]
            service.hub.publish_ha(two)
            await wait_until(lambda: "HA shards: a owner, b fenced" in header())
    finally:
        await service.close()


class DigestFake(StandaloneFake):
    """Frames carry the digest of the inventory they were planned from."""

    digest = "one"

    async def refresh(self) -> Frame:
        frame = await super().refresh()
        return Frame(frame.desired, frame.observed, frame.plan, inventory_digest=self.digest)


async def test_apply_stops_when_the_inventory_changed_after_approval(
    desired: Desired, observed: Observed
) -> None:
    source = DigestFake(desired, observed, relays=0)
    app = PoolkeeperApp(source)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmApply)
        source.digest = "two"  # reloaded from an edited inventory meanwhile
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert source.applied == 0
        assert "the inventory changed since the plan you approved" in " ".join(log_lines(app))


class ConditionsFake(FakeReconciler):
    """A fake loop keeping conditions across passes with its own clock, as the loop does."""

    def __init__(self, desired: Desired, observed: Observed, clock: datetime) -> None:
        super().__init__(desired, observed)
        self.clock = clock
        self.conditions: Conditions | None = None

    async def reconcile_once(
        self, policy: PlanPolicy, *, execute: bool = True, only: Plan | None = None
    ) -> PassResult:
        result = await super().reconcile_once(policy, execute=execute, only=only)
        self.conditions = derive_conditions(
            self.desired, self.observed, self.conditions, self.clock
        )
        result.conditions = self.conditions
        return result


async def test_the_attached_drill_down_shows_the_loops_conditions_and_transitions(
    inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_drilldown_live import live_text

    forbid_the_loop(monkeypatch)
    monkeypatch.setattr(
        "poolkeeper_tui._detail.ConditionHistory.derive",
        lambda *_: pytest.fail("attached, the drill-down derived conditions itself"),
    )
    desired = load_inventory(inventory)
    loop_clock = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)  # not the observation's read_at
    fake = ConditionsFake(desired, load_snapshot(SNAPSHOT), loop_clock)
    service = ControlService(fake, PlanPolicy(), inventory)  # type: ignore[arg-type]
    await service.start()
    try:
        service.publish_pass(await fake.reconcile_once(PlanPolicy()))
        app = build_app([str(inventory)])
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_until(lambda: app.frame is not None)
            await pilot.press("enter")  # rack-a-01, the first row
            await wait_until(lambda: isinstance(app.screen, DrillDownScreen))
            text = live_text(app)
            assert "Synced" in text and "NotInitialized" in text
            assert "2026-03-04 05:06:07Z" in text, "the loop's transition time"
            # The loop sees rack-a-01 synced ten minutes later: the drill-down follows.
            endpoint = desired.workers_by_name["rack-a-01"].endpoint
            synced = fake.observed.pruntimes[endpoint].model_copy(
                update={"info": PRuntimeInfo(initialized=True, blocknum=10, headernum=10)}
            )
            fake.observed = fake.observed.model_copy(
                update={"pruntimes": {**fake.observed.pruntimes, endpoint: synced}}
            )
            fake.clock = loop_clock + timedelta(minutes=10)
            service.publish_pass(await fake.reconcile_once(PlanPolicy()))
            await wait_until(lambda: "2026-03-04 05:16:07Z" in live_text(app))
            history = app.condition_history.transitions("rack-a-01")
            assert [(t.status, t.reason) for t in history if t.type == "Synced"] == [
                ("False", "NotInitialized"),
                ("True", "Ok"),
            ]
            assert isinstance(app.screen, DrillDownScreen) and app.screen.key == "rack-a-01"
    finally:
        await service.close()


async def test_an_attached_pass_rebuilds_only_the_rows_the_loop_changed(
    inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_the_loop(monkeypatch)
    desired = load_inventory(inventory)
    fake = ConditionsFake(desired, load_snapshot(SNAPSHOT), datetime(2026, 3, 4, tzinfo=UTC))
    service = ControlService(fake, PlanPolicy(), inventory)  # type: ignore[arg-type]
    await service.start()
    try:
        service.publish_pass(await fake.reconcile_once(PlanPolicy()))
        app = build_app([str(inventory)])
        async with app.run_test(size=(160, 40)):
            await wait_until(lambda: app.frame is not None)
            service.publish_pass(await fake.reconcile_once(PlanPolicy()))  # nothing changed
            await wait_until(lambda: app._row_cache.changed == [])
            before = app.frame
            assert before is not None
            endpoint = desired.workers_by_name["rack-a-01"].endpoint
            synced = fake.observed.pruntimes[endpoint].model_copy(
                update={"info": PRuntimeInfo(initialized=True, blocknum=10, headernum=10)}
            )
            fake.observed = fake.observed.model_copy(
                update={"pruntimes": {**fake.observed.pruntimes, endpoint: synced}}
            )
            service.publish_pass(await fake.reconcile_once(PlanPolicy()))
            await wait_until(lambda: app.workers_table.get_cell("rack-a-01", "phase") == "Synced")
            assert app._row_cache.changed == ["rack-a-01"]
            after = app.frame
            assert after is not None and after.desired is before.desired
            other = desired.workers_by_name["rack-a-02"].endpoint
            assert after.observed.pruntimes[other] is before.observed.pruntimes[other]
    finally:
        await service.close()
