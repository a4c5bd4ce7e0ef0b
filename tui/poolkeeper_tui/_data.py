"""Where the TUI's numbers come from, and how they become table rows.

The screens only ever see a ``Frame`` (inventory, observation, plan, pass messages).
A ``DataSource`` produces frames: ``SnapshotSource`` from a saved observation (offline
use and tests, never applies), ``LiveSource`` from the product's ``Reconciler`` (observes
with ``execute=False``; applies only when the user asks). Turning a frame into row
values is pure and lives here too, so it can be tested and benchmarked without Textual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from poolkeeper.model.actions import Action, Alert, Drift, Plan, Severity, Symbol, Wait
from poolkeeper.model.amounts import format_pha
from poolkeeper.model.desired import Desired, WorkerSpec
from poolkeeper.model.observed import ChainWorker, Observed, PRuntimeInfo, PRuntimeObservation
from poolkeeper.model.phase import phase_of
from poolkeeper.plan import PlanPolicy, plan_for

WORKER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("glyph", " "),
    ("name", "worker"),
    ("pool", "pool"),
    ("endpoint", "endpoint"),
    ("phase", "phase"),
    ("session", "chain state"),
    ("blocks", "pRuntime/final"),
    ("stake", "stake"),
    ("score", "score"),
    ("message", "last message"),
)
"""(column key, header label) of the worker table, in display order."""

GLYPH_MEANING = {
    "=": "converged",
    "~": "drifting (changes or waits pending)",
    "+": "to create",
    "-": "to remove",
    "!": "alert",
}


@dataclass(frozen=True)
class Frame:
    """One observation pass as the TUI shows it."""

    desired: Desired
    observed: Observed
    plan: Plan
    messages: tuple[str, ...] = ()
    """What happened in the pass that produced this frame (results, errors)."""


@dataclass
class WorkerItems:
    """The plan's lines about one worker."""

    actions: list[Action] = field(default_factory=list)
    waits: list[Wait] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)


def items_by_target(plan: Plan) -> dict[str, WorkerItems]:
    """The plan's actions, waits, alerts and drift grouped by target (``worker/<name>``...)."""
    grouped: dict[str, WorkerItems] = {}
    for action in plan.actions:
        grouped.setdefault(action.target, WorkerItems()).actions.append(action)
    for wait in plan.waits:
        grouped.setdefault(wait.target, WorkerItems()).waits.append(wait)
    for alert in plan.alerts:
        grouped.setdefault(alert.target, WorkerItems()).alerts.append(alert)
    for drift in plan.drift:
        grouped.setdefault(drift.target, WorkerItems()).drift.append(drift)
    return grouped


def glyph_of(items: WorkerItems | None) -> str:
    """``!`` alert, ``-`` removal, ``+`` creation, ``~`` other change/wait/drift, ``=`` none."""
    if items is None:
        return "="
    if items.alerts:
        return "!"
    symbols = {a.symbol for a in items.actions}
    if Symbol.REMOVE in symbols:
        return "-"
    if Symbol.CREATE in symbols:
        return "+"
    if symbols or items.waits or items.drift:
        return "~"
    return "="


def _last_message(prt: PRuntimeObservation | None, items: WorkerItems | None) -> str:
    if prt is not None and prt.error:
        return f"error: {prt.error}"
    if items is None:
        return ""
    if items.alerts:
        return items.alerts[0].message
    if items.actions:
        first = items.actions[0]
        return f"{first.kind.value}: {first.reason}"
    if items.waits:
        return f"waiting for {items.waits[0].awaiting}: {items.waits[0].reason}"
    if items.drift:
        return items.drift[0].message
    return ""


def join_worker(
    spec: WorkerSpec, observed: Observed
) -> tuple[PRuntimeObservation | None, ChainWorker | None]:
    """The pRuntime observation and the chain worker that belong to ``spec``."""
    prt = observed.pruntimes.get(spec.endpoint)
    info = prt.info if prt else None
    pubkey = (spec.pubkey or (info.public_key if info else None) or "").lower().removeprefix("0x")
    return prt, (observed.chain_workers.get(pubkey) if pubkey else None)


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def worker_rows(frame: Frame) -> dict[str, tuple[str, ...]]:
    """Row values by row key (the worker name), in ``WORKER_COLUMNS`` order.

    Workers the plan wants to remove that are not in the inventory (pruning) get a row
    keyed by their plan target, so a ``-`` is visible.
    """
    grouped = items_by_target(frame.plan)
    head = frame.observed.head
    rows: dict[str, tuple[str, ...]] = {}
    for spec in frame.desired.workers:
        prt, chain = join_worker(spec, frame.observed)
        info = prt.info if prt else None
        items = grouped.get(f"worker/{spec.name}")
        rows[spec.name] = (
            glyph_of(items),
            spec.name,
            spec.pool or "-",
            spec.endpoint,
            phase_of(prt, chain, head).value,
            chain.session_state.value if chain and chain.session_state else "-",
            f"{info.blocknum if info else '-'}/{head.finalized_number}",
            format_pha(chain.stake) if chain and chain.stake is not None else "-",
            _dash(chain.initial_score) if chain else _score(info),
            _last_message(prt, items),
        )
    for target, items in grouped.items():
        kind, _, name = target.partition("/")
        if kind != "worker" or name in frame.desired.workers_by_name:
            continue
        pool = next((a.pool for a in items.actions if a.pool), None)
        rows[target] = (
            glyph_of(items),
            name[:16],
            pool or "-",
            "(not in inventory)",
            "-",
            "-",
            "-",
            "-",
            "-",
            _last_message(None, items),
        )
    return rows


