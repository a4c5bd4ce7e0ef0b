"""A plan: what to do next, what is awaited, what needs a human.

Produced by ``poolkeeper.plan.plan_for`` and consumed by renderers and the executor.
Actions carry everything the executor needs (pid, pubkey, stake) as plain values, plus
a stable ``id`` so a journal can recognise the same action across passes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict

from poolkeeper.model.trusted import SharedFieldsSet


class _Frozen(SharedFieldsSet):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ActionKind(StrEnum):
    """Every kind of action the planner can ask for."""

    START_RELAY = "start_relay"
    STOP_RELAY = "stop_relay"
    REGISTER_WORKER = "register_worker"
    CREATE_POOL = "create_pool"
    ADD_WORKER = "add_worker"
    START_COMPUTING = "start_computing"
    RESTART_COMPUTING = "restart_computing"
    STOP_COMPUTING = "stop_computing"
    RECLAIM_WORKER = "reclaim_pool_worker"
    REMOVE_WORKER = "remove_worker"
    DERIVE_ACCOUNT = "derive_account"
    TOP_UP = "top_up"
    SET_POOL_CAP = "set_cap"
    SET_POOL_COMMISSION = "set_payout_pref"


class Symbol(StrEnum):
    """Plan-line symbols, Terraform style."""

    CREATE = "+"
    CHANGE = "~"
    REMOVE = "-"
    ALERT = "!"


SYMBOL_OF: dict[ActionKind, Symbol] = {
    ActionKind.START_RELAY: Symbol.CREATE,
    ActionKind.STOP_RELAY: Symbol.REMOVE,
    ActionKind.REGISTER_WORKER: Symbol.CREATE,
    ActionKind.CREATE_POOL: Symbol.CREATE,
    ActionKind.ADD_WORKER: Symbol.CREATE,
    ActionKind.START_COMPUTING: Symbol.CREATE,
    ActionKind.RESTART_COMPUTING: Symbol.CHANGE,
    ActionKind.STOP_COMPUTING: Symbol.REMOVE,
    ActionKind.RECLAIM_WORKER: Symbol.CHANGE,
    ActionKind.REMOVE_WORKER: Symbol.REMOVE,
    ActionKind.DERIVE_ACCOUNT: Symbol.CREATE,
    ActionKind.TOP_UP: Symbol.CHANGE,
    ActionKind.SET_POOL_CAP: Symbol.CHANGE,
    ActionKind.SET_POOL_COMMISSION: Symbol.CHANGE,
}

DESTRUCTIVE_KINDS = frozenset(
    {ActionKind.STOP_COMPUTING, ActionKind.REMOVE_WORKER, ActionKind.STOP_RELAY}
)
"""Kinds that take a worker away from computing or out of its pool."""


class Action(_Frozen):
    """One step toward the desired state."""

    id: str
    """Stable identity, ``<kind>:<target>``: the same action in two passes has the same id."""
    kind: ActionKind
    target: str
    """``worker/<name>``, ``pool/<name>`` or ``account/<name>``."""
    reason: str
    pool: str | None = None
    """Pool name the action belongs to (for grouping and per-pool batching)."""
    pid: int | None = None
    worker: str | None = None
    pubkey: str | None = None
    """Worker public key, lowercase hex without 0x."""
    amount: int | None = None
    """Stake or transfer amount, or a pool's cap, in plancks; a commission in Permill."""
    signer: str | None = None
    """Account name that signs; ``None`` for local actions (relays, derivation)."""
    proxy_for: str | None = None
    """Account name of the real account when ``signer`` acts through ``Proxy.proxy``."""
    destination: str | None = None
    """Transfer destination address (top-ups)."""
    prerequisites: tuple[str, ...] = ()
    """Ids of actions that must succeed first (in this plan)."""
    destructive: bool = False
    stake_change: int | None = None
    """Stake this action locks (> 0, start/restart) or releases (< 0, reclaim), plancks."""
    fee: int | None = None
    """Estimated fee in plancks: this call's share of its batch's fee estimate (live plans)."""

    @property
    def symbol(self) -> Symbol:
        return SYMBOL_OF[self.kind]

    def effect_differences(self, other: Action) -> list[str]:
        """How ``other`` would do something else than this action on chain, field by field
        (``amount 1200 → 1300``); empty when both have the same effect.

        The reason is words for people, and prerequisites name whatever else one plan holds
        (a top-up that became due meanwhile): neither changes what the call does."""
        mine = self.model_dump(exclude=_NOT_EFFECT)
        theirs = other.model_dump(exclude=_NOT_EFFECT)
        return [f"{k} {mine[k]} → {theirs[k]}" for k in mine if mine[k] != theirs[k]]


_NOT_EFFECT: set[str] = {"reason", "prerequisites", "stake_change", "fee"}
"""Words, ordering and estimates: none of them changes what the call does."""


class EtaBasis(StrEnum):
    CHAIN = "chain"
    ESTIMATE = "estimate"


class Wait(_Frozen):
    """Something the world must do before the next action can happen."""

    target: str
    awaiting: str
    """e.g. ``cool-down``, ``sync``, ``initial score``."""
    reason: str
    pool: str | None = None
    eta_seconds: int | None = None
    """Seconds from the observation (the chain's clock) until the wait should end; None
    when no estimate is possible (``reason`` says what is missing)."""
    ends_at: datetime | None = None
    """``eta_seconds`` as an absolute UTC time, on the chain's clock."""
    eta_basis: EtaBasis | None = None
    """How ``eta_seconds`` was obtained: ``chain`` (chain state and constants, e.g. a
    cool-down's end) or ``estimate`` (measured rates: sync, block time)."""


class Severity(StrEnum):
    WARN = "warn"
    CRITICAL = "critical"


class Alert(_Frozen):
    """Needs a human: poolkeeper will not act on it by itself."""

    target: str
    severity: Severity
    message: str
    pool: str | None = None
    name: str | None = None
    """A stable name for alerts that have one (``FundingRunwayLow``), for rules and metrics."""


class Drift(_Frozen):
    """The world differs from the inventory in a way poolkeeper reports but does not fix."""

    target: str
    message: str
    pool: str | None = None


class Plan(_Frozen):
    """The ordered actions, waits, alerts and drift of one planning pass."""

    format_version: int = 1
    actions: tuple[Action, ...] = ()
    waits: tuple[Wait, ...] = ()
    alerts: tuple[Alert, ...] = ()
    drift: tuple[Drift, ...] = ()
    block: int | None = None
    """Best block of the observation the plan was made from."""
    warnings: tuple[str, ...] = ()
    """Notes about the plan itself, e.g. that ``--target`` limited it."""

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def count(self, symbol: Symbol) -> int:
        return sum(1 for a in self.actions if a.symbol is symbol)

    @property
    def stake_locked(self) -> int:
        """Plancks of stake the plan's actions lock (start, restart with more)."""
        return sum(a.stake_change for a in self.actions if a.stake_change and a.stake_change > 0)

    @property
    def stake_released(self) -> int:
        """Plancks of stake the plan's actions release (reclaim, restart with less)."""
        return -sum(a.stake_change for a in self.actions if a.stake_change and a.stake_change < 0)

    @property
    def fee_total(self) -> int | None:
        """Sum of the estimated fees; ``None`` when no action carries an estimate."""
        fees = [a.fee for a in self.actions if a.fee is not None]
        return sum(fees) if fees else None
