"""A fake ``Reconciler`` for the control API's tests (unit and TUI): passes recorded, the
plan made by the real planner from a fixed observation, no chain and no relays."""

from __future__ import annotations

from typing import Any

from poolkeeper.loop import PassResult
from poolkeeper.model.actions import Plan
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed
from poolkeeper.plan import PlanPolicy, plan_for


class FakeReconciler:
    """What ``ControlService`` uses of a ``Reconciler``: passes, desired, set_desired."""

    def __init__(self, desired: Desired, observed: Observed) -> None:
        self.desired = desired
        self.observed = observed
        self.secret_loaded = True
        self.on_pass_start: Any = None
        self.passes: list[tuple[bool, Plan | None]] = []
        self.adopted: list[Desired] = []

    async def reconcile_once(
        self, policy: PlanPolicy, *, execute: bool = True, only: Plan | None = None
    ) -> PassResult:
        if self.on_pass_start:
            self.on_pass_start(execute)
        self.passes.append((execute, only))
        return PassResult(self.observed, plan_for(self.desired, self.observed, policy))

    def set_desired(self, desired: Desired) -> None:
        self.adopted.append(desired)
        self.desired = desired
