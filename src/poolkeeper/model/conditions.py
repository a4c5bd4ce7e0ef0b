"""Conditions: what is true of each worker and of the process, with why and since when.

A phase says where a worker stands; an operator paged at night also needs to know what
is wrong by name ("pRuntime on another genesis", "RCU busy", "unreachable for 12 min",
"computing but not earning") and since when. Conditions are a pure function of the
latest observation and the previous conditions (which carry the transition times and
the little history some diagnoses need: a pRuntime whose block number has not moved,
a session that keeps falling into WorkerUnresponsive). The reconcile loop keeps the
previous value between passes; ``status`` starts from none.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from pydantic import ConfigDict, Field

from poolkeeper.model.actions import Alert, Severity
from poolkeeper.model.desired import Desired, WorkerSpec, WorkerState
from poolkeeper.model.observed import (
    ChainWorker,
    Observed,
    PRuntimeInfo,
    PRuntimeObservation,
    RelayStatus,
    SessionState,
)
from poolkeeper.model.phase import is_synced
from poolkeeper.model.trusted import SharedFieldsSet, trusted

WORKER_CONDITIONS = ("Synced", "Registered", "InPool", "Computing", "Healthy")
PROCESS_CONDITIONS = ("ChainStalled", "LoopHealthy")
RCU_TEXT = "RCU in progress"


class _Frozen(SharedFieldsSet):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(StrEnum):
    """Named diagnoses (and the ordinary reasons) a condition can give."""

    OK = "Ok"
    UNREACHABLE = "Unreachable"
    NOT_INITIALIZED = "NotInitialized"
    SYNCING = "Syncing"
    WRONG_GENESIS = "WrongGenesis"
    PRUNTIME_STALLED = "PRuntimeStalled"
    RCU_BUSY = "RcuBusy"
    UNRESPONSIVE_ON_CHAIN = "UnresponsiveOnChain"
    NOT_EARNING = "ComputingButNotEarning"
    NOT_ON_CHAIN = "NotOnChain"
    NO_POOL = "NotInPool"
    OTHER_POOL = "InAnotherPool"
    SESSION = "Session"
    NOT_COMPUTING = "NotComputing"
    REMOVED = "Removed"
    UNKNOWN_PUBKEY = "PubkeyUnknown"
    FINALITY_MOVING = "FinalityMoving"
    NO_NEW_FINALIZED = "NoNewFinalizedBlock"
    PASSING = "Passing"
    PASS_FAILED = "PassFailed"
    LEASE_HELD = "LeaseHeld"
    STANDBY = "Standby"
    LEASE_LOST = "LeaseLost"
    TLS_FILES_REFUSED = "TlsFilesRefused"


class Condition(_Frozen):
    """One condition: its status, a named reason, a sentence, and when it last changed."""

    type: str
    status: ConditionStatus
    reason: Reason
    message: str = ""
    last_transition: datetime
    severity: str | None = None
    """``warn`` or ``critical`` for a failing Healthy / ChainStalled / LoopHealthy."""


class WorkerMemory(_Frozen):
    """What one worker's diagnoses remember from earlier passes."""

    blocknum: int | None = None
    blocknum_since: datetime | None = None
    """When ``blocknum`` last changed (or was first seen)."""
    session_state: SessionState | None = None
    unresponsive_at: tuple[datetime, ...] = ()
    """When the session entered WorkerUnresponsive, within the flap window."""
    unreachable_since: datetime | None = None


class ConditionPolicy(_Frozen):
    """Thresholds of the diagnoses."""

    chain_stall_blocks: int = Field(default=10, ge=1)
    """ChainStalled after this many block times without a new finalized block."""
    default_block_seconds: float = Field(default=12.0, gt=0)
    """Block time until one is measured from the chain's own progress."""
    unreachable_critical_seconds: float = Field(default=300.0, ge=0)
    pruntime_stall_seconds: float = Field(default=120.0, ge=0)
    """A pRuntime behind the head whose block number has not moved for this long."""
    flap_window_seconds: float = Field(default=3600.0, gt=0)
    flap_count: int = Field(default=2, ge=1)
    """Entries into WorkerUnresponsive within the window that make "not earning"."""


