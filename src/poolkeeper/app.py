"""Composition root: builds the real ports of a ``Reconciler`` (chain, pRuntimes, relays,
journal, keys, notifier) from an inventory, a master secret and a state dir.

The reconciler is given its collaborators rather than building them, so that unit tests
can drive a pass with fakes; every front end (the CLI commands, ``poolkeeper relay``, the
TUI) builds it here, so they all run the same wiring.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from poolkeeper.apply.executor import AuditSink
from poolkeeper.apply.journal import Journal
from poolkeeper.apply.pool_settings import PoolSettingsMemory
from poolkeeper.chain import SubstrateChain
from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain.relay_source import ParachainSource, RelaySource
from poolkeeper.keys import KeyRing, Mnemonic
from poolkeeper.loop import Notifier, PassGate, Reconciler, ReconcilerPorts, RelayPort
from poolkeeper.model.desired import Desired
from poolkeeper.notify import WebhookNotifier
from poolkeeper.observe.pruntime_info import PRuntimeInfoReader
from poolkeeper.observe.pubkeys import PubkeyMemory
from poolkeeper.pruntime import PRuntimeTransport
from poolkeeper.relay.external import ExternalRelayFactory
from poolkeeper.relay.supervisor import RelaySupervisor
from poolkeeper.relay.worker import Submit


def build_ports(
    desired: Desired,
    *,
    mnemonic: Mnemonic | None,
    state_dir: Path,
    chain_url: str | None = None,
    relay_idle_seconds: float = 1.0,
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
    relay_idle_seconds: float = 1.0,
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
