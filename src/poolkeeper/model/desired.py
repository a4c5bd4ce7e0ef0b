"""What the operator declares: settings, pools, workers and accounts.

These types are the validated form of the inventory. They are immutable; the loader
builds them (``poolkeeper.inventory``), the planner reads them. Each spec remembers
where it was written (``SourceRef``) so every message can point at ``file:line:col``.
No secret is ever a field here: accounts carry names, derivation labels and public
addresses only.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, ConfigDict, Field

from poolkeeper.model.amounts import parse_amount
from poolkeeper.model.trusted import SharedFieldsSet

Plancks = Annotated[int, BeforeValidator(parse_amount)]
"""An amount of PHA in plancks; the inventory may write it as ``"5000 PHA"``."""


class _Frozen(SharedFieldsSet):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SourceRef(_Frozen):
    """Where a spec was written in the inventory (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class WorkerState(StrEnum):
    """The state an operator wants a worker in."""

    COMPUTING = "computing"
    """Synced, registered, in its pool and computing with its stake."""
    IDLE = "idle"
    """Synced, registered and in its pool, but not computing (stopped and reclaimed if it was)."""
    SYNC_ONLY = "sync_only"
    """Kept synced by a relay; never registered or added to a pool by poolkeeper."""
    REMOVED = "removed"
    """Out of its pool: stopped, cooled down, reclaimed, removed; its relay stops."""


class AccountRole(StrEnum):
    """What an account is for; decides which thresholds and checks apply."""

    OWNER = "owner"
    """Owns pools on chain."""
    OPERATOR = "operator"
    """Signs pool operations, usually as a StakePoolManager proxy of the owner."""
    RELAY_SIGNER = "relay_signer"
    """Pays fees for worker registration and egress messages."""
    FUNDING = "funding"
    """Source of top-ups."""
    WATCH = "watch"
    """Only watched: balance alerts, never signs."""


class TopUpPolicy(_Frozen):
    """Keep an account at ``to`` by transfers from ``from_account``, at most ``max_per_day``."""

    from_account: str = Field(alias="from")
    to: Plancks
    max_per_day: Plancks


class KeySource(_Frozen):
    """Where an account's own signing secret (SURI, mnemonic or 0x seed) is read from.

    Names a source only, like ``settings.secrets``; the secret never enters the inventory.
    """

    env: str | None = None
    file: str | None = None


class AccountSpec(_Frozen):
    """An account poolkeeper watches and, when it has a derivation label, can sign with."""

    name: str
    role: AccountRole
    address: str | None = None
    """SS58 address; written by ``accounts generate`` for derived accounts."""
    derivation: str | None = None
    """Hard-derivation label below the master secret, e.g. ``operator//pool-a``."""
    key: KeySource | None = None
    """Where an existing (not derived) secret of this account is read: env or 0600 file."""
    warn_below: Plancks | None = None
    critical_below: Plancks | None = None
    top_up: TopUpPolicy | None = None
    source: SourceRef | None = None


class PoolSpec(_Frozen):
    """A stake pool (PhalaStakePoolv2) and who may operate it."""

    name: str
    pid: int | None = None
    """On-chain pool id; ``None`` with ``create: true`` means create it."""
    owner: str
    """Name of the owner account."""
    operator: str | None = None
    """Name of the signing account; when it differs from the owner it signs via ``Proxy.proxy``."""
    create: bool = False
    cap: Plancks | None = None
    commission: str | None = None
    """Payout commission, e.g. ``"5%"``."""
    default_stake: Plancks | None = None
    state: Literal["active", "draining"] = "active"
    """``draining``: every worker of the pool is taken out (stop, cool-down, reclaim,
    remove), whatever its own state says; the stake left is reported."""
    source: SourceRef | None = None

    @property
    def draining(self) -> bool:
        return self.state == "draining"

    @property
    def signer(self) -> str:
        """Account name that signs this pool's transactions."""
        return self.operator or self.owner

    @property
    def proxied(self) -> bool:
        """Whether the signer acts as a proxy of the owner."""
        return self.operator is not None and self.operator != self.owner


class WorkerRelaySettings(_Frozen):
    """A worker's own relay choice, overriding ``settings.relay``."""

    mode: Literal["internal", "external"] | None = None
    external_command: tuple[str, ...] | None = None
    """Argv template for this worker; giving one implies ``mode: external``."""


class WorkerSpec(_Frozen):
    """A worker machine: its pRuntime endpoint, its pool and what it should be doing."""

    name: str
    endpoint: str
    pool: str | None = None
    """Name of the pool; may be omitted only for ``sync_only`` workers."""
    stake: Plancks | None = None
    """Stake when computing; defaults to the pool's ``default_stake``."""
    state: WorkerState = WorkerState.COMPUTING
    labels: dict[str, str] = Field(default_factory=dict)
    pubkey: str | None = None
    """Optional pinned worker public key (hex); observed from pRuntime when absent."""
    relay: WorkerRelaySettings | None = None
    source: SourceRef | None = None


class ChainSettings(_Frozen):
    """How to reach the chain and when a transaction counts as done."""

    endpoints: tuple[str, ...] = ("ws://127.0.0.1:9944",)
    wait_for: Literal["inclusion", "finalization"] = "inclusion"
    relaychain_endpoints: tuple[str, ...] = ()
    """Relay-chain node URLs: set for a parachain (Khala, Phala), whose pRuntimes follow
    the relay chain's headers (parachain mode); empty for a solo chain."""

    @property
    def is_parachain(self) -> bool:
        return bool(self.relaychain_endpoints)


class SecretSettings(_Frozen):
    """Where the master secret comes from. Names a source, never holds a secret."""

    env: str | None = "POOLKEEPER_MNEMONIC"
    file: str | None = None
    keyring: str | None = None


class RelayKeySource(_Frozen):
    """Where the fee-paying key of external relays is read from. Names a source only."""

    env: str | None = None
    file: str | None = None


class RelaySettings(_Frozen):
    """Relay tuning (see PROTOCOL.md §2)."""

    sync_blocks: int = Field(default=4, ge=1, le=1000)
    attestation_provider: Literal["none", "ias", "dcap"] = "ias"
    mode: Literal["internal", "external"] = "internal"
    external_command: tuple[str, ...] = ()
    """Argv template for an external relay (e.g. pherry) when ``mode`` is external."""
    external_key: RelayKeySource | None = None
    """The SURI external relays sign with, handed over as a file or an env var (never argv)."""
    external_backoff_seconds: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
    """Delays before restarting an external relay that exited (each jittered ±20 %)."""


class LoopSettings(_Frozen):
    """Reconcile loop tuning."""

    interval_seconds: float = Field(default=30.0, gt=0)
    backoff_seconds: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
    pass_timeout_seconds: float = Field(default=120.0, gt=0)
    """A pass still running after this long is cancelled and counted as failed."""
    self_heal: bool = False


class AlertSettings(_Frozen):
    """Where alerts go besides the plan."""

    webhook_url: str | None = None
    debounce_seconds: float = 60.0


class RunwaySettings(_Frozen):
    """Funding runway: how long each signer's balance lasts at its recent fee burn."""

    alert_below_days: float | None = Field(default=None, gt=0)
    """Alert (``FundingRunwayLow``) when a signer's balance covers fewer days than this;
    none: the runway is shown but never alerted on."""
    window_days: float = Field(default=7.0, gt=0, le=365)
    """The burn rate is the fees paid over this many days (from the audit log)."""


class MetricsSettings(_Frozen):
    """Where ``run`` serves Prometheus metrics (``--metrics-addr`` overrides)."""

    listen: str | None = Field(default=None, pattern=r"^(\[[0-9A-Fa-f:.]+\]|[^:\s]*):\d{1,5}$")
    """``HOST:PORT`` (``[::1]:9100`` for IPv6); none: no metrics endpoint."""


class HaTlsSettings(_Frozen):
    """TLS to etcd (``--ha etcds://…``): paths of PEM files, relative to the inventory
    directory. Names files only; the key file must be mode 0600."""

    ca: str | None = None
    """The CA that signed etcd's server certificate (default: the system's roots)."""
    cert: str | None = None
    """This client's certificate, for etcd's ``--client-cert-auth`` (with ``key``)."""
    key: str | None = None
    """This client's private key (a 0600 file)."""
    server_name: str | None = None
    """The name to check etcd's certificate against, when the endpoints are addresses
    its certificate does not name."""


class HaAuthSettings(_Frozen):
    """etcd user/password authentication (etcd RBAC). Names where the password is, never
    holds it: a 0600 file (relative to the inventory directory) or an environment
    variable, exactly one of them."""

    user: str = Field(min_length=1)
    password_file: str | None = None
    password_env: str | None = None


class HaSettings(_Frozen):
    """Active/standby through an etcd lease (``run --ha`` overrides ``endpoints``)."""

    endpoints: tuple[str, ...] = ()
    """``HOST:PORT`` of the etcd members."""
    tls: HaTlsSettings | None = None
    """Speak TLS to etcd (given: ``--ha`` must be ``etcds://``)."""
    auth: HaAuthSettings | None = None
    """Authenticate to etcd as this user (etcd's ``auth enable``)."""
    cluster: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]+$")
    """Names this fleet's keys in etcd (``/poolkeeper/<cluster>/…``)."""
    ttl_seconds: float = Field(default=10.0, ge=1)
    lock_delay_seconds: float | None = Field(default=None, ge=0)
    """Default and minimum: ``pruntime_timeout_seconds``."""