class Conditions(_Frozen):
    """Every condition at one moment, with what the next derivation needs."""

    workers: dict[str, tuple[Condition, ...]] = Field(default_factory=dict)
    process: tuple[Condition, ...] = ()
    memory: dict[str, WorkerMemory] = Field(default_factory=dict)
    finalized_number: int | None = None
    finalized_since: datetime | None = None
    rate_origin: tuple[int, datetime] | None = None
    """First (finalized number, time) seen: the measured block time's origin."""

    def worker(self, name: str) -> dict[str, Condition]:
        return {c.type: c for c in self.workers.get(name, ())}

    def block_seconds(self, policy: ConditionPolicy, now: datetime) -> float:
        if self.rate_origin is None or self.finalized_number is None:
            return policy.default_block_seconds
        number, since = self.rate_origin
        blocks = self.finalized_number - number
        if blocks < 3:
            return policy.default_block_seconds
        elapsed = ((self.finalized_since or now) - since).total_seconds()
        return min(60.0, max(0.05, elapsed / blocks))


def normalise_hash(text: str | None) -> str:
    return (text or "").lower().removeprefix("0x")


def genesis_mismatch(info: PRuntimeInfo | None, observed: Observed) -> str | None:
    """Why the pRuntime is on another chain, or None (also when it cannot be told)."""
    if info is None or not info.initialized or not info.genesis_block_hash:
        return None
    if info.genesis_block is None:
        return None
    expected = observed.genesis_hashes.get(info.genesis_block)
    if expected is None or normalise_hash(expected) == normalise_hash(info.genesis_block_hash):
        return None
    return (
        f"pRuntime was initialized on another chain: its genesis block "
        f"#{info.genesis_block} is 0x{normalise_hash(info.genesis_block_hash)}, this chain's "
        f"is 0x{normalise_hash(expected)}; no sync is attempted (wipe its data and restart it)"
    )


class WorkerJoin(NamedTuple):
    """An inventory worker joined with what was observed of it."""

    pruntime: PRuntimeObservation | None
    pubkey: str | None
    chain: ChainWorker | None


def join_worker(spec: WorkerSpec, observed: Observed) -> WorkerJoin:
    """The one join of an inventory worker with its pRuntime and its chain record.

    The worker's public key is the inventory pin, else what its pRuntime reports, else
    the last key it reported (``remembered_pubkeys``), lower-case without ``0x``; its
    chain record is ``chain_workers`` under that key. Conditions, metrics and the front
    ends show the same worker only if they all join the same way, so they call this.
    """
    prt = observed.pruntimes.get(spec.endpoint)
    info = prt.info if prt else None
    key = spec.pubkey or (info.public_key if info else None)
    key = key or observed.remembered_pubkeys.get(spec.endpoint)
    pubkey = normalise_hash(key) or None
    return WorkerJoin(prt, pubkey, observed.chain_workers.get(pubkey) if pubkey else None)


class _LastJoins:
    """The joins of the last (inventory, observation) pair, kept while both live (weak
    references: the joins go with the observation)."""

    def __init__(self) -> None:
        self._last: (
            tuple[weakref.ref[Desired], weakref.ref[Observed], dict[str, WorkerJoin]] | None
        ) = None

    def of(self, desired: Desired, observed: Observed) -> dict[str, WorkerJoin]:
        last = self._last
        if last is not None and last[0]() is desired and last[1]() is observed:
            return last[2]
        joins = {spec.name: join_worker(spec, observed) for spec in desired.workers}
        self._last = (weakref.ref(desired), weakref.ref(observed, self._forget), joins)
        return joins

    def _forget(self, gone: weakref.ref[Observed]) -> None:
        if self._last is not None and self._last[1] is gone:
            self._last = None


