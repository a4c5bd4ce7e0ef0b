"""What each action does to stake: locked by start/restart, released by reclaim.

An operator approving a plan wants to see the money it moves, not only the calls. The
stake change follows from the action and the observed chain alone (pure); fees need
the node and are filled in later by the live front end.
"""

from __future__ import annotations

from poolkeeper.model.actions import Action, ActionKind
from poolkeeper.model.observed import Observed


def with_stake_changes(actions: list[Action], observed: Observed) -> list[Action]:
    """``actions`` with ``stake_change`` set where the action locks or releases stake."""
    out = []
    for action in actions:
        change = _stake_change(action, observed)
        out.append(action if change is None else action.model_copy(update={"stake_change": change}))
    return out


def _stake_change(action: Action, observed: Observed) -> int | None:
    chain = observed.chain_workers.get(action.pubkey) if action.pubkey else None
    current = chain.stake if chain is not None and chain.stake is not None else 0
    if action.kind is ActionKind.START_COMPUTING and action.amount is not None:
        return action.amount
    if action.kind is ActionKind.RESTART_COMPUTING and action.amount is not None:
        return action.amount - current
    if action.kind is ActionKind.RECLAIM_WORKER and current:
        return -current
    return None
