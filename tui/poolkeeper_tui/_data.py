"""Where the TUI's numbers come from, and how they become table rows.

The screens only ever see a ``Frame`` (inventory, observation, plan, pass messages).
A ``DataSource`` produces frames: ``SnapshotSource`` from a saved observation (offline
use and tests, never applies), ``LiveSource`` from the product's ``Reconciler`` (observes
with ``execute=False``; applies only when the user asks). Turning a frame into row
values is pure and lives here too, so it can be tested and benchmarked without Textual.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from poolkeeper.control import ConditionReader, ControlClient
from poolkeeper.control.client import RequestFailed
from poolkeeper.errors import PoolkeeperError
from poolkeeper.inventory import load_inventory
from poolkeeper.model.actions import SYMBOL_OF, Action, Alert, Drift, Plan, Severity, Wait
from poolkeeper.model.amounts import format_pha
from poolkeeper.model.conditions import Conditions
from poolkeeper.model.desired import Desired, WorkerSpec
from poolkeeper.model.observed import (
    ChainWorker,
    Observed,
    ObservedAccount,
    PRuntimeObservation,
    RelayStatus,
)
from poolkeeper.model.phase import phase_of
from poolkeeper.plan import PlanPolicy, plan_for
from poolkeeper_tui._table import (
    SEVERITY_CRITICAL,
    SEVERITY_OK,
    SEVERITY_PENDING,
    SEVERITY_WARN,
    WorkerRow,
)

WORKER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("glyph", " "),
    ("name", "worker"),
    ("phase", "phase"),
    ("behind", "behind"),
    ("pool", "pool"),
    ("session", "chain state"),
    ("relay", "relay"),
    ("stake", "stake"),
    ("score", "score"),
    ("endpoint", "endpoint"),
    ("message", "last message"),
)
"""(column key, header label) of the worker table, in display order."""

GLYPH_MEANING = {
    "?": "not observed yet",
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
    inventory_digest: str | None = None
    """Digest of the inventory files the plan was made from (an apply names it)."""
    plan_seq: int | None = None
    """The plan's number in an attached loop's stream (an apply names it)."""
    conditions: Conditions | None = None
    """The loop's conditions after this pass (None: the source gives none; the
    drill-down then derives its worker's)."""


@dataclass(slots=True)
class WorkerItems:
    """The plan's lines about one worker."""

    actions: list[Action] = field(default_factory=list)
    waits: list[Wait] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)


_GROUPED: list[tuple[Plan, dict[str, WorkerItems]]] = []
"""The last plan grouped (rows and accounts of one frame group it once)."""


def items_by_target(plan: Plan) -> dict[str, WorkerItems]:
    """The plan's actions, waits, alerts and drift grouped by target (``worker/<name>``...)."""
    if _GROUPED and _GROUPED[0][0] is plan:
        return _GROUPED[0][1]
    grouped = _group(plan)
    _GROUPED[:] = [(plan, grouped)]
    return grouped


def _group(plan: Plan, prefix: str = "") -> dict[str, WorkerItems]:
    """By target (only targets starting with ``prefix``)."""
    grouped: dict[str, WorkerItems] = {}
    if prefix:
        lines = (plan.actions, plan.waits, plan.alerts, plan.drift)
        wanted = {x.target for group in lines for x in group if x.target.startswith(prefix)}
        for target in wanted:
            grouped[target] = WorkerItems([], [], [], [])
        for action in plan.actions:
            if action.target in wanted:
                grouped[action.target].actions.append(action)
        for wait in plan.waits:
            if wait.target in wanted:
                grouped[wait.target].waits.append(wait)
        for alert in plan.alerts:
            if alert.target in wanted:
                grouped[alert.target].alerts.append(alert)
        for drift in plan.drift:
            if drift.target in wanted:
                grouped[drift.target].drift.append(drift)
        return grouped
    get = grouped.get
    for action in plan.actions:
        items = get(action.target)
        if items is None:
            items = grouped[action.target] = WorkerItems([], [], [], [])
        items.actions.append(action)
    for wait in plan.waits:
        items = get(wait.target)
        if items is None:
            items = grouped[wait.target] = WorkerItems([], [], [], [])
        items.waits.append(wait)
    for alert in plan.alerts:
        items = get(alert.target)
        if items is None:
            items = grouped[alert.target] = WorkerItems([], [], [], [])
        items.alerts.append(alert)
    for drift in plan.drift:
        items = get(drift.target)
        if items is None:
            items = grouped[drift.target] = WorkerItems([], [], [], [])
        items.drift.append(drift)
    return grouped