_JOINS = _LastJoins()


def worker_joins(desired: Desired, observed: Observed) -> Mapping[str, WorkerJoin]:
    """``join_worker`` of every inventory worker, by name, computed once per (inventory,
    observation) pair: a pass's conditions, metrics and status rows all join the same
    10,000 workers with the same observation (both are immutable values)."""
    return _JOINS.of(desired, observed)


def worker_pubkey(spec: WorkerSpec, observed: Observed) -> str | None:
    """Inventory pin, else what the pRuntime reports, else the last key it reported."""
    return join_worker(spec, observed).pubkey


_CONDITION_FIELDS = {"type", "status", "reason", "message", "last_transition", "severity"}
_MEMORY_FIELDS = {
    "blocknum",
    "blocknum_since",
    "session_state",
    "unresponsive_at",
    "unreachable_since",
}
"""The fields set of the models built below, one set shared by every object: pydantic
would give each its own (~470 bytes), two thirds of a ``Condition``: 36 MB of the 54 MB the
50,000 conditions of 10,000 workers held. Never mutated (the models are frozen;
``model_copy`` copies it before adding to it)."""

Interned = dict[tuple[object, ...], "Condition"]
"""Conditions made by one derivation, by value: workers in the same state since the same
moment share one object (most of 10,000 workers' InPool, Computing, Healthy, and Synced at
the same block). Lives for one derivation only, so nothing piles up."""


def _set(
    previous: Mapping[str, Condition],
    now: datetime,
    type_: str,
    status: ConditionStatus,
    reason: Reason,
    *,
    message: str = "",
    severity: str | None = None,
    interned: Interned | None = None,
) -> Condition:
    """A condition keeping its transition time while its status stays the same; with
    ``interned``, an equal condition made earlier in the derivation is reused."""
    before = previous.get(type_)
    if (
        before is not None
        and before.status is status
        and before.reason is reason
        and before.message == message
        and before.severity == severity
    ):
        return before  # unchanged: the common case, kept without a new object
    since = before.last_transition if before and before.status is status else now
    key = (type_, status, reason, message, since, severity)
    if interned is not None:
        found = interned.get(key)
        if found is not None:
            return found
    # Built from values of this module only: no validation needed (10,000 workers a pass).
    condition = trusted(
        Condition,
        _CONDITION_FIELDS,
        {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "last_transition": since,
            "severity": severity,
        },
    )
    if interned is not None:
        interned[key] = condition
    return condition


_NO_MEMORY = WorkerMemory()


def _memory(
    before: WorkerMemory | None,
    info: PRuntimeInfo | None,
    chain: ChainWorker | None,
    now: datetime,
    policy: ConditionPolicy,
    *,
    interned: dict[tuple[object, ...], WorkerMemory] | None = None,
) -> WorkerMemory:
    before = before or _NO_MEMORY
    blocknum, since = before.blocknum, before.blocknum_since
    if info is not None and info.initialized and info.blocknum != before.blocknum:
        blocknum, since = info.blocknum, now
    state = chain.session_state if chain else None
    window = timedelta(seconds=policy.flap_window_seconds)
    entries = [t for t in before.unresponsive_at if now - t <= window]
    if state is SessionState.WORKER_UNRESPONSIVE and before.session_state is not state:
        entries.append(now)
    down = None if info is not None else (before.unreachable_since or now)
    if (blocknum, since, entries, down) == (
        before.blocknum,
        before.blocknum_since,
        list(before.unresponsive_at),
        before.unreachable_since,
    ) and before.session_state is (state if chain is not None else before.session_state):
        return before
    session = state if chain is not None else before.session_state
    key = (blocknum, since, session, tuple(entries), down)
    found = interned.get(key) if interned is not None else None
    if found is not None:
        return found  # workers at the same block since the same moment share one
    memory = trusted(
        WorkerMemory,
        _MEMORY_FIELDS,
        {
            "blocknum": blocknum,
            "blocknum_since": since,
            "session_state": session,
            "unresponsive_at": tuple(entries),
            "unreachable_since": down,
        },
    )
    if interned is not None:
        interned[key] = memory
    return memory


