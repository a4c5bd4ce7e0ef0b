"""A worker's phase, derived from observations, never stored.

PRB v2 kept a stored state machine and workers stalled silently in its error state;
here the phase is a pure function of what the chain and the pRuntime say right now,
so it can never disagree with them for longer than one observation pass.
"""

from __future__ import annotations

from enum import StrEnum

from poolkeeper.model.observed import (
    ChainHead,
    ChainWorker,
    PRuntimeObservation,
    SessionState,
)

SYNC_TOLERANCE_BLOCKS = 8
"""A pRuntime this many blocks behind the finalized head still counts as synced (pherry's
own threshold: a relay at the tip trails finality by the length of its idle sleep)."""


class WorkerPhase(StrEnum):
    """Where a worker stands on the road from a bare machine to computing."""

    UNREACHABLE = "Unreachable"
    UNINITIALIZED = "Uninitialized"
    SYNCING = "Syncing"
    SYNCED = "Synced"
    REGISTERED = "Registered"
    SCORED = "Scored"
    READY = "Ready"
    """In a pool, session Ready, not computing."""
    COMPUTING = "Computing"
    UNRESPONSIVE = "Unresponsive"
    COOLING_DOWN = "CoolingDown"


def is_synced(pruntime: PRuntimeObservation | None, head: ChainHead) -> bool:
    """Whether the pRuntime has dispatched blocks up to (about) the finalized head."""
    info = pruntime.info if pruntime else None
    if info is None or not info.initialized:
        return False
    return info.blocknum + SYNC_TOLERANCE_BLOCKS > head.finalized_number


def phase_of(
    pruntime: PRuntimeObservation | None,
    chain: ChainWorker | None,
    head: ChainHead,
) -> WorkerPhase:
    """Derive the phase. On-chain session states win: they hold whatever the machine does."""
    if chain is not None and chain.session_state is not None:
        return {
            SessionState.READY: WorkerPhase.READY,
            SessionState.WORKER_IDLE: WorkerPhase.COMPUTING,
            SessionState.WORKER_UNRESPONSIVE: WorkerPhase.UNRESPONSIVE,
            SessionState.WORKER_COOLING_DOWN: WorkerPhase.COOLING_DOWN,
        }[chain.session_state]
    info = pruntime.info if pruntime else None
    if info is None:
        return WorkerPhase.UNREACHABLE
    if not info.initialized:
        return WorkerPhase.UNINITIALIZED
    if not is_synced(pruntime, head):
        return WorkerPhase.SYNCING
    if chain is None:
        return WorkerPhase.SYNCED
    if chain.initial_score is None:
        return WorkerPhase.REGISTERED
    return WorkerPhase.SCORED
