"""Which pools, workers and signers belong to a shard (``settings.shards``): one rule
shared by the inventory check (a signer in two shards is an error) and by ``run
--shard`` (a process takes only its shards' pools)."""

from __future__ import annotations

from collections.abc import Sequence

from poolkeeper.model.desired import PoolSpec, ShardSpec, WorkerSpec


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