def glyph_of(items: WorkerItems | None) -> str:
    """``!`` alert, ``-`` removal, ``+`` creation, ``~`` other change/wait/drift, ``=`` none."""
    if items is None:
        return "="
    if items.alerts:
        return "!"
    actions = items.actions
    if len(actions) == 1:  # the common case: no set to build
        symbol = _SYMBOL[actions[0].kind]
        return symbol if symbol in "+-" else "~"
    symbols = {_SYMBOL[a.kind] for a in actions}  # kinds are str: a C-level hash
    if "-" in symbols:
        return "-"
    if "+" in symbols:
        return "+"
    if symbols or items.waits or items.drift:
        return "~"
    return "="


_SYMBOL: dict[str, str] = {kind.value: symbol.value for kind, symbol in SYMBOL_OF.items()}


def _last_message(prt: PRuntimeObservation | None, items: WorkerItems | None) -> str:
    if prt is not None and prt.error:
        return f"error: {prt.error}"
    if items is None:
        return ""
    if items.alerts:
        return items.alerts[0].message
    if items.actions:
        first = items.actions[0]
        return first.kind + ": " + first.reason  # a StrEnum concatenates as its value
    if items.waits:
        return f"waiting for {items.waits[0].awaiting}: {items.waits[0].reason}"
    if items.drift:
        return items.drift[0].message
    return ""


_RANK = {"-": 3, "+": 2}
_KIND_RANK: dict[str, int] = {
    kind.value: _RANK.get(symbol.value, 1) for kind, symbol in SYMBOL_OF.items()
}
"""Per action kind: 3 removes, 2 creates, 1 another change (the glyph's precedence)."""
_MARKS: list[tuple[Plan, dict[str, tuple[str, str, bool]]]] = []


def row_marks(plan: Plan) -> dict[str, tuple[str, str, bool]]:
    """Per target: its row's glyph (as ``glyph_of``), message (as ``_last_message``
    without a pRuntime) and whether it has a critical alert. One pass over the plan's
    lines with no per-target objects (a status update of 10,000 workers does this once);
    computed once per plan."""
    if _MARKS and _MARKS[0][0] is plan:
        return _MARKS[0][1]
    # target -> [alert message, critical, action rank, first action, first wait, drift msg];
    # messages are made once per target at the end (not per line: most are not shown).
    acc: dict[str, list[Any]] = {}
    get = acc.get
    rank_of = _KIND_RANK
    for action in plan.actions:
        entry = get(action.target)
        if entry is None:
            acc[action.target] = [None, False, rank_of[action.kind], action, None, None]
        elif entry[3] is None:
            entry[2], entry[3] = rank_of[action.kind], action
        else:
            rank = rank_of[action.kind]
            entry[2] = max(entry[2], rank)
    for wait in plan.waits:
        entry = get(wait.target)
        if entry is None:
            acc[wait.target] = [None, False, 0, None, wait, None]
        elif entry[4] is None:
            entry[4] = wait
    for alert in plan.alerts:
        entry = get(alert.target)
        if entry is None:
            entry = acc[alert.target] = [None, False, 0, None, None, None]
        if entry[0] is None:
            entry[0] = alert.message
        if alert.severity is Severity.CRITICAL:
            entry[1] = True
    for drift in plan.drift:
        entry = get(drift.target)
        if entry is None:
            entry = acc[drift.target] = [None, False, 0, None, None, None]
        if entry[5] is None:
            entry[5] = drift.message
    marks: dict[str, tuple[str, str, bool]] = {}
    for target, (alert, critical, rank, action, wait, drift) in acc.items():
        if alert is not None:
            marks[target] = ("!", alert, critical)
            continue
        glyph = "-" if rank == 3 else "+" if rank == 2 else "~"
        if action is not None:
            message = action.kind + ": " + action.reason  # a StrEnum concatenates as its value
        elif wait is not None:
            message = f"waiting for {wait.awaiting}: {wait.reason}"
        else:
            message = drift or ""
        marks[target] = (glyph, message, critical)
    _MARKS[:] = [(plan, marks)]
    return marks


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


