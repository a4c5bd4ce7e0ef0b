"""Safe apply, continued: the confirmation shows fees and the stake moved; while the
apply runs the header counts done/total and each worker's row says where its action is;
the frame shown afterwards is the one observed after the apply."""

from __future__ import annotations

import asyncio

from poolkeeper.model.actions import Action, ActionKind
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed
from poolkeeper_tui._data import Frame, ResultHook, SnapshotSource
from poolkeeper_tui._screens import ConfirmApply
from poolkeeper_tui.app import PoolkeeperApp

from .conftest import svg_text

PHA = 10**12


def start(worker: str, stake: int, fee: int) -> Action:
    return Action(
        id=f"start_computing:worker/{worker}",
        kind=ActionKind.START_COMPUTING,
        target=f"worker/{worker}",
        reason="test: ready",
        pool="pool-a",
        stake_change=stake,
        fee=fee,
    )


def reclaim(worker: str, stake: int, fee: int) -> Action:
    return Action(
        id=f"reclaim_pool_worker:worker/{worker}",
        kind=ActionKind.RECLAIM_WORKER,
        target=f"worker/{worker}",
        reason="test: cooled down",
        pool="pool-a",
        stake_change=-stake,
        fee=fee,
    )


class SteppedSource(SnapshotSource):
    """Applies the approved actions one result at a time, when the test says so."""

    def __init__(self, desired: Desired, observed: Observed) -> None:
        super().__init__(desired, observed)
        self.can_apply = True  # type: ignore[misc]
        self.label = "standalone"
        self.on_result: ResultHook | None = None
        self.actions: tuple[Action, ...] = (
            start("rack-a-02", 8000 * PHA, PHA // 100),
            reclaim("rack-a-03", 5000 * PHA, PHA // 100),
        )
        self.step = asyncio.Event()
        self.refreshes = 0

    async def refresh(self) -> Frame:
        self.refreshes += 1
        frame = await super().refresh()
        plan = frame.plan.model_copy(update={"actions": self.actions})
        return Frame(frame.desired, frame.observed, plan)

    async def apply_approved(self, approved: Frame) -> Frame:
        assert self.on_result is not None, "the app listens to results"
        for action, ok in zip(approved.plan.actions, (True, False), strict=True):
            await self.step.wait()
            self.step.clear()
            self.on_result(action.id, ok, None if ok else "no master secret for account owner")
        self.actions = ()  # what the chain now shows: nothing left to do
        return await self.refresh()  # observed again right after the apply


async def test_the_confirmation_shows_fees_and_the_stake_moved(
    desired: Desired, observed: Observed
) -> None:
    app = PoolkeeperApp(SteppedSource(desired, observed))
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmApply)
        text = svg_text(app.export_screenshot())
        assert "1 reclaim_pool_worker, 1 start_computing" in text
        assert "Estimated fees ≈ 0.02 PHA" in text
        assert "stake moved: locks 8000 PHA, releases 5000 PHA" in text
        await pilot.press("n")


async def test_progress_per_action_then_the_frame_observed_after_the_apply(
    desired: Desired, observed: Observed
) -> None:
    source = SteppedSource(desired, observed)
    app = PoolkeeperApp(source)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("y")

        def summary() -> str:
            return str(app.query_one("#summary").render())

        async def until(check: object) -> None:
            for _ in range(200):
                await pilot.pause(0.02)
                if callable(check) and check():
                    return
            raise AssertionError(summary())

        table = app.workers_table
        await until(lambda: "applying: 0/2 done" in summary())
        assert table.get_cell("rack-a-02", "message") == "applying start_computing…"
        assert table.get_cell("rack-a-03", "message") == "applying reclaim_pool_worker…"
        source.step.set()
        await until(lambda: "applying: 1/2 done" in summary())
        assert table.get_cell("rack-a-02", "message") == "start_computing: done"
        assert table.get_cell("rack-a-03", "message") == "applying reclaim_pool_worker…"
        refreshes = source.refreshes
        source.step.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "last apply: 2/2 done, 1 failed" in summary()
        assert source.refreshes == refreshes + 1, "observed again right after the apply"
        assert "plan: 0 action(s)" in summary(), "the header shows the frame after the apply"
        # The rows now show the new observation, not the notes of the apply.
        assert "applying" not in table.get_cell("rack-a-03", "message")
