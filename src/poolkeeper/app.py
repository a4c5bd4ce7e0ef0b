"""Composition root: the public way a front end gets a ``Reconciler`` for an inventory.

``make_reconciler`` takes an inventory directory's ``Desired`` and does what every
front end needs before a pass: the master secret, the state dir (and its one-writer
lock), the audit log, then the real ports (``build_ports``: chain, pRuntimes, relays,
journal, keys, notifier). The CLI commands, ``poolkeeper relay`` and the TUI all build
their reconciler here, so they run the same wiring; a front end imports this module,
never another front end's private glue. Faults are ``PoolkeeperError``s (each front end
words them its own way); nothing here prints.

The reconciler is given its collaborators rather than building them, so that unit tests
can drive a pass with fakes.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

from poolkeeper.apply.audit import AUDIT_FILE, AuditLog
from poolkeeper.apply.executor import AuditSink
from poolkeeper.apply.fee_history import FeeHistory
from poolkeeper.apply.journal import Journal
from poolkeeper.apply.pool_settings import PoolSettingsMemory
from poolkeeper.apply.statedir import StateDirLock
from poolkeeper.chain import AsyncRpc, SubstrateChain
from poolkeeper.chain.relay_source import ParachainSource, RelaySource
from poolkeeper.errors import KeysUnusable, SecretError
from poolkeeper.keys import KeyRing, Mnemonic, install_log_redaction, load_master_secret
from poolkeeper.loop import Notifier, PassGate, Reconciler, ReconcilerPorts, RelayPort
from poolkeeper.metrics import AuditFanOut
from poolkeeper.model.desired import Desired
from poolkeeper.notify import WebhookNotifier
from poolkeeper.observe.pruntime_info import PRuntimeInfoReader
from poolkeeper.observe.pubkeys import PubkeyMemory
from poolkeeper.observe.sync_rates import SyncRateMemory
from poolkeeper.pruntime import PRuntimeTransport
from poolkeeper.relay.external import ExternalRelayFactory
from poolkeeper.relay.supervisor import RelaySupervisor
from poolkeeper.relay.worker import AT_TIP_WAKE_SECONDS, Submit


def build_ports(
    desired: Desired,
    *,
    mnemonic: Mnemonic | None,
    state_dir: Path,
    chain_url: str | None = None,
    relay_idle_seconds: float = AT_TIP_WAKE_SECONDS,
    notifier: Notifier | None = None,
    inventory_dir: Path | None = None,
    audit: AuditSink | None = None,
    journal: Journal | None = None,
    gate: PassGate | None = None,
) -> ReconcilerPorts:
    """The real ports for ``desired``: the chain at ``chain_url`` (default: the first
    endpoint of the settings), the state dir's journal and memories, the key ring, the
    webhook notifier when ``settings.alerts.webhook_url`` is set (unless ``notifier``)."""
    url = chain_url or desired.settings.chain.endpoints[0]
    settings = desired.settings
    external_relays = ExternalRelayFactory(settings, url, state_dir, inventory_dir)
    # One socket per endpoint: the adapter's reads, writes and head subscription and the
    # relays' requests are all pipelined on it.
    rpc = AsyncRpc(url)
    chain = SubstrateChain(
        url, wait_for_finalization=settings.chain.wait_for == "finalization", rpc=rpc
    )
    closers = [rpc.close]
    source: RelaySource
    if settings.chain.relaychain_endpoints:
        relaychain_rpc = AsyncRpc(settings.chain.relaychain_endpoints[0])
        closers.append(relaychain_rpc.close)
        source = ParachainSource(rpc, relaychain_rpc)
    else:
        source = RelaySource(rpc)
    transport = PRuntimeTransport(
        max_in_flight=settings.pruntime_concurrency, timeout=settings.pruntime_timeout_seconds
    )
    closers.append(transport.aclose)
    journal = journal or Journal(state_dir / "journal.sqlite")
    pubkeys = PubkeyMemory(state_dir / "pubkeys.json")
    keys = KeyRing(desired, mnemonic, base_dir=inventory_dir)
    pool_settings = PoolSettingsMemory(state_dir / "pool_settings.json")
    alerts = settings.alerts
    if notifier is None and alerts.webhook_url:
        notifier = WebhookNotifier(
            alerts.webhook_url,
            debounce_seconds=alerts.debounce_seconds,
            state_file=state_dir / "alerts.json",
        )

    def relays(
        submit_for: Callable[[str], Submit | None], in_flight: Callable[[str], bool]
    ) -> RelayPort:
        return RelaySupervisor(
            source, transport, submit_for, idle_seconds=relay_idle_seconds, in_flight=in_flight
        )

    return ReconcilerPorts(
        chain=chain,
        source=source,
        pruntimes=PRuntimeInfoReader(transport),
        relays=relays,
        journal=journal,
        keys=keys,
        pubkeys=pubkeys,
        pool_settings=pool_settings,
        sync_rates=SyncRateMemory(state_dir / "sync_rates.json"),
        fee_history=FeeHistory(state_dir / AUDIT_FILE),
        external_relays=external_relays,
        notifier=notifier,
        audit=audit,
        gate=gate,
        closers=tuple(closers),
    )


def build_reconciler(
    desired: Desired,
    *,
    mnemonic: Mnemonic | None,
    state_dir: Path,
    chain_url: str | None = None,
    relay_idle_seconds: float = AT_TIP_WAKE_SECONDS,
    progress: Callable[[str], None] | None = None,
    notifier: Notifier | None = None,
    inventory_dir: Path | None = None,
    audit: AuditSink | None = None,
    journal: Journal | None = None,
    gate: PassGate | None = None,
) -> Reconciler:
    """A ``Reconciler`` of ``desired`` with the real ports (see ``build_ports``)."""
    ports = build_ports(
        desired,
        mnemonic=mnemonic,
        state_dir=state_dir,
        chain_url=chain_url,
        relay_idle_seconds=relay_idle_seconds,
        notifier=notifier,
        inventory_dir=inventory_dir,
        audit=audit,
        journal=journal,
        gate=gate,
    )
    return Reconciler(desired, ports, progress=progress)


def inventory_digest(directory: Path) -> str:
    """A digest of every inventory file's bytes (a saved plan is stale when it changes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml")):
        if any(part.startswith(".") for part in path.relative_to(directory).parts):
            continue
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def state_dir_of(desired: Desired, directory: Path) -> Path:
    """The inventory's state dir (relative paths are relative to the inventory's parent)."""
    state_dir = Path(desired.settings.state_dir)
    if not state_dir.is_absolute():
        state_dir = directory.parent / state_dir
    return state_dir


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def lock_state_dir(
    state_dir: Path, command: str, *, notice: Callable[[str], None] = _to_stderr
) -> StateDirLock:
    """Take the one-writer lock for this process's life; ``StateDirBusy`` when held."""
    return StateDirLock.acquire(state_dir, command, notice=notice)