STALE_SECONDS = 120.0
"""A pRuntime read this much older than the pass is shown dimmed (its numbers are old)."""


class RowCache:
    """Each worker's row with what it was built from, between frames.

    A pass rebuilds only the rows whose inputs changed: their pRuntime observation or
    chain record (compared by identity: the observation keeps unchanged entries as the
    same objects, as a snapshot's ``model_copy`` and the loop's folded stream do), their
    relay, their plan lines' glyph and message, their staleness, or (for initialized
    pRuntimes) the finalized head. Keeping the other rows as the same objects also lets
    the table's diff skip them by identity."""

    def __init__(self) -> None:
        self.desired: Desired | None = None
        self.finalized: int | None = None
        self.entries: dict[str, tuple[object, ...]] = {}
        self.changed: list[str] | None = None
        """Row keys rebuilt by the last ``worker_records`` (None: all of them, e.g. a new
        inventory or no previous frame)."""


def worker_records(frame: Frame, cache: RowCache | None = None) -> dict[str, WorkerRow]:
    """Rows by row key (the worker name): cells in ``WORKER_COLUMNS`` order, plus the
    typed values the filters and sorting use.

    Workers the plan wants to remove that are not in the inventory (pruning) get a row
    keyed by their plan target, so a ``-`` is visible. With ``cache``, rows whose inputs
    did not change since the previous call are reused (``cache.changed`` lists the rest).
    """
    marks = row_marks(frame.plan)
    observed = frame.observed
    head = observed.head
    finalized = head.finalized_number
    pruntimes = observed.pruntimes
    chain_workers = observed.chain_workers
    relays = observed.relays
    stale_before = observed.read_at - timedelta(seconds=STALE_SECONDS)
    rows: dict[str, WorkerRow] = {}
    reuse = cache is not None and cache.desired is frame.desired
    previous = cache.entries if cache is not None and reuse else {}
    same_head = reuse and cache is not None and cache.finalized == finalized
    entries: dict[str, tuple[object, ...]] = {}
    changed: list[str] = []
    pruntime_of = pruntimes.get
    chain_of = chain_workers.get
    mark_of = marks.get
    relay_of = relays.get
    previous_of = previous.get
    for spec, name, pool, labels, pubkey, endpoint, target in _specs(frame.desired):
        prt = pruntime_of(endpoint)
        mark = mark_of(target)
        relay: str | None = relay_of(name)
        old = previous_of(name)
        if old is not None and old[0] is prt:
            # The same pRuntime observation: the same public key and error; only the
            # chain record, plan lines, relay, staleness and head can change the row.
            key = old[1]
            chain = chain_of(key) if key else None  # type: ignore[call-overload]
            if (
                chain is old[2]
                and mark == old[3]
                and relay == old[4]
                and (same_head or not old[5])
                and (
                    prt is None
                    or (prt.read_at is not None and prt.read_at < stale_before) == old[6]
                )
            ):
                entries[name] = old
                rows[name] = old[7]  # type: ignore[assignment]
                continue
        info = prt.info if prt else None
        key = pubkey or (
            info.public_key.lower().removeprefix("0x") if info and info.public_key else ""
        )
        chain = chain_of(key) if key else None
        stale = prt is None or (prt.read_at is not None and prt.read_at < stale_before)
        glyph, message, critical = _UNMARKED if mark is None else mark
        if prt is not None and prt.error:
            message = f"error: {prt.error}"
        changed.append(name)
        phase: str = phase_of(prt, chain, head)  # a StrEnum: its own value, no lookup
        behind = max(0, finalized - info.blocknum) if info and info.initialized else None
        if chain is not None:
            stake = chain.stake
            score = chain.initial_score
            session: str = chain.session_state or "-"
        else:
            stake = None
            score = info.score if info and info.score else None
            session = "-"
        if glyph == "=" and message == "":
            severity = SEVERITY_CRITICAL if phase in _DOWN else SEVERITY_OK
        else:
            severity = _severity(glyph, critical, prt, phase)
        values = (
            glyph,
            name,
            phase,
            "-" if behind is None else str(behind),
            pool,
            session,
            relay or "-",
            "-" if stake is None else format_pha(stake),
            "-" if score is None else str(score),
            spec.endpoint,
            message,
        )
        row = rows[name] = WorkerRow(
            values,
            pool,
            phase,
            labels,
            glyph == "!",
            glyph != "=",
            behind,
            stake,
            score,
            severity,
            stale,
        )
        if cache is not None:
            initialized = info is not None and info.initialized
            entries[name] = (prt, key, chain, mark, relay, initialized, stale, row)
    if cache is not None:
        cache.desired = frame.desired
        cache.finalized = finalized
        cache.entries = entries
        cache.changed = changed if reuse else None
    inventory = frame.desired.workers_by_name
    for target, (glyph, message, critical) in marks.items():
        kind, _, name = target.partition("/")
        if kind != "worker" or name in inventory:
            continue
        items = items_by_target(frame.plan)[target]  # pruning: rare, the plan grouped once
        pool = next((a.pool for a in items.actions if a.pool), None) or "-"
        values = (
            glyph,
            name[:16],
            "-",
            "-",
            pool,
            "-",
            "-",
            "-",
            "-",
            "(not in inventory)",
            message,
        )
        if cache is not None and cache.changed is not None:
            cache.changed.append(target)
        rows[target] = WorkerRow(
            values,
            pool=pool,
            alert=glyph == "!",
            drift=glyph != "=",
            severity=_severity(glyph, critical, None, "-"),
        )
    return rows