def _health(
    spec: WorkerSpec,
    prt: PRuntimeObservation | None,
    chain: ChainWorker | None,
    observed: Observed,
    *,
    memory: WorkerMemory,
    now: datetime,
    policy: ConditionPolicy,
) -> tuple[Reason, str, str | None]:
    """The first thing wrong with the worker (reason, message, severity), or Ok."""
    info = prt.info if prt else None
    state = chain.session_state if chain else None
    if info is None:
        down = (now - (memory.unreachable_since or now)).total_seconds()
        critical = down >= policy.unreachable_critical_seconds
        error = (prt.error if prt else None) or "not observed"
        return (
            Reason.UNREACHABLE,
            f"pRuntime unreachable for {int(down)}s: {error}",
            "critical" if critical else "warn",
        )
    mismatch = genesis_mismatch(info, observed)
    if mismatch:
        return Reason.WRONG_GENESIS, mismatch, "critical"
    if state is SessionState.WORKER_UNRESPONSIVE:
        return Reason.UNRESPONSIVE_ON_CHAIN, "the chain marks the worker unresponsive", "critical"
    detail = observed.relay_details.get(spec.name) or ""
    if RCU_TEXT in detail:
        return (
            Reason.RCU_BUSY,
            f"pRuntime answers 'RCU in progress' to the relay ({detail})",
            "warn",
        )
    if observed.relays.get(spec.name) is RelayStatus.STALLED:
        return (
            Reason.PRUNTIME_STALLED,
            f"the relay feeds blocks but the pRuntime stays at block {info.blocknum}",
            "warn",
        )
    if info.initialized and not is_synced(prt, observed.head) and memory.blocknum_since:
        still = (now - memory.blocknum_since).total_seconds()
        if still >= policy.pruntime_stall_seconds:
            return (
                Reason.PRUNTIME_STALLED,
                f"pRuntime behind the head and stuck at block {info.blocknum} for {int(still)}s",
                "warn",
            )
    if state is SessionState.WORKER_IDLE and len(memory.unresponsive_at) >= policy.flap_count:
        return (
            Reason.NOT_EARNING,
            f"computing, but the session fell into WorkerUnresponsive "
            f"{len(memory.unresponsive_at)} times within {int(policy.flap_window_seconds)}s",
            "warn",
        )
    return Reason.OK, "", None