def make_reconciler(
    desired: Desired,
    directory: Path,
    *,
    need_keys: bool,
    progress: Callable[[str], None] | None,
    lock: str | None = None,
    also_audit: AuditSink | None = None,
    ha: Callable[[Path], tuple[Journal, PassGate]] | None = None,
    notice: Callable[[str], None] = _to_stderr,
) -> Reconciler:
    """The reconciler of the inventory in ``directory`` (``desired``, loaded from it).

    ``need_keys``: every account that signs must have its key (``KeysUnusable`` names
    those without; a missing master secret is a ``SecretError`` then, else it only leaves
    derived accounts unable to sign). ``lock`` names the command when it writes: the state
    dir is then locked for the process's life (``StateDirBusy``) before the journal is
    opened. ``also_audit`` receives every audit entry beside the state dir's audit log;
    ``ha`` builds the journal and pass gate of an HA run; ``notice`` is told what the
    state dir setup repaired (default: stderr)."""
    install_log_redaction()
    # Accounts with their own key (``key:``) need no master secret; derived ones do.
    derived = any(a.derivation for a in desired.accounts)
    mnemonic: Mnemonic | None
    try:
        mnemonic = load_master_secret(desired.settings.secrets, base_dir=directory)
    except SecretError:
        if need_keys and derived:
            raise
        mnemonic = None
    state_dir = state_dir_of(desired, directory)
    if lock is not None:
        lock_state_dir(state_dir, lock, notice=notice)
    log = AuditLog(state_dir / AUDIT_FILE)
    journal, gate = ha(state_dir) if ha is not None else (None, None)
    reconciler = build_reconciler(
        desired,
        mnemonic=mnemonic,
        state_dir=state_dir,
        progress=progress,
        inventory_dir=directory,
        audit=AuditFanOut(log, also_audit) if also_audit else log,
        journal=journal,
        gate=gate,
    )
    problems = reconciler.keys.problems()
    if need_keys and problems:
        raise KeysUnusable(list(problems.values()))
    return reconciler