class ShardSpec(_Frozen):
    """A group of pools with their signers, owned by one process at a time (HA)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    pools: tuple[str, ...] = ()
    """Pool names."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Pools whose workers all carry these labels."""
    relay_signer: str | None = None
    """The account signing for this shard's relays (each shard needs its own when
    several are declared: one writer per signer)."""
    source: SourceRef | None = None


class Settings(_Frozen):
    """Global settings; any inventory file may hold them, once."""

    network: Literal["khala", "phala", "devnet"] = "khala"
    chain: ChainSettings = ChainSettings()
    secrets: SecretSettings = SecretSettings()
    relay: RelaySettings = RelaySettings()
    loop: LoopSettings = LoopSettings()
    alerts: AlertSettings = AlertSettings()
    metrics: MetricsSettings = MetricsSettings()
    runway: RunwaySettings = RunwaySettings()
    warn_below: Plancks = 20 * 10**12
    critical_below: Plancks = 5 * 10**12
    pruntime_concurrency: int = Field(default=500, ge=1)
    pruntime_timeout_seconds: float = Field(default=10.0, gt=0)
    state_dir: str = ".poolkeeper"
    ha: HaSettings | None = None
    shards: tuple[ShardSpec, ...] = ()
    source: SourceRef | None = None

    @property
    def ss58_prefix(self) -> int:
        """SS58 prefix of the network (Khala, Phala and the devnet all use 30)."""
        return 30