def _worker_conditions(
    spec: WorkerSpec,
    desired: Desired,
    observed: Observed,
    *,
    memory: WorkerMemory,
    previous: Mapping[str, Condition],
    now: datetime,
    policy: ConditionPolicy,
    join: WorkerJoin | None = None,
    interned: Interned | None = None,
) -> tuple[Condition, ...]:
    t, f, u = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
    prt, pubkey, chain = join or join_worker(spec, observed)
    info = prt.info if prt else None
    out: list[Condition] = []

    def put(type_: str, status: ConditionStatus, reason: Reason, message: str = "") -> None:
        out.append(_set(previous, now, type_, status, reason, message=message, interned=interned))

    if info is None:
        put("Synced", u, Reason.UNREACHABLE, (prt.error if prt else None) or "not observed")
    elif not info.initialized:
        put("Synced", f, Reason.NOT_INITIALIZED)
    elif genesis_mismatch(info, observed):
        put("Synced", f, Reason.WRONG_GENESIS)
    elif is_synced(prt, observed.head):
        put("Synced", t, Reason.OK, f"at block {info.blocknum}")
    else:
        behind = max(0, observed.head.finalized_number - info.blocknum)
        put("Synced", f, Reason.SYNCING, f"{behind} blocks behind the finalized head")
    if pubkey is None:
        put("Registered", u, Reason.UNKNOWN_PUBKEY, "no public key known yet")
    elif chain is None:
        put("Registered", f, Reason.NOT_ON_CHAIN)
    else:
        put("Registered", t, Reason.OK, f"0x{pubkey}")
    pool = desired.pools_by_name.get(spec.pool) if spec.pool else None
    pid = chain.pool_pid if chain else None
    if chain is None:
        put("InPool", u if pubkey is None else f, Reason.NO_POOL)
    elif pid is None:
        put("InPool", f, Reason.NO_POOL)
    elif pool is not None and pool.pid is not None and pool.pid != pid:
        put("InPool", f, Reason.OTHER_POOL, f"in pid {pid}, the inventory says {pool.pid}")
    else:
        put("InPool", t, Reason.OK, f"pid {pid}")
    state = chain.session_state if chain else None
    if state is SessionState.WORKER_IDLE:
        put("Computing", t, Reason.OK)
    elif state is not None:
        put("Computing", f, Reason.SESSION, state.value)
    else:
        put("Computing", u if chain is None and pubkey is None else f, Reason.NOT_COMPUTING)
    if spec.state is WorkerState.REMOVED:
        out.append(_set(previous, now, "Healthy", u, Reason.REMOVED, interned=interned))
    else:
        reason, message, severity = _health(
            spec, prt, chain, observed, memory=memory, now=now, policy=policy
        )
        status = t if reason is Reason.OK else f
        out.append(
            _set(
                previous,
                now,
                "Healthy",
                status,
                reason,
                message=message,
                severity=severity,
                interned=interned,
            )
        )
    return tuple(out)


def derive_conditions(
    desired: Desired,
    observed: Observed,
    previous: Conditions | None,
    now: datetime,
    policy: ConditionPolicy | None = None,
    *,
    loop_error: str | None = None,
) -> Conditions:
    """Every worker's and the process's conditions after ``observed`` (at ``now``)."""
    policy = policy or ConditionPolicy()
    previous = previous or Conditions()
    workers: dict[str, tuple[Condition, ...]] = {}
    memory: dict[str, WorkerMemory] = {}
    interned: Interned = {}
    memories: dict[tuple[object, ...], WorkerMemory] = {}
    before_memory, before_workers = previous.memory, previous.workers
    joins = worker_joins(desired, observed)
    for spec in desired.workers:
        join = joins[spec.name]
        prt, _, chain = join
        info = prt.info if prt else None
        mem = _memory(before_memory.get(spec.name), info, chain, now, policy, interned=memories)
        memory[spec.name] = mem
        workers[spec.name] = _worker_conditions(
            spec,
            desired,
            observed,
            memory=mem,
            previous={c.type: c for c in before_workers.get(spec.name, ())},
            now=now,
            policy=policy,
            join=join,
            interned=interned,
        )
    finalized = observed.head.finalized_number
    since = previous.finalized_since
    if previous.finalized_number is None or finalized != previous.finalized_number:
        since = now
    origin = previous.rate_origin or (finalized, now)
    state = Conditions.model_construct(
        workers=workers,
        memory=memory,
        finalized_number=finalized,
        finalized_since=since,
        rate_origin=origin,
    )
    process = {c.type: c for c in previous.process}
    block = state.block_seconds(policy, now)
    quiet = (now - (since or now)).total_seconds()
    limit = policy.chain_stall_blocks * block
    if quiet >= limit:
        chain_stalled = _set(
            process,
            now,
            "ChainStalled",
            ConditionStatus.TRUE,
            Reason.NO_NEW_FINALIZED,
            message=f"no new finalized block for {int(quiet)}s (#{finalized}; "
            f"{policy.chain_stall_blocks} block times of {block:.1f}s)",
            severity="critical",
        )
    else:
        chain_stalled = _set(
            process, now, "ChainStalled", ConditionStatus.FALSE, Reason.FINALITY_MOVING
        )
    loop = loop_condition(process, now, loop_error)
    return state.model_copy(update={"process": (chain_stalled, loop)})


