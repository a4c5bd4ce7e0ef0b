"""``apply PLAN.json`` carried to completion: the saved actions and waits, within ``--wait``.

A saved plan is what the operator approved. One pass executes the saved chain actions
that are due; others become due only after their relay has synced, the worker has
registered or a cool-down has ended. Passes repeat (relays running) until every saved
chain action is done, failed or no longer coming, and every saved wait has ended, or
``--wait`` runs out. Only saved chain actions are ever executed (a fresh pass's other
actions are named, never applied), as ``reconcile_once(only=...)`` guarantees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from poolkeeper.loop import LOCAL_KINDS, PassResult, Reconciler
from poolkeeper.model.actions import Plan
from poolkeeper.plan import PlanPolicy


@dataclass
class SavedOutcome:
    """What a saved plan's run left undone, for the operator."""

    failed: set[str] = field(default_factory=set)
    not_coming: list[str] = field(default_factory=list)
    """Saved chain actions the chain no longer needs or allows (plan again)."""
    still_pending: list[str] = field(default_factory=list)
    """Saved chain actions not yet due when ``--wait`` ran out."""
    still_waiting: list[str] = field(default_factory=list)
    """Saved waits (``target: awaiting``) not ended when ``--wait`` ran out."""


async def complete_saved(
    rec: Reconciler,
    policy: PlanPolicy,
    plan: Plan,
    *,
    wait: float,
    on_pass: Callable[[PassResult], None],
    interval: float = 2.0,
) -> SavedOutcome:
    """Reconcile the saved ``plan`` to completion (see the module docstring)."""
    chain_ids = {a.id for a in plan.actions if a.kind not in LOCAL_KINDS}
    target_of = {a.id: a.target for a in plan.actions}
    saved_waits = {(w.target, w.awaiting) for w in plan.waits}
    done: set[str] = set()
    outcome = SavedOutcome()
    deadline = time.monotonic() + wait
    while True:
        result = await rec.reconcile_once(policy, only=plan)
        on_pass(result)
        for r in result.results:
            if r.action_id in chain_ids:
                (done if r.ok else outcome.failed).add(r.action_id)
        pending = chain_ids - done - outcome.failed
        fresh_ids = {a.id for a in result.plan.actions}
        waiting_targets = {w.target for w in result.plan.waits}
        coming = {i for i in pending if i in fresh_ids or target_of[i] in waiting_targets}
        waiting = saved_waits & {(w.target, w.awaiting) for w in result.plan.waits}
        out_of_time = time.monotonic() >= deadline
        if outcome.failed or (not coming and not waiting) or out_of_time:
            outcome.not_coming = sorted(pending - coming)
            outcome.still_pending = sorted(coming) if out_of_time else []
            outcome.still_waiting = sorted(f"{t}: {a}" for t, a in waiting) if out_of_time else []
            return outcome
        await asyncio.sleep(interval)
