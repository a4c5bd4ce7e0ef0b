"""Genesis of the Phala pallets: the ``phala`` section, full state at block 0, small diffs after."""

from __future__ import annotations

from collections import Counter

import pytest
import sr25519

from poolkeeper_devnet.chain.pallets.phala import expand_phala_genesis, generated_worker_seed
from poolkeeper_devnet.chain.pallets.phala_stakepool import (
    lock_account,
    pool_account,
    session_account,
)
from tests.unit.devnet._phala_chain import PHA, Chain, account, make_worker


def test_pools_with_workers_at_genesis_are_ready_to_use() -> None:
    owner = account("owner")
    explicit, busy = make_worker("explicit"), make_worker("busy")
    chain = Chain(
        {
            "phala": {
                "cool_down_period": 30,
                "workers": [{"pubkey": make_worker("loose").pubkey, "operator": owner}],
                "pools": [
                    {
                        "owner": owner,
                        "free_stake": 5000 * PHA,
                        "workers": [
                            {"pubkey": explicit.pubkey, "initial_score": 1234},
                            {"pubkey": busy.pubkey, "stake": 700 * PHA},
                        ],
                        "worker_count": 3,
                    },
                    {"owner": account("second"), "worker_count": 2},
                ],
            }
        }
    )
    items = Counter(f"{c[0]}.{c[1]}" for c in chain.genesis_changes)
    assert items["PhalaRegistry.Workers"] == 8
    assert items["PhalaComputation.Sessions"] == 7
    assert items["PhalaComputation.WorkerBindings"] == 7
    assert items["PhalaStakePoolv2.WorkerAssignments"] == 7
    assert items["PhalaBasePool.Pools"] == 2
    assert ("PhalaComputation", "CoolDownPeriod", (), 30) in chain.genesis_changes
    assert ("PhalaBasePool", "PoolCount", (), 2) in chain.genesis_changes

    pool = chain.pallet("PhalaBasePool").pools[0]
    generated = "0x" + bytes(sr25519.pair_from_seed(generated_worker_seed(0, 0))[0]).hex()
    assert pool["workers"][:3] == [explicit.pubkey, busy.pubkey, generated]
    assert chain.pallet("Assets").balance(10000, pool_account(0, owner)) == 5000 * PHA
    assert chain.pallet("Assets").balance(10000, lock_account(0, owner)) == 700 * PHA
    computation = chain.pallet("PhalaComputation")
    assert computation.sessions[session_account(0, busy.pubkey)]["state"] == "WorkerIdle"
    assert computation.sessions[session_account(0, explicit.pubkey)]["state"] == "Ready"
    assert chain.pallet("PhalaRegistry").workers[explicit.pubkey]["initial_score"] == 1234

    # the genesis workers are usable right away: start one, stop and reclaim the busy one
    chain.call(
        "PhalaStakePoolv2", "start_computing", owner, pid=0, worker=explicit.pubkey, stake=100 * PHA
    )
    chain.call("PhalaStakePoolv2", "stop_computing", owner, pid=0, worker=busy.pubkey)
    chain.next_block(seconds=30)
    chain.call("PhalaStakePoolv2", "reclaim_pool_worker", owner, pid=0, worker=busy.pubkey)
    assert chain.pallet("Assets").balance(10000, pool_account(0, owner)) == 5600 * PHA
    # and a new pool gets the next pid
    assert chain.create_pool(owner) == 2


def test_storage_changes_after_genesis_hold_only_what_changed() -> None:
    owner = account("owner")
    chain = Chain(
        {"phala": {"pools": [{"owner": owner, "free_stake": 1000 * PHA, "worker_count": 50}]}}
    )
    assert len(chain.genesis_changes) > 250
    worker = chain.pallet("PhalaBasePool").pools[0]["workers"][7]
    chain.call("PhalaStakePoolv2", "start_computing", owner, pid=0, worker=worker, stake=100 * PHA)
    changed = sorted(f"{c[0]}.{c[1]}" for c in chain.drain())
    assert changed == [
        "Assets.Account",
        "Assets.Account",
        "PhalaComputation.NextSessionId",
        "PhalaComputation.OnlineWorkers",
        "PhalaComputation.Sessions",
        "PhalaComputation.Stakes",
        "PhalaMq.OutboundMessages",  # the Started message to the worker
    ]
    chain.next_block()
    assert [c[1] for c in chain.drain()] == ["OutboundMessages"]  # the Started message expires


def test_expand_rejects_more_than_200_workers_per_pool() -> None:
    with pytest.raises(ValueError, match="MaxPoolWorkers"):
        expand_phala_genesis({"pools": [{"owner": account("o"), "worker_count": 201}]})


def test_amounts_may_be_written_in_pha() -> None:
    owner = account("owner")
    sections = expand_phala_genesis(
        {"pools": [{"owner": owner, "free_stake": "1_000.5 PHA", "workers": []}]}
    )
    (entry,) = sections["Assets"]["accounts"]
    assert entry["balance"] == 1000 * PHA + PHA // 2


def test_pool_ids_may_be_chosen() -> None:
    owner = account("owner")
    chain = Chain({"phala": {"pools": [{"owner": owner, "pid": 5, "worker_count": 1}]}})
    assert list(chain.pallet("PhalaBasePool").pools) == [5]
    assert chain.create_pool(owner) == 6
    with pytest.raises(ValueError, match="twice"):
        expand_phala_genesis(
            {"pools": [{"owner": owner, "pid": 1}, {"owner": owner}, {"owner": owner}]}
        )
