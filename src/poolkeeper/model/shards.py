"""Which pools, workers and signers belong to a shard (``settings.shards``): one rule
shared by the inventory check (a signer in two shards is an error) and by ``run
--shard`` (a process takes only its shards' pools, and tops up only its shards'
accounts)."""

from __future__ import annotations

from collections.abc import Sequence

from poolkeeper.model.desired import AccountSpec, PoolSpec, ShardSpec, WorkerSpec


def pools_of_shard(
    shard: ShardSpec, pools: Sequence[PoolSpec], workers: Sequence[WorkerSpec]
) -> list[str]:
    """Pool names of ``shard``: those named, and those whose workers all carry its labels."""
    names = [p.name for p in pools if p.name in shard.pools]
    if shard.labels:
        for pool in pools:
            members = [w for w in workers if w.pool == pool.name]
            if (
                pool.name not in names
                and members
                and all(all(w.labels.get(k) == v for k, v in shard.labels.items()) for w in members)
            ):
                names.append(pool.name)
    return names


def signers_of_pools(pools: Sequence[PoolSpec], names: Sequence[str]) -> set[str]:
    """Accounts that sign for these pools (their operator, or owner)."""
    return {p.signer for p in pools if p.name in names}


def top_up_shards(
    shards: Sequence[ShardSpec],
    pools: Sequence[PoolSpec],
    workers: Sequence[WorkerSpec],
    accounts: Sequence[AccountSpec],
) -> dict[str, str]:
    """The one shard that keeps each topped-up account's balance, by account name, so
    exactly one process plans its top-ups: the first shard (in ``settings.shards`` order)
    whose pools it owns or signs for, or whose relay signer it is; for an account no
    shard uses (a funding account topped up from another), the first shard."""
    if not shards:
        return {}
    users: dict[str, str] = {}
    for shard in shards:
        names = pools_of_shard(shard, pools, workers)
        for pool in pools:
            if pool.name in names:
                users.setdefault(pool.owner, shard.name)
                users.setdefault(pool.signer, shard.name)
        if shard.relay_signer:
            users.setdefault(shard.relay_signer, shard.name)
    return {a.name: users.get(a.name, shards[0].name) for a in accounts if a.top_up is not None}


def pool_shards(
    shards: Sequence[ShardSpec], pools: Sequence[PoolSpec], workers: Sequence[WorkerSpec]
) -> dict[str, str]:
    """The shard of each pool that is in one, by pool name (the first that names it)."""
    found: dict[str, str] = {}
    for shard in shards:
        for name in pools_of_shard(shard, pools, workers):
            found.setdefault(name, shard.name)
    return found


def signer_shards(
    shards: Sequence[ShardSpec],
    pools: Sequence[PoolSpec],
    workers: Sequence[WorkerSpec],
    accounts: Sequence[AccountSpec],
) -> dict[str, str]:
    """The shard each signing account belongs to, by account name: its pools' signers,
    their owners when poolkeeper holds the owner's key, its relay signer, and the funding
    accounts of the top-ups it keeps (the rule the inventory check enforces: a signer is
    in at most one shard). A process owning several shards routes each signature to the
    lease of this shard (``ha.journal``)."""
    keyed = {a.name for a in accounts if a.derivation is not None or a.key is not None}
    by_name = {a.name: a for a in accounts}
    keeper = top_up_shards(shards, pools, workers, accounts)
    found: dict[str, str] = {}
    for shard in shards:
        names = pools_of_shard(shard, pools, workers)
        for pool in pools:
            if pool.name in names:
                found.setdefault(pool.signer, shard.name)
                if pool.owner in keyed:
                    found.setdefault(pool.owner, shard.name)
        for funded, kept_by in keeper.items():
            top_up = by_name[funded].top_up
            if kept_by == shard.name and top_up is not None:
                found.setdefault(top_up.from_account, shard.name)
        if shard.relay_signer:
            found.setdefault(shard.relay_signer, shard.name)
    return found