def _score(info: PRuntimeInfo | None) -> str:
    return str(info.score) if info and info.score else "-"


ACCOUNT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("level", "level"),
    ("name", "account"),
    ("role", "role"),
    ("address", "address"),
    ("free", "free"),
    ("warn", "warn below"),
    ("critical", "critical below"),
    ("message", "alert"),
)


def account_rows(frame: Frame) -> dict[str, tuple[str, ...]]:
    """Balances against thresholds, by account name."""
    grouped = items_by_target(frame.plan)
    settings = frame.desired.settings
    rows: dict[str, tuple[str, ...]] = {}
    for account in frame.desired.accounts:
        seen = frame.observed.accounts.get(account.address) if account.address else None
        warn = account.warn_below if account.warn_below is not None else settings.warn_below
        critical = (
            account.critical_below
            if account.critical_below is not None
            else settings.critical_below
        )
        items = grouped.get(f"account/{account.name}")
        alerts = items.alerts if items else []
        if alerts:
            critical_alert = any(a.severity is Severity.CRITICAL for a in alerts)
            level = "CRITICAL" if critical_alert else "WARN"
        elif seen is None:
            level = "?"
        elif seen.free < critical:
            level = "CRITICAL"
        elif seen.free < warn:
            level = "WARN"
        else:
            level = "ok"
        rows[account.name] = (
            level,
            account.name,
            account.role.value,
            account.address or "(not derived yet)",
            format_pha(seen.free) if seen else "-",
            format_pha(warn),
            format_pha(critical),
            alerts[0].message if alerts else _last_message(None, items),
        )
    return rows


def phase_counts(frame: Frame) -> dict[str, int]:
    """How many inventory workers are in each phase."""
    counts: dict[str, int] = {}
    for spec in frame.desired.workers:
        prt, chain = join_worker(spec, frame.observed)
        phase = phase_of(prt, chain, frame.observed.head).value
        counts[phase] = counts.get(phase, 0) + 1
    return counts


class DataSource(Protocol):
    """Produces frames; may apply the current plan when it is allowed to."""

    label: str
    can_apply: bool

    async def refresh(self) -> Frame: ...

    async def apply(self) -> Frame: ...

    async def close(self) -> None: ...


class SnapshotSource:
    """A saved observation: static unless a test (or a caller) replaces it."""

    can_apply = False

    def __init__(
        self, desired: Desired, observed: Observed, *, policy: PlanPolicy | None = None
    ) -> None:
        self.desired = desired
        self.observed = observed
        self.policy = policy or PlanPolicy()
        self.label = "snapshot"

    def replace(self, observed: Observed) -> None:
        """Use another observation from the next refresh on."""
        self.observed = observed

    async def refresh(self) -> Frame:
        return Frame(
            self.desired, self.observed, plan_for(self.desired, self.observed, self.policy)
        )

    async def apply(self) -> Frame:
        raise RuntimeError("a snapshot cannot be applied: start the TUI against the live chain")

    async def close(self) -> None:
        return None


class LiveSource:
    """The product's reconcile pass against the live chain and pRuntimes."""

    def __init__(
        self,
        directory: Path,
        desired: Desired,
        *,
        readonly: bool,
        policy: PlanPolicy | None = None,
    ) -> None:
        from poolkeeper._cli_live import make_reconciler

        self.progress: Callable[[str], None] | None = None
        """Where the reconciler's progress lines go (the app's event log)."""
        self.policy = policy or PlanPolicy()
        self.can_apply = not readonly
        self.label = "live" + (" (read-only)" if readonly else "")
        self.interval = desired.settings.loop.interval_seconds
        # need_keys=False: a missing master secret only matters when applying, and the
        # executor then says which account cannot sign.
        # A TUI that may apply is a writer: it holds the state dir lock (--readonly not).
        self._reconciler = make_reconciler(
            desired,
            directory,
            need_keys=False,
            progress=self._report,
            lock=None if readonly else "tui",
        )

    def _report(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    async def refresh(self) -> Frame:
        result = await self._reconciler.reconcile_once(self.policy, execute=False)
        return Frame(self._reconciler.desired, result.observed, result.plan)

    async def apply(self) -> Frame:
        if not self.can_apply:
            raise RuntimeError("read-only: apply is disabled")
        result = await self._reconciler.reconcile_once(self.policy, execute=True)
        messages = [
            f"{r.action_id}: {'done' if r.ok else 'failed: ' + str(r.error)}"
            for r in result.results
        ]
        if result.started_relays:
            messages.append("relays started: " + ", ".join(result.started_relays))
        if not messages:
            messages.append("apply: no chain action was executed")
        return Frame(self._reconciler.desired, result.observed, result.plan, tuple(messages))

    async def close(self) -> None:
        await self._reconciler.close()