_DOWN = frozenset({"Unresponsive", "Unreachable"})
_Spec = tuple[WorkerSpec, str, str, tuple[tuple[str, str], ...], str, str, str]
"""spec, name, pool, labels, pubkey (lower, no 0x), endpoint, plan target."""
_SPECS: list[tuple[Desired, list[_Spec]]] = []


def _specs(
    desired: Desired,
) -> list[_Spec]:
    """Per worker of the inventory: spec, name, pool, labels, pubkey (lower, no 0x);
    computed once per inventory, not per pass."""
    if _SPECS and _SPECS[0][0] is desired:
        return _SPECS[0][1]
    specs = [
        (
            spec,
            spec.name,
            spec.pool or "-",
            tuple(spec.labels.items()),
            (spec.pubkey or "").lower().removeprefix("0x"),
            spec.endpoint,
            "worker/" + spec.name,
        )
        for spec in desired.workers
    ]
    _SPECS[:] = [(desired, specs)]
    return specs


_UNMARKED = ("=", "", False)


def _severity(glyph: str, critical: bool, prt: PRuntimeObservation | None, phase: str) -> int:
    if critical:
        return SEVERITY_CRITICAL
    if phase in _DOWN or (prt is not None and prt.error):
        return SEVERITY_CRITICAL
    if glyph == "!":
        return SEVERITY_WARN
    if glyph != "=":
        return SEVERITY_PENDING
    return SEVERITY_OK


def unobserved_records(desired: Desired) -> dict[str, WorkerRow]:
    """The inventory's workers before any observation (or with the chain down from the
    start): listed, marked ``?``, rather than an empty table."""
    rows: dict[str, WorkerRow] = {}
    for spec, name, pool, labels, *_ in _specs(desired):
        values = ("?", name, "-", "-", pool, "-", "-", "-", "-", spec.endpoint, "not observed yet")
        rows[name] = WorkerRow(values, pool, "-", labels, stale=True)
    return rows


def worker_rows(frame: Frame) -> dict[str, tuple[str, ...]]:
    """Cell values by row key, in ``WORKER_COLUMNS`` order."""
    return {key: row.values for key, row in worker_records(frame).items()}


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
    grouped = _group(frame.plan, "account/")
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


