"""Who owns which shard, read from etcd (``status --ha``): the owner's identity, since
when, and the lease's remaining TTL — the view any host has, not only the owner's."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from poolkeeper.ha.agent import shard_prefix
from poolkeeper.ha.ports import LeaseBackend


async def ownership(
    backend: LeaseBackend, cluster: str, shards: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per shard; ``owner`` None when no process holds it."""
    rows: list[dict[str, Any]] = []
    for shard in shards:
        prefix = shard_prefix(cluster, shard)
        found = await backend.read(prefix + "owner")
        journal = await backend.read_prefix(prefix + "journal/")
        row: dict[str, Any] = {
            "shard": shard,
            "owner": None,
            "since": None,
            "lease_ttl_seconds": None,
            "unsettled_in_etcd": len(journal),
        }
        if found is not None:
            value, lease = found
            try:
                holder = json.loads(value)
            except ValueError:
                holder = {"identity": value}
            row.update(
                owner=holder.get("identity"),
                since=holder.get("since"),
                lease_ttl_seconds=await backend.lease_ttl(lease) if lease else None,
            )
        rows.append(row)
    return rows
