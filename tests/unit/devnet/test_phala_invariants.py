"""Random sequences of pool operations keep the books and the bindings consistent.

Whatever succeeds or fails, after every step: locked W-PHA equals the recorded stakes,
free + locked equals the pool's value, bindings and assignments agree, OnlineWorkers
counts the computing sessions, and a failed call changed nothing.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from poolkeeper_devnet.chain.pallets import DispatchError
from poolkeeper_devnet.chain.pallets.phala_computation import COMPUTING_STATES
from poolkeeper_devnet.chain.pallets.phala_stakepool import (
    lock_account,
    pool_account,
    session_account,
)
from tests.unit.devnet._phala_chain import PHA, Chain, account, make_worker

OWNER = account("owner")
WORKERS = [make_worker(f"inv-{i}") for i in range(2)]
OPERATIONS = ["add", "remove", "start", "stop", "reclaim", "restart", "unbind", "wait", "heartbeat"]


def fresh_chain() -> Chain:
    chain = Chain(
        {"phala": {"cool_down_period": 60, "heartbeat_interval": 2, "unresponsive_after": 3}}
    )
    for worker in WORKERS:
        worker.sequence = 0
        chain.register(worker, OWNER)
        chain.bench(worker, 1000)
    chain.create_pool(OWNER)
    chain.fund_pool(OWNER, 0, 3000 * PHA)
    for worker in WORKERS:
        chain.call("PhalaStakePoolv2", "add_worker", OWNER, pid=0, pubkey=worker.pubkey)
    return chain


def state_fingerprint(chain: Chain) -> list[Any]:
    """A copy of every pallet's state (stored values are never mutated in place)."""
    return [p.snapshot() for p in chain.pallets.values()]


def check_invariants(chain: Chain) -> None:
    base, computation = chain.pallet("PhalaBasePool"), chain.pallet("PhalaComputation")
    stakepool, assets = chain.pallet("PhalaStakePoolv2"), chain.pallet("Assets")
    pool = base.pools[0]
    free = assets.balance(10000, pool_account(0, OWNER))
    locked = assets.balance(10000, lock_account(0, OWNER))
    sessions = {session_account(0, w.pubkey): w.pubkey for w in WORKERS}
    assert locked == sum(computation.stakes.get(s, 0) for s in sessions)
    assert free + locked == pool["basepool"]["total_value"] == 3000 * PHA
    for session, pubkey in sessions.items():
        in_pool = pubkey in pool["workers"]
        assert in_pool == (stakepool.worker_assignments.get(pubkey) == 0)
        assert in_pool == (computation.worker_bindings.get(pubkey) == session)
        info = computation.sessions.get(session)
        if info is not None:
            computing = info["state"] in COMPUTING_STATES
            assert computing == (
                session in computation.stakes and info["state"] != "WorkerCoolingDown"
            )
            assert (info["state"] == "WorkerCoolingDown") <= (session in computation.stakes)
            assert (info["state"] == "Ready") == (session not in computation.stakes)
        if pubkey in pool["cd_workers"]:
            assert info is not None and info["state"] in ("WorkerCoolingDown",)
    computing = [s for s, info in computation.sessions.items() if info["state"] in COMPUTING_STATES]
    assert computation.online_workers == len(computing)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 1), st.integers(1, 1500)),
        max_size=25,
    )
)
def test_random_operations_keep_the_invariants(steps: list[tuple[str, int, int]]) -> None:
    chain = fresh_chain()
    for operation, index, stake_pha in steps:
        worker = WORKERS[index]
        target = {"pid": 0, "worker": worker.pubkey}
        before = state_fingerprint(chain)
        try:
            if operation == "add":
                chain.call("PhalaStakePoolv2", "add_worker", OWNER, pid=0, pubkey=worker.pubkey)
            elif operation == "remove":
                chain.call("PhalaStakePoolv2", "remove_worker", OWNER, **target)
            elif operation == "start":
                chain.call(
                    "PhalaStakePoolv2", "start_computing", OWNER, **target, stake=stake_pha * PHA
                )
            elif operation == "stop":
                chain.call("PhalaStakePoolv2", "stop_computing", OWNER, **target)
            elif operation == "reclaim":
                chain.call("PhalaStakePoolv2", "reclaim_pool_worker", account("any"), **target)
            elif operation == "restart":
                chain.call(
                    "PhalaStakePoolv2", "restart_computing", OWNER, **target, stake=stake_pha * PHA
                )
            elif operation == "unbind":
                session = session_account(0, worker.pubkey)
                chain.call("PhalaComputation", "unbind", OWNER, session=session)
            elif operation == "wait":
                chain.next_block(seconds=61 if stake_pha % 2 else 6)
            elif operation == "heartbeat":
                chain.heartbeat(worker, stake_pha * 100)
        except DispatchError:
            assert state_fingerprint(chain) == before, f"{operation} failed but changed state"
        check_invariants(chain)