ResultHook = Callable[[str, bool, "str | None"], None]
"""Called with (action id, ok, error) as each applied action's result is known."""


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
    static = True
    """Saved data: the header gives its date rather than its age."""

    def __init__(
        self, desired: Desired, observed: Observed, *, policy: PlanPolicy | None = None
    ) -> None:
        self.desired = desired
        self.observed = observed
        self.policy = policy or PlanPolicy()
        self.label = "snapshot"
        self.directory: Path | None = None
        """The inventory directory, when known (to open a worker's file in an editor)."""
        self.state_dir: Path | None = None
        """The state directory, when known (the drill-down reads the audit log there)."""

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
    """The product's reconcile pass against the live chain and pRuntimes (``--standalone``,
    or read-only observation when no ``poolkeeper run`` serves the state dir)."""

    def __init__(
        self,
        directory: Path,
        desired: Desired,
        *,
        readonly: bool,
        policy: PlanPolicy | None = None,
        label: str | None = None,
    ) -> None:
        from poolkeeper.app import inventory_digest, make_reconciler

        self.progress: Callable[[str], None] | None = None
        """Where the reconciler's progress lines go (the app's event log)."""
        self.on_result: ResultHook | None = None
        """Told each applied action's result (the rows show progress)."""
        self.directory = directory
        self.desired = desired
        """The inventory as loaded at start (rows are listed before the first pass)."""
        from poolkeeper.app import state_dir_of

        self.state_dir: Path | None = state_dir_of(desired, directory)
        self.policy = policy or PlanPolicy()
        self.can_apply = not readonly
        self.label = label or ("live" + (" (read-only)" if readonly else ""))
        self.interval = desired.settings.loop.interval_seconds
        self.pass_timeout = desired.settings.loop.pass_timeout_seconds
        """A pass is cancelled past this (``settings.loop.pass_timeout_seconds``)."""
        self._digest = inventory_digest
        self.loaded_digest = inventory_digest(directory)
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
        self.secret_loaded: bool | None = self._reconciler.secret_loaded

    def relays_running(self) -> int:
        """Relays this process runs (quitting stops them)."""
        return len(self._reconciler.relays.statuses())

    def inventory_changed(self) -> bool:
        """Whether the inventory files differ from the ones loaded."""
        return self._digest(self.directory) != self.loaded_digest

    async def reload(self) -> Frame:
        """Read the inventory again (``InventoryError`` when invalid), then observe."""
        from poolkeeper.inventory import load_inventory

        digest = self._digest(self.directory)  # before reading: a later edit shows
        fresh = load_inventory(self.directory)
        self._reconciler.set_desired(fresh)
        self.loaded_digest = digest
        return await self.refresh()

    def _report(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    async def refresh(self) -> Frame:
        # The loop's pass deadline: a hung chain or pRuntime read ends as an error
        # naming where it hung, never as "observing" forever.
        result = await self._reconciler.reconcile_within_deadline(self.policy, execute=False)
        return Frame(
            self._reconciler.desired,
            result.observed,
            result.plan,
            inventory_digest=self.loaded_digest,
            conditions=result.conditions,
        )

    async def apply(self) -> Frame:
        return await self.apply_approved(None)

    async def apply_approved(self, approved: Frame | None) -> Frame:
        """Apply; with ``approved``, only its chain actions still planned unchanged."""
        if not self.can_apply:
            raise RuntimeError("read-only: apply is disabled")
        if self.inventory_changed() or (
            approved is not None and approved.inventory_digest != self.loaded_digest
        ):
            raise StaleInventory(
                "the inventory changed on disk since this plan was made: "
                "press r to reload, review the plan, then apply"
            )
        result = await self._reconciler.reconcile_within_deadline(
            self.policy, execute=True, only=approved.plan if approved else None
        )
        messages = [
            f"{r.action_id}: {'done' if r.ok else 'failed: ' + str(r.error)}"
            for r in result.results
        ]
        if self.on_result is not None:
            for r in result.results:
                self.on_result(r.action_id, r.ok, None if r.ok else str(r.error))
        if result.started_relays:
            messages.append("relays started: " + ", ".join(result.started_relays))
        if not messages:
            messages.append("apply: no chain action was executed")
        # Observe again right away: the table must not show what was just done as to do.
        after = await self.refresh()
        return Frame(
            after.desired,
            after.observed,
            after.plan,
            tuple(messages),
            inventory_digest=self.loaded_digest,
            conditions=after.conditions,
        )

    async def close(self) -> None:
        await self._reconciler.close()


class StaleInventory(RuntimeError):
    """The plan shown was made from inventory files that have changed since."""


_PARSED_ENTRIES: dict[str, Callable[[Any], object]] = {
    "pruntimes": PRuntimeObservation.model_validate,
    "chain_workers": ChainWorker.model_validate,
    "accounts": ObservedAccount.model_validate,
    "relays": RelayStatus,
}
"""The ``Observed`` maps with an entry per worker (or account), parsed entry by entry."""


class ObservedReader:
    """The attached loop's folded ``observed`` document as an ``Observed``, parsing again
    only the entries a delta replaced.

    The client's view keeps unchanged entries as the same dicts, so an entry whose dict
    is the one parsed last time keeps its model object: a pass that changed 1,000 of
    10,000 pRuntimes parses 1,000 (validating the whole document took ~150 ms), and the
    row cache, which compares observations by identity, rebuilds only their rows."""

    def __init__(self) -> None:
        self._kept: dict[str, dict[str, tuple[object, object]]] = {}

    def read(self, document: dict[str, Any]) -> Observed:
        rest = {k: v for k, v in document.items() if k not in _PARSED_ENTRIES}
        base = Observed.model_validate(rest)
        update: dict[str, dict[str, object]] = {}
        for key, parse in _PARSED_ENTRIES.items():
            entries = document.get(key)
            if not isinstance(entries, dict):
                self._kept.pop(key, None)
                continue
            kept = self._kept.get(key, {})
            fresh: dict[str, tuple[object, object]] = {}
            models: dict[str, object] = {}
            for name, entry in entries.items():
                before = kept.get(name)
                if before is not None and before[0] is entry:
                    fresh[name] = before
                    models[name] = before[1]
                    continue
                model = parse(entry)
                fresh[name] = (entry, model)
                models[name] = model
            self._kept[key] = fresh
            update[key] = models
        return base.model_copy(update=update)


class AttachedSource:
    """A running ``poolkeeper run``'s control API: its stream and its requests.

    Builds no reconciler and starts no relay: the loop that owns the state dir does the
    work; this only shows what it streams and asks it to plan, apply and reload."""

    def __init__(self, socket: Path, desired: Desired, *, readonly: bool) -> None:
        self.socket = socket
        self.desired = desired
        """The local copy of the inventory (rows are keyed by its workers)."""
        self.directory: Path | None = None
        self.state_dir: Path | None = socket.parent
        """The run's state directory (its control socket lives there)."""
        self.can_apply = not readonly
        self.label = "attached to `poolkeeper run`"
        self.interval = desired.settings.loop.interval_seconds
        """The loop's pass interval (older data is shown stale)."""
        self.secret_loaded: bool | None = None
        self.progress: Callable[[str], None] | None = None
        self._client: ControlClient | None = None
        self._last: Frame | None = None
        self._observed = ObservedReader()
        self._conditions = ConditionReader()
        self._desired: tuple[Desired, dict[str, str], Desired] | None = None
        """(local inventory, the loop's account addresses, the frame's inventory): kept
        while both stay the same, so rows are not all rebuilt for a new object."""

    async def client(self) -> ControlClient:
        if self._client is None:
            self._client = await ControlClient.connect(self.socket)
            pid = self._client.hello.get("pid")
            self.label = f"attached to `poolkeeper run` (pid {pid})"
            self.secret_loaded = self._client.view.secret_loaded
        return self._client

    def ha(self) -> dict[str, Any] | None:
        """The attached run's HA ownership (``run --ha``), as its control API streams it."""
        return self._client.view.ha if self._client is not None else None

    def _frame(self, messages: tuple[str, ...] = ()) -> Frame | None:
        from poolkeeper.render import plan_from_document

        view = self._client.view if self._client else None
        if view is None or not view.observed or view.plan is None:
            return None
        self.secret_loaded = view.secret_loaded
        frame = Frame(
            self._desired_with(view.accounts),
            self._observed.read(view.observed),
            plan_from_document(view.plan),
            messages,
            inventory_digest=view.inventory_digest,
            plan_seq=view.plan_seq,
            conditions=self._conditions.read(view.rows),
        )
        self._last = frame
        return frame

    def _desired_with(self, addresses: dict[str, str]) -> Desired:
        """The local inventory with the addresses the loop derived for its accounts."""
        kept = self._desired
        if kept is not None and kept[0] is self.desired and kept[1] == addresses:
            return kept[2]
        accounts = tuple(
            a.model_copy(update={"address": addresses[a.name]})
            if a.address is None and a.name in addresses
            else a
            for a in self.desired.accounts
        )
        desired = self.desired.model_copy(update={"accounts": accounts})
        self._desired = (self.desired, dict(addresses), desired)
        return desired

    def _load_local(self) -> None:
        """Read the inventory again after the loop reloaded it (rows follow its workers)."""
        if self.directory is None:
            return
        with contextlib.suppress(PoolkeeperError):  # invalid: the loop keeps its last one too
            self.desired = load_inventory(self.directory)

    async def current(self) -> Frame | None:
        """The frame of the snapshot received on attaching (None before a first pass)."""
        await self.client()
        return self._frame()

    def loop_state(self) -> str | None:
        """The attached loop's own state (``observe``/``pass`` running, idle, error)."""
        if self._client is None:
            return None
        loop = self._client.view.loop
        state = str(loop.get("state") or "?")
        if state == "error" and loop.get("error"):
            return f"error: {loop['error']}"
        return state

    async def follow(
        self,
        show: Callable[[Frame], None],
        log: Callable[[str], None],
        repaint: Callable[[], None] | None = None,
        result: ResultHook | None = None,
    ) -> None:
        """Show a frame after every pass the loop streams, until it goes away."""
        client = await self.client()
        async for message in client.messages():
            event = message.get("event")
            if repaint is not None and message.get("type") == "event":
                repaint()
            if event == "pass_done":
                frame = self._frame()
                if frame is not None:
                    show(frame)
            elif event == "action_result":
                verdict = "done" if message.get("ok") else f"failed: {message.get('error')}"
                log(f"{message.get('action_id')}: {verdict}")
                if result is not None:
                    error = message.get("error")
                    result(
                        str(message.get("action_id")),
                        bool(message.get("ok")),
                        None if error is None else str(error),
                    )
            elif event == "error":
                log(f"loop: pass failed: {message.get('message')}")
            elif event == "reloaded":
                self._load_local()
                log("loop: inventory reloaded")
        log("the loop stopped serving: restart `poolkeeper tui` to attach again")

    async def refresh(self) -> Frame:
        client = await self.client()
        await client.plan()
        frame = self._frame()
        if frame is None:
            raise RuntimeError("the loop has not observed yet")
        return frame

    async def reload(self) -> Frame:
        client = await self.client()
        try:
            await client.reload()
        except RequestFailed as error:
            raise RuntimeError(f"reload refused: {error}") from None
        return await self.refresh()

    async def apply(self) -> Frame:
        return await self.apply_approved(self._last)

    async def apply_approved(self, frame: Frame | None) -> Frame:
        """The loop applies the approved plan's actions still planned unchanged."""
        if not self.can_apply:
            raise RuntimeError("read-only: apply is disabled")
        if frame is None or frame.plan_seq is None or frame.inventory_digest is None:
            raise RuntimeError("no plan to apply yet")
        client = await self.client()
        try:
            result = await client.apply(
                [a.id for a in frame.plan.actions],
                inventory_digest=frame.inventory_digest,
                plan_seq=frame.plan_seq,
            )
        except RequestFailed as error:
            raise StaleInventory(f"apply refused by the loop: {error}") from None
        messages = [
            f"{r['action_id']}: {'done' if r['ok'] else 'failed: ' + str(r['error'])}"
            for r in result.get("results", [])
        ]
        skipped = result.get("not_applied") or []
        if skipped:
            messages.append("not applied (no longer planned as shown): " + ", ".join(skipped))
        return self._frame(tuple(messages)) or frame

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
