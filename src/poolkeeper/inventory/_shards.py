"""Checks of ``settings.shards``: every pool named exists, no pool is in two shards, and
no signing account (a pool's signer, its owner when poolkeeper holds the owner's key, a
shard's relay signer, the funding account of the top-ups a shard keeps) belongs to two
shards — each signer's nonces must have exactly one writer, whichever process owns its
shard.
Also the one static check of ``settings.ha.tls`` (a client certificate needs its key)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from poolkeeper.inventory._entries import Entry
from poolkeeper.inventory._yaml import Problem
from poolkeeper.model.desired import AccountRole, AccountSpec, PoolSpec, Settings, WorkerSpec
from poolkeeper.model.shards import pools_of_shard, top_up_shards


def shard_problems(
    entry: Entry[Settings],
    settings: Settings,
    pools: list[PoolSpec],
    workers: list[WorkerSpec],
    accounts: list[AccountSpec],
) -> Iterable[Problem]:
    yield from _ha_tls_problems(entry, settings)
    shards = settings.shards
    if not shards:
        return
    by_name = {p.name: p for p in pools}
    account_names = {a.name for a in accounts}
    accounts_by_name = {a.name: a for a in accounts}
    keyed = {a.name for a in accounts if a.derivation is not None or a.key is not None}
    top_up_keeper = top_up_shards(shards, pools, workers, accounts)
    pool_owner: dict[str, str] = {}
    signer_owner: dict[str, str] = {}
    seen: dict[str, int] = {}
    for i, shard in enumerate(shards):
        if shard.name in seen:
            yield entry.field(
                ("shards", i, "name"),
                f"shard {shard.name!r} is declared twice (also shards[{seen[shard.name]}])",
            )
        seen.setdefault(shard.name, i)
        for j, name in enumerate(shard.pools):
            if name not in by_name:
                yield entry.field(("shards", i, "pools", j), f"unknown pool {name!r}")
        members = pools_of_shard(shard, pools, workers)
        for name in members:
            other = pool_owner.setdefault(name, shard.name)
            if other != shard.name:
                yield entry.field(
                    ("shards", i), f"pool {name!r} is in shards {other!r} and {shard.name!r}"
                )
        signers: dict[str, Any] = {}
        why: dict[str, str] = {}
        for name in members:
            where: Any = (
                ("shards", i, "pools", shard.pools.index(name))
                if name in shard.pools
                else ("shards", i, "labels")
            )
            signers.setdefault(by_name[name].signer, where)
            owner = by_name[name].owner
            if owner in keyed and owner not in signers:  # it signs creation and settings
                signers[owner] = where
                why[owner] = f" (owner of pool {name!r}: it signs pool creation and settings)"
        for funded, keeper in top_up_keeper.items():
            funder = accounts_by_name[funded].top_up
            if keeper == shard.name and funder is not None and funder.from_account not in signers:
                signers[funder.from_account] = ("shards", i)
                why[funder.from_account] = f" (it funds the top-ups of {funded!r})"
        if shard.relay_signer is not None:
            if shard.relay_signer not in account_names:
                yield entry.field(
                    ("shards", i, "relay_signer"), f"unknown account {shard.relay_signer!r}"
                )
            signers[shard.relay_signer] = ("shards", i, "relay_signer")
        for signer, loc in signers.items():
            other = signer_owner.setdefault(signer, shard.name)
            if other != shard.name:
                yield entry.field(
                    loc,
                    f"account {signer!r} signs in shards {other!r} and {shard.name!r}"
                    f"{why.get(signer, '')}: a signer belongs to one shard (one writer of its "
                    "nonces)",
                )
    relay_accounts = [a.name for a in accounts if a.role is AccountRole.RELAY_SIGNER]
    if len(shards) > 1 and relay_accounts:
        for i, shard in enumerate(shards):
            if shard.relay_signer is None:
                yield entry.field(
                    ("shards", i),
                    f"shard {shard.name!r} needs its own relay_signer (an account with role "
                    f"relay_signer, e.g. one of {relay_accounts}): relays of two shards "
                    "must not share one signer",
                )


def _ha_tls_problems(entry: Entry[Settings], settings: Settings) -> Iterable[Problem]:
    """A client certificate and its key go together (etcd's client-cert auth needs both)."""
    tls = settings.ha.tls if settings.ha else None
    if tls is None or bool(tls.cert) == bool(tls.key):
        return
    given, missing = ("cert", "key") if tls.cert else ("key", "cert")
    yield entry.field(
        ("ha", "tls", given),
        f"a client {'certificate' if given == 'cert' else 'key'} needs its "
        f"{'key' if missing == 'key' else 'certificate'}: set settings.ha.tls.{missing} too",
    )
