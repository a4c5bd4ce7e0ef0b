"""What poolkeeper saw: the chain and every pRuntime, at one moment.

An ``Observed`` is a snapshot, built fresh on every pass by ``poolkeeper.observe`` (or
read from a JSON snapshot file for offline planning). Failures are data: a pRuntime
that could not be reached is a ``PRuntimeObservation`` with an ``error``, not an
exception. Keys are the chain's own identities: pRuntimes by endpoint URL, chain
workers by public key (lowercase hex without ``0x``), accounts by SS58 address, pools
by pid. The planner joins them with the inventory.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field

from poolkeeper.model.trusted import SharedFieldsSet


class _Frozen(SharedFieldsSet):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PRuntimeInfo(_Frozen):
    """The parts of pRuntime's ``PhactoryInfo`` a pool keeper needs (PROTOCOL.md §1.3)."""

    initialized: bool
    registered: bool = False
    headernum: int = 0
    """Next relay (or solo) header the pRuntime expects."""
    para_headernum: int = 0
    """Next parachain header the pRuntime expects."""
    blocknum: int = 0
    """Next block the pRuntime expects to dispatch."""
    public_key: str | None = None
    """Worker identity key, lowercase hex without 0x; None before init."""
    ecdh_public_key: str | None = None
    genesis_block_hash: str | None = None
    score: int = 0
    version: str = ""
    git_revision: str = ""
    dev_mode: bool = False
    pending_messages: int = 0
    genesis_block: int | None = None
    """Number of the block the pRuntime was initialized from (``system.genesis_block``);
    None when it does not say (then its genesis is not judged)."""


class PRuntimeObservation(_Frozen):
    """One pRuntime, as seen (or not) at ``read_at``."""

    endpoint: str
    info: PRuntimeInfo | None = None
    error: str | None = None
    """Why ``info`` is missing: unreachable, timeout, HTTP status and message."""
    read_at: datetime | None = None


class SessionState(StrEnum):
    """``PhalaComputation.Sessions[..].state`` (PROTOCOL.md §3.4)."""

    READY = "Ready"
    WORKER_IDLE = "WorkerIdle"
    WORKER_UNRESPONSIVE = "WorkerUnresponsive"
    WORKER_COOLING_DOWN = "WorkerCoolingDown"


class ChainWorker(_Frozen):
    """A worker as the chain knows it, joined from the registry, computation and pool pallets."""

    pubkey: str
    """Lowercase hex without 0x."""
    operator: str | None = None
    """``Workers[pubkey].operator`` as SS58."""
    initial_score: int | None = None
    added_at: int | None = None
    """``WorkerAddedAt`` block."""
    session: str | None = None
    """Session account (``WorkerBindings``) as SS58; None when not bound."""
    session_state: SessionState | None = None
    stake: int | None = None
    """``Stakes[session]`` in plancks."""
    cool_down_start: int | None = None
    """Unix seconds at which cool-down started (0 when never)."""
    pool_pid: int | None = None
    """``WorkerAssignments[pubkey]``."""
    registered_at: int | None = None
    """``Workers[pubkey].last_updated``: unix seconds of the registration (or of its last
    update, e.g. the initial score), the start of the benchmark while no score is set."""


class ObservedPool(_Frozen):
    """A stake pool on chain."""

    pid: int
    owner: str
    """Owner as SS58."""
    pool_account: str | None = None
    workers: tuple[str, ...] = ()
    """Worker pubkeys (hex) in the pool."""
    cd_workers: tuple[str, ...] = ()
    """Worker pubkeys cooling down."""
    free_stake: int = 0
    """W-PHA held by the pool account, available to start computing."""
    cap: int | None = None
    commission: int | None = None
    """Permill."""


class ObservedAccount(_Frozen):
    """An account's balance and nonce."""

    address: str
    free: int = 0
    reserved: int = 0
    frozen: int = 0
    nonce: int = 0


class ProxyGrant(_Frozen):
    """A proxy the chain records: ``delegate`` may act for ``real`` with ``proxy_type``."""

    real: str
    delegate: str
    proxy_type: str


class FeesPaid(_Frozen):
    """Fees one signer paid within the runway window (from the audit log)."""

    plancks: int = 0
    extrinsics: int = 0


class ChainHead(_Frozen):
    """Where the chain was when it was read."""

    best_number: int
    best_hash: str = ""
    finalized_number: int
    finalized_hash: str = ""
    timestamp_ms: int = 0
    """``Timestamp.Now`` at the best block: the chain's clock for cool-down arithmetic."""


class RelayStatus(StrEnum):
    """What this poolkeeper process's relay for a worker is doing."""

    STOPPED = "stopped"
    RUNNING = "running"
    BACKING_OFF = "backing_off"
    STALLED = "stalled"


class Observed(_Frozen):
    """Everything one observation pass saw."""

    format_version: int = 1
    read_at: datetime
    head: ChainHead
    cool_down_period: int = 604800
    """``PhalaComputation.CoolDownPeriod`` in seconds."""
    block_time_ms: int | None = None
    """Average time between blocks measured on the chain (``Timestamp.Now`` at the best
    block and some blocks before it); None when not measured (then block counts are not
    turned into times)."""
    benchmark_duration: int | None = None
    """``PhalaRegistry.BenchmarkDuration``: blocks a newly registered worker benchmarks
    before its initial score is set; None when the chain does not say."""
    sync_rates: dict[str, float] = Field(default_factory=dict)
    """By endpoint: blocks per second the pRuntime advanced between two observations
    (smoothed; the observe layer measures it). Missing: not measured yet."""
    pruntimes: dict[str, PRuntimeObservation] = Field(default_factory=dict)
    chain_workers: dict[str, ChainWorker] = Field(default_factory=dict)
    pools: dict[int, ObservedPool] = Field(default_factory=dict)
    accounts: dict[str, ObservedAccount] = Field(default_factory=dict)
    proxies: tuple[ProxyGrant, ...] = ()
    relays: dict[str, RelayStatus] = Field(default_factory=dict)
    """Relay status by worker name, for relays this process runs."""
    relay_details: dict[str, str] = Field(default_factory=dict)
    """One line per relay of this process (external: running / exited with code N / ...)."""
    pool_settings_known: dict[int, dict[str, int]] = Field(default_factory=dict)
    """Per pid, the last value of each pool setting (``cap``, ``commission`` in Permill)
    seen equal to the inventory (journal): a later difference while the inventory still
    says the same is a change someone else made on chain (drift)."""
    topped_up_today: dict[str, int] = Field(default_factory=dict)
    """Plancks already sent today by top-ups, by destination address (from the journal)."""
    genesis_hashes: dict[int, str] = Field(default_factory=dict)
    """The header chain's block hash (the relay chain's on a parachain) at each genesis
    block number the pRuntimes report: a pRuntime whose genesis hash differs is on
    another chain. Empty when not read (offline snapshots)."""
    fees_paid: dict[str, FeesPaid] = Field(default_factory=dict)
    """By signer address: fees paid within ``settings.runway.window_days`` before
    ``read_at``, from the audit log (signers that paid none are absent)."""
    fees_since: datetime | None = None
    """When the fee record starts: the later of the window's start and the audit log's
    first entry; None when there is no audit log (then no burn rate is known)."""
    remembered_pubkeys: dict[str, str] = Field(default_factory=dict)
    """By endpoint: the public key a pRuntime reported earlier, for pRuntimes that did
    not report one now (down or reset), so their chain state stays visible."""
