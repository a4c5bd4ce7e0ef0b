"""``plan_for``: one pure, deterministic pass from (Desired, Observed, policy) to a Plan.

Order of the pass: accounts (addresses are needed by everything else), pools (their
checks gate their workers), workers by pool then name (they share the pool's free
stake and slots, consumed in that fixed order), then chain workers in our pools that
the inventory does not know. "Now" is the chain's clock, ``observed.head.timestamp_ms``:
no wall clock is read, so the same inputs always give the same plan.
"""

from __future__ import annotations

from poolkeeper.model.actions import Plan
from poolkeeper.model.desired import Desired, WorkerSpec
from poolkeeper.model.observed import Observed
from poolkeeper.plan._accounts import plan_accounts
from poolkeeper.plan._context import Context
from poolkeeper.plan._costs import with_stake_changes
from poolkeeper.plan._policy import PlanPolicy
from poolkeeper.plan._pools import plan_pools
from poolkeeper.plan._targets import limit_to_targets
from poolkeeper.plan._workers import plan_unknown_workers, plan_worker


def _worker_order(worker: WorkerSpec) -> tuple[str, str]:
    return (worker.pool or "", worker.name)


def plan_for(desired: Desired, observed: Observed, policy: PlanPolicy | None = None) -> Plan:
    """The next steps from ``observed`` toward ``desired``, within ``policy``."""
    policy = policy or PlanPolicy()
    ctx = Context(
        desired=desired,
        observed=observed,
        policy=policy,
        now_seconds=observed.head.timestamp_ms // 1000,
    )
    plan_accounts(ctx)
    plan_pools(ctx)
    for worker in sorted(desired.workers, key=_worker_order):
        plan_worker(ctx, worker)
    plan_unknown_workers(ctx)
    actions, waits, alerts, drift = ctx.actions, ctx.waits, ctx.alerts, ctx.drift
    actions = with_stake_changes(actions, observed)
    warnings: list[str] = []
    if policy.targets:
        actions, waits, alerts, drift, warnings = limit_to_targets(
            desired, policy.targets, actions=actions, waits=waits, alerts=alerts, drift=drift
        )
    return Plan(
        actions=tuple(actions),
        waits=tuple(waits),
        alerts=tuple(alerts),
        drift=tuple(drift),
        block=observed.head.best_number,
        warnings=tuple(warnings),
    )
