"""``run --shard``: a process keeps only its shards' pools, their workers and its own
relay signer; an unknown or missing shard is refused with a clear message."""

from __future__ import annotations

import pytest

from poolkeeper.ha.setup import ALL, restrict, shard_name
from poolkeeper.model.desired import AccountSpec, Desired, PoolSpec, Settings, ShardSpec, WorkerSpec


def desired() -> Desired:
    return Desired(
        settings=Settings(
            shards=(
                ShardSpec(name="east", pools=("a",), relay_signer="relay-east"),
                ShardSpec(name="west", labels={"dc": "west"}, relay_signer="relay-west"),
            )
        ),
        accounts=(
            AccountSpec(name="owner", role="owner"),
            AccountSpec(name="relay-east", role="relay_signer"),
            AccountSpec(name="relay-west", role="relay_signer"),
        ),
        pools=(PoolSpec(name="a", owner="owner"), PoolSpec(name="b", owner="owner")),
        workers=(
            WorkerSpec(name="w1", endpoint="http://h:1", pool="a"),
            WorkerSpec(name="w2", endpoint="http://h:2", pool="b", labels={"dc": "west"}),
        ),
    )


def test_restrict_keeps_the_shards_pools_workers_and_relay_signer() -> None:
    west = restrict(desired(), ["west"])
    assert [p.name for p in west.pools] == ["b"]
    assert [w.name for w in west.workers] == ["w2"]
    assert [a.name for a in west.accounts] == ["owner", "relay-west"]
    both = restrict(desired(), ["east", "west"])
    assert [p.name for p in both.pools] == ["a", "b"]
    assert restrict(desired(), []) == desired()


def test_shard_name_rules() -> None:
    assert shard_name(Desired(), []) == ALL
    assert shard_name(desired(), ["east"]) == "east"
    with pytest.raises(ValueError, match="needs --shard"):
        shard_name(desired(), [])
    with pytest.raises(ValueError, match=r"'north' is not in settings\.shards"):
        shard_name(desired(), ["north"])
    with pytest.raises(ValueError, match="one --shard per process"):
        shard_name(desired(), ["east", "west"])