def commission_permill(text: str) -> int:
    """A declared commission (``"5%"``, ``"2.5%"``) as the chain's Permill (50000, 25000)."""
    return int(Decimal(text.strip().removesuffix("%").strip()) * 10_000)


def external_relay_command(settings: Settings, worker: WorkerSpec) -> tuple[str, ...] | None:
    """The argv template when this worker's relay is external, else ``None``."""
    own = worker.relay or WorkerRelaySettings()
    mode = own.mode or ("external" if own.external_command else settings.relay.mode)
    if mode != "external":
        return None
    return own.external_command or settings.relay.external_command


class Desired(_Frozen):
    """The whole validated inventory."""

    settings: Settings = Settings()
    pools: tuple[PoolSpec, ...] = ()
    workers: tuple[WorkerSpec, ...] = ()
    accounts: tuple[AccountSpec, ...] = ()

    @cached_property
    def pools_by_name(self) -> dict[str, PoolSpec]:
        return {p.name: p for p in self.pools}

    @cached_property
    def workers_by_name(self) -> dict[str, WorkerSpec]:
        return {w.name: w for w in self.workers}

    @cached_property
    def accounts_by_name(self) -> dict[str, AccountSpec]:
        return {a.name: a for a in self.accounts}

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose ``*_by_name`` maps are computed afresh (pydantic copies the cached
        values along: a copy with fewer workers or changed accounts kept the old maps)."""
        copied = super().model_copy(update=update, deep=deep)
        for name in ("pools_by_name", "workers_by_name", "accounts_by_name"):
            copied.__dict__.pop(name, None)
        return copied

    def stake_of(self, worker: WorkerSpec) -> int | None:
        """The stake a worker should compute with: its own, else its pool's default."""
        if worker.stake is not None:
            return worker.stake
        pool = self.pools_by_name.get(worker.pool) if worker.pool else None
        return pool.default_stake if pool else None