def loop_condition(
    previous: Mapping[str, Condition], now: datetime, error: str | None
) -> Condition:
    """LoopHealthy: True after a pass that completed, False (critical) after a failed one."""
    if error is None:
        return _set(previous, now, "LoopHealthy", ConditionStatus.TRUE, Reason.PASSING)
    return _set(
        previous,
        now,
        "LoopHealthy",
        ConditionStatus.FALSE,
        Reason.PASS_FAILED,
        message=error,
        severity="critical",
    )


def with_loop_failure(conditions: Conditions, now: datetime, error: str) -> Conditions:
    """The same conditions after a pass that failed before observing."""
    process = {c.type: c for c in conditions.process}
    process["LoopHealthy"] = loop_condition(process, now, error)
    return conditions.model_copy(update={"process": tuple(process.values())})


def with_ha_lease(
    conditions: Conditions, now: datetime, shard: str, state: str, reason: str
) -> Conditions:
    """``HaLeaseHeld`` (``run --ha``): True while this process owns ``shard``; False as a
    standby; False and critical after the lease was lost (``state`` = ``fenced``)."""
    process = {c.type: c for c in conditions.process}
    if state in ("waiting", "active"):
        held = _set(
            process,
            now,
            "HaLeaseHeld",
            ConditionStatus.TRUE,
            Reason.LEASE_HELD,
            message=f"owns shard {shard} ({state})",
        )
    elif state == "fenced":
        held = _set(
            process,
            now,
            "HaLeaseHeld",
            ConditionStatus.FALSE,
            Reason.LEASE_LOST,
            message=f"lost the lease of shard {shard}: {reason}; not signing or relaying",
            severity="critical",
        )
    else:
        held = _set(
            process,
            now,
            "HaLeaseHeld",
            ConditionStatus.FALSE,
            Reason.STANDBY,
            message=f"standby for shard {shard}",
        )
    process["HaLeaseHeld"] = held
    return conditions.model_copy(update={"process": tuple(process.values())})


def with_etcd_tls(conditions: Conditions, now: datetime, problem: str) -> Conditions:
    """``HaEtcdTls`` (``run --ha`` over TLS): False (warn) while changed ``settings.ha.tls``
    files are refused (etcd connections keep the files read before); True otherwise."""
    process = {c.type: c for c in conditions.process}
    if problem:
        tls = _set(
            process,
            now,
            "HaEtcdTls",
            ConditionStatus.FALSE,
            Reason.TLS_FILES_REFUSED,
            message=problem,
            severity="warn",
        )
    else:
        tls = _set(process, now, "HaEtcdTls", ConditionStatus.TRUE, Reason.OK)
    process["HaEtcdTls"] = tls
    return conditions.model_copy(update={"process": tuple(process.values())})


def process_alerts(conditions: Conditions | None) -> tuple[Alert, ...]:
    """The process conditions that need a human, as alerts (target ``process/<type>``):
    ChainStalled, LoopHealthy failing, HaLeaseHeld lost. They reach the alert webhook
    beside the plan's alerts, so a page goes out even when no pass can plan or write."""
    if conditions is None:
        return ()
    return tuple(
        Alert(
            target=f"process/{c.type}",
            severity=Severity(c.severity),
            message=f"{c.reason.value}: {c.message}" if c.message else c.reason.value,
        )
        for c in conditions.process
        if c.severity in (Severity.WARN.value, Severity.CRITICAL.value)
    )


def condition_document(condition: Condition) -> dict[str, object]:
    return {
        "status": condition.status.value,
        "reason": condition.reason.value,
        "message": condition.message,
        "last_transition": condition.last_transition.isoformat(),
        "severity": condition.severity,
    }
