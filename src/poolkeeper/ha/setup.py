"""Builds the HA parts of one ``poolkeeper run --ha`` from settings and flags (the etcd
backends, the fence, the agent, the mirrored journal and the gate), and restricts an
inventory to the shards this process takes (``--shard``)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from poolkeeper.ha.agent import ShardAgent
from poolkeeper.ha.auth import EtcdAuth, load_auth
from poolkeeper.ha.etcd import EtcdBackend, parse_ha_url
from poolkeeper.ha.fence import Fence
from poolkeeper.ha.gate import HaGate
from poolkeeper.ha.journal import BackendThread, MirroredJournal, ShardRoute
from poolkeeper.ha.tls import TlsMaterial, TlsSource, load_tls
from poolkeeper.model.desired import AccountRole, Desired
from poolkeeper.model.shards import pools_of_shard, top_up_shards

ALL = "all"
"""The shard name when ``settings.shards`` declares none: every pool."""


@dataclass
class HaRun:
    agents: dict[str, ShardAgent]
    """One agent (lease, owner key, fence) per shard this process campaigns for."""
    journal: MirroredJournal
    gate: HaGate
    remote: BackendThread

    def close(self) -> None:
        self.remote.close()


def shard_names(desired: Desired, wanted: Sequence[str]) -> tuple[str, ...]:
    """The shards this process campaigns for, each through its own lease (``--shard``,
    repeatable; none: the one shard ``all`` when ``settings.shards`` declares none);
    ValueError naming the fault."""
    declared = [s.name for s in desired.settings.shards]
    if not wanted:
        if declared:
            raise ValueError(f"--ha with shards declared needs --shard (one of {declared})")
        return (ALL,)
    unknown = [w for w in wanted if w not in declared]
    if unknown:
        raise ValueError(f"--shard {unknown[0]!r} is not in settings.shards ({declared})")
    return tuple(dict.fromkeys(wanted))


def restrict(desired: Desired, shards: Sequence[str]) -> Desired:
    """Only the pools (and their workers) of ``shards``, only their own relay signer, and
    top-ups only of the accounts these shards keep (``top_up_shards``: another shard's
    process tops up the others; two processes planning one top-up would both send it);
    unchanged when none is named."""
    if not shards:
        return desired
    pools: set[str] = set()
    relay_signers: set[str] = set()
    for shard in desired.settings.shards:
        if shard.name in shards:
            pools.update(pools_of_shard(shard, desired.pools, desired.workers))
            if shard.relay_signer:
                relay_signers.add(shard.relay_signer)
    accounts = desired.accounts
    if relay_signers:  # the other shards' relay signers are theirs alone
        accounts = tuple(
            a for a in accounts if a.role is not AccountRole.RELAY_SIGNER or a.name in relay_signers
        )
    keeper = top_up_shards(
        desired.settings.shards, desired.pools, desired.workers, desired.accounts
    )
    accounts = tuple(
        a.model_copy(update={"top_up": None})
        if a.top_up is not None and keeper.get(a.name) not in shards
        else a
        for a in accounts
    )
    return desired.model_copy(
        update={
            "pools": tuple(p for p in desired.pools if p.name in pools),
            "workers": tuple(w for w in desired.workers if w.pool in pools),
            "accounts": accounts,
        }
    )


@dataclass(frozen=True)
class EtcdTarget:
    """Where etcd is and how to speak to it (``tls`` None: plaintext; ``auth`` None: no
    user)."""

    endpoints: tuple[tuple[str, int], ...]
    tls: TlsMaterial | None = None
    auth: EtcdAuth | None = None
    tls_source: TlsSource | None = None
    """Where ``tls`` was read from: read again when the files change (a rotation)."""

    def backend(self, timeout: float, log: Callable[[str], None] | None = None) -> EtcdBackend:
        return EtcdBackend(
            self.endpoints,
            timeout=timeout,
            tls=self.tls,
            auth=self.auth,
            log=log,
            tls_source=self.tls_source,
        )


def target_of(desired: Desired, flag: str | None, base_dir: Path) -> EtcdTarget:
    """``--ha`` wins over ``settings.ha.endpoints``; TLS with ``etcds://`` or, for the
    settings' endpoints, with ``settings.ha.tls``, its files read and checked now (relative
    to ``base_dir``, the inventory directory); ``settings.ha.auth``'s password read now.
    ValueError naming the flag or setting."""
    ha = desired.settings.ha
    tls_settings = ha.tls if ha else None
    where = str(desired.settings.source) if desired.settings.source else ""
    if flag:
        endpoints, tls = parse_ha_url(flag)
        if tls_settings is not None and not tls:
            raise ValueError(
                f"--ha {flag!r} is plaintext but settings.ha.tls is set"
                + (f" ({where})" if where else "")
                + ": use etcds://"
            )
    else:
        if ha is None or not ha.endpoints:
            raise ValueError(
                "HA needs --ha etcd://HOST:PORT[,…] (etcds:// for TLS) or settings.ha.endpoints"
            )
        endpoints, _ = parse_ha_url("etcd://" + ",".join(ha.endpoints))
        tls = tls_settings is not None
    auth = load_auth(ha.auth if ha else None, base_dir, where)
    if not tls:
        return EtcdTarget(endpoints, auth=auth)
    if tls_settings is None:  # etcds:// alone: the system's roots, no files to watch
        return EtcdTarget(endpoints, load_tls(None, base_dir, where), auth)
    source = TlsSource(tls_settings, base_dir, where)
    return EtcdTarget(endpoints, source.load(), auth, source)


def build(
    desired: Desired,
    *,
    target: EtcdTarget,
    shards: Sequence[str],
    state_dir: Path,
    log: Callable[[str], None],
    on_fenced: Callable[[str, str], None],
) -> HaRun:
    """The agents of ``shards`` (one etcd client shared by them: they run on this
    process's loop), the journal mirrored per shard (its own client on its own thread)
    and the gate. ``on_fenced(shard, reason)``: a shard's lease was lost."""
    ha = desired.settings.ha
    ttl = ha.ttl_seconds if ha else 10.0
    delay = desired.settings.pruntime_timeout_seconds
    if ha and ha.lock_delay_seconds is not None:
        delay = max(delay, ha.lock_delay_seconds)
    cluster = ha.cluster if ha else "default"
    timeout = max(0.2, ttl / 6)
    identity = f"{socket.gethostname()}:{os.getpid()}"
    backend = target.backend(timeout, log)
    agents: dict[str, ShardAgent] = {}
    for shard in shards:
        agents[shard] = ShardAgent(
            backend=backend,
            cluster=cluster,
            shard=shard,
            identity=identity,
            fence=Fence(ttl_seconds=ttl, lock_delay_seconds=delay),
            log=log,
            on_fenced=_fenced_of(shard, on_fenced),
        )
    remote = BackendThread(lambda: target.backend(timeout), timeout * 2)
    journal = MirroredJournal(
        state_dir / "journal.sqlite",
        remote=remote,
        routes=[
            ShardRoute(
                shard=agent.shard,
                owner_key=agent.owner_key,
                owner_value=agent.owner_value,
                prefix=agent.journal_prefix,
                may_write=agent.may_sign,
                owned=agent.may_write,
            )
            for agent in agents.values()
        ],
    )
    return HaRun(agents, journal, HaGate(agents, journal, log), remote)


def _fenced_of(shard: str, on_fenced: Callable[[str, str], None]) -> Callable[[str], None]:
    return lambda reason: on_fenced(shard, reason)
