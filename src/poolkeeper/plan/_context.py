"""Shared state of one planning pass: the joined inputs and the growing output.

The planner's parts (accounts, pools, workers, drift) read the same joins and
append to the same lists; keeping them here lets each part stay a plain function.
Budgets that several workers draw on in one pass (a pool's free stake and worker
slots, a funding account's spendable balance) live here too, consumed in a fixed
order so the result never depends on dict ordering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from poolkeeper.model.actions import (
    DESTRUCTIVE_KINDS,
    Action,
    ActionKind,
    Alert,
    Drift,
    EtaBasis,
    Severity,
    Wait,
)
from poolkeeper.model.desired import Desired, PoolSpec
from poolkeeper.model.observed import Observed, ObservedPool
from poolkeeper.plan._policy import PlanPolicy

MAX_POOL_WORKERS = 200
"""``PhalaStakePoolv2.MaxPoolWorkers``."""


@dataclass
class PoolRun:
    """One inventory pool during a pass: its chain twin and what is left to spend."""

    spec: PoolSpec
    observed: ObservedPool | None
    owner_address: str | None
    blocked: bool = False
    """True when no transaction of this pool can succeed (alerted once at pool level)."""
    free_stake: int = 0
    slots: int = MAX_POOL_WORKERS
    prerequisites: tuple[str, ...] = ()
    """Actions every transaction of this pool depends on (derivation of its accounts)."""

    @property
    def pid(self) -> int | None:
        return self.spec.pid

    @property
    def target(self) -> str:
        return f"pool/{self.spec.name}"


@dataclass
class Context:
    """Inputs joined once, plus the output of the pass."""

    desired: Desired
    observed: Observed
    policy: PlanPolicy
    now_seconds: int
    address_of: dict[str, str | None] = field(default_factory=dict)
    """Account name to SS58 address (None while not derived)."""
    derive_ids: dict[str, str] = field(default_factory=dict)
    """Account name to the id of its DERIVE_ACCOUNT action in this plan."""
    pools: dict[str, PoolRun] = field(default_factory=dict)
    pools_by_pid: dict[int, PoolRun] = field(default_factory=dict)
    claimed_pubkeys: set[str] = field(default_factory=set)
    """Public keys the inventory's workers resolved to."""
    unresolved_workers: int = 0
    """Inventory workers whose public key is unknown (pRuntime unreachable, none pinned)."""
    actions: list[Action] = field(default_factory=list)
    waits: list[Wait] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)

    def add_action(self, action: Action) -> Action:
        self.actions.append(action)
        return action

    def wait(
        self,
        target: str,
        awaiting: str,
        reason: str,
        pool: str | None,
        eta_seconds: int | None = None,
        *,
        basis: EtaBasis | None = None,
    ) -> None:
        """A wait; with an ETA, its end on the chain's clock (``now_seconds``) too."""
        ends_at = None
        if eta_seconds is not None and self.now_seconds > 0:
            ends_at = datetime.fromtimestamp(self.now_seconds + eta_seconds, UTC)
        self.waits.append(
            Wait(
                target=target,
                awaiting=awaiting,
                reason=reason,
                pool=pool,
                eta_seconds=eta_seconds,
                ends_at=ends_at,
                eta_basis=basis if eta_seconds is not None else None,
            )
        )

    def alert(
        self,
        target: str,
        message: str,
        pool: str | None,
        *,
        critical: bool = False,
        name: str | None = None,
    ) -> None:
        severity = Severity.CRITICAL if critical else Severity.WARN
        self.alerts.append(
            Alert(target=target, severity=severity, message=message, pool=pool, name=name)
        )

    def report_drift(self, target: str, message: str, pool: str | None) -> None:
        self.drift.append(Drift(target=target, message=message, pool=pool))


def action_id(kind: ActionKind, target: str) -> str:
    """The stable identity of an action: ``<kind>:<target>``."""
    return f"{kind.value}:{target}"


def make_action(
    kind: ActionKind,
    target: str,
    reason: str,
    *,
    prerequisites: tuple[str, ...] = (),
    **fields: object,
) -> Action:
    """Build an action with its id and destructive flag filled in from its kind."""
    unique: list[str] = []
    for prerequisite in prerequisites:
        if prerequisite and prerequisite not in unique:
            unique.append(prerequisite)
    data: dict[str, object] = {
        "id": action_id(kind, target),
        "kind": kind,
        "target": target,
        "reason": reason,
        "prerequisites": tuple(unique),
        "destructive": kind in DESTRUCTIVE_KINDS,
    }
    data.update(fields)
    return Action.model_validate(data)


def normalise_pubkey(text: str) -> str:
    """Worker public keys are compared as lowercase hex without ``0x``."""
    lowered = text.strip().lower()
    return lowered[2:] if lowered.startswith("0x") else lowered
