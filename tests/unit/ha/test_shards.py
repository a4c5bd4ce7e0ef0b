"""``run --shard``: a process keeps only its shards' pools, their workers and its own
relay signer; an unknown or missing shard is refused with a clear message."""

from __future__ import annotations

import pytest

from poolkeeper.ha.setup import ALL, restrict, shard_names
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


def test_shard_names_rules() -> None:
    assert shard_names(Desired(), []) == (ALL,)
    assert shard_names(desired(), ["east"]) == ("east",)
    # Several shards per process, each through its own lease; a repeat counts once.
    assert shard_names(desired(), ["west", "east", "west"]) == ("west", "east")
    with pytest.raises(ValueError, match="needs --shard"):
        shard_names(desired(), [])
    with pytest.raises(ValueError, match=r"'north' is not in settings\.shards"):
        shard_names(desired(), ["north"])


def test_lease_condition_lost_is_critical_and_keeps_its_transition_time() -> None:
    from datetime import UTC, datetime, timedelta

    from poolkeeper.model.conditions import Conditions, ConditionStatus, Reason, with_ha_lease

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    held = with_ha_lease(Conditions(), t0, "east", "active", "")
    (c,) = held.process
    assert (c.type, c.status, c.reason, c.severity) == (
        "HaLeaseHeld",
        ConditionStatus.TRUE,
        Reason.LEASE_HELD,
        None,
    )
    lost = with_ha_lease(held, t0 + timedelta(seconds=5), "east", "fenced", "renewal failed")
    (c,) = lost.process
    assert (c.status, c.reason, c.severity) == (
        ConditionStatus.FALSE,
        Reason.LEASE_LOST,
        "critical",
    )
    assert "renewal failed" in c.message and c.last_transition == t0 + timedelta(seconds=5)
    again = with_ha_lease(lost, t0 + timedelta(seconds=9), "east", "fenced", "renewal failed")
    assert again.process[0].last_transition == t0 + timedelta(seconds=5)
    standby = with_ha_lease(again, t0 + timedelta(seconds=20), "east", "standby", "")
    assert standby.process[0].reason is Reason.STANDBY and standby.process[0].severity is None


def topped_up() -> Desired:
    """Pools a (east) and b (west) share an owner; each operator and the shared owner are
    topped up from one funding account that no shard uses."""
    from poolkeeper.model.desired import TopUpPolicy

    policy = TopUpPolicy.model_validate({"from": "funder", "to": 10, "max_per_day": 100})
    base = desired()
    return base.model_copy(
        update={
            "pools": (
                PoolSpec(name="a", owner="owner", operator="op-a"),
                PoolSpec(name="b", owner="owner", operator="op-b"),
            ),
            "accounts": (
                AccountSpec(name="owner", role="owner", top_up=policy),
                AccountSpec(name="op-a", role="operator", top_up=policy),
                AccountSpec(name="op-b", role="operator", top_up=policy),
                AccountSpec(name="funder", role="funding", top_up=policy),
                AccountSpec(name="relay-east", role="relay_signer", top_up=policy),
                AccountSpec(name="relay-west", role="relay_signer", top_up=policy),
            ),
        }
    )


def test_each_account_is_topped_up_by_exactly_one_shard() -> None:
    full = topped_up()
    _ = full.accounts_by_name  # a cached map must not survive into the restricted copy
    kept: dict[str, list[str]] = {}
    for shard in ("east", "west"):
        part = restrict(full, [shard])
        for account in part.accounts:
            if account.top_up is not None:
                kept.setdefault(account.name, []).append(shard)
        assert part.accounts_by_name == {a.name: a for a in part.accounts}
        assert set(part.workers_by_name) == {w.name for w in part.workers}
    # The shared owner and the funder (used by no shard) go to the first shard.
    assert kept == {
        "owner": ["east"],
        "op-a": ["east"],
        "funder": ["east"],
        "relay-east": ["east"],
        "op-b": ["west"],
        "relay-west": ["west"],
    }
    both = restrict(full, ["east", "west"])
    assert all(a.top_up is not None for a in both.accounts)
