"""PhalaStakePoolv2 / PhalaBasePool / PhalaComputation: pool calls, preconditions, state machine."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest

from poolkeeper_devnet.chain.pallets.phala_stakepool import (
    lock_account,
    pool_account,
    session_account,
)
from tests.unit.devnet._phala_chain import PHA, Chain, Worker, account, make_worker

COOL_DOWN = 600


@dataclass
class Setup:
    chain: Chain
    owner: str
    pid: int
    worker: Worker

    def call(self, call: str, signer: str | None = None, **args: object) -> None:
        self.chain.call("PhalaStakePoolv2", call, self.owner if signer is None else signer, **args)

    def error(self, call: str, signer: str | None = None, **args: object) -> str:
        return self.chain.error_of(
            "PhalaStakePoolv2", call, self.owner if signer is None else signer, **args
        )

    @property
    def session(self) -> str:
        return session_account(self.pid, self.worker.pubkey)

    def pool(self) -> dict[str, object]:
        return self.chain.pallet("PhalaBasePool").pools[self.pid]

    def state(self) -> str:
        return self.chain.pallet("PhalaComputation").sessions[self.session]["state"]

    def wpha(self, who: str) -> int:
        return self.chain.pallet("Assets").balance(10000, who)


def make_setup(score: int = 2000, funded: int = 10_000 * PHA, **phala: object) -> Setup:
    chain = Chain({"phala": {"cool_down_period": COOL_DOWN, **phala}})
    owner, worker = account("owner"), make_worker("w1")
    chain.register(worker, owner)
    chain.bench(worker, score)
    pid = chain.create_pool(owner)
    if funded:
        chain.fund_pool(owner, pid, funded)
    chain.drain()
    return Setup(chain, owner, pid, worker)


def added(score: int = 2000, **phala: object) -> Setup:
    setup = make_setup(score, **phala)
    setup.call("add_worker", pid=setup.pid, pubkey=setup.worker.pubkey)
    return setup


def computing(stake: int = 1000 * PHA, **phala: object) -> Setup:
    setup = added(**phala)
    setup.call("start_computing", pid=setup.pid, worker=setup.worker.pubkey, stake=stake)
    return setup


# -- accounts and create ---------------------------------------------------------------
def test_derived_accounts_follow_khala() -> None:
    worker, owner = "0x" + "ab" * 32, "0x" + "cd" * 32
    digest = hashlib.blake2b(
        (7).to_bytes(8, "little") + bytes.fromhex("ab" * 32), digest_size=32
    ).digest()
    assert session_account(7, worker) == "0x" + (b"spm/" + digest[:28]).hex()
    digest = hashlib.blake2b(
        (7).to_bytes(8, "little") + bytes.fromhex("cd" * 32), digest_size=32
    ).digest()
    assert pool_account(7, owner) == "0x" + (b"bp/" + digest[:29]).hex()
    assert lock_account(7, owner) == "0x" + (b"sl/" + digest[:29]).hex()


def test_create_pool() -> None:
    chain = Chain()
    owner = account("owner")
    assert chain.create_pool(owner) == 0
    assert chain.create_pool(account("other")) == 1
    event = chain.events("PhalaStakePoolv2")[0]
    assert event == (
        "PhalaStakePoolv2",
        "PoolCreated",
        {"owner": owner, "pid": 0, "cid": 0, "pool_account_id": pool_account(0, owner)},
    )
    pool = chain.pallet("PhalaBasePool").pools[0]
    assert pool["basepool"]["owner"] == owner
    assert (pool["workers"], pool["cd_workers"], pool["cap"]) == ([], [], None)
    changes = chain.drain()
    assert ("PhalaBasePool", "PoolCount", (), 2) in changes
    assert ("PhalaBasePool", "Pools", (0,), {"StakePool": pool}) in changes
    assert chain.error_of("PhalaStakePoolv2", "create", None) == "System.BadOrigin"


# -- contribute, cap, payout -------------------------------------------------------------
def test_contribute_moves_wpha_into_the_pool_account() -> None:
    setup = make_setup(funded=0)
    chain, owner, pid = setup.chain, setup.owner, setup.pid
    chain.balances.deposit(owner, 100 * PHA)
    chain.call("PhalaWrappedBalances", "wrap", owner, amount=50 * PHA)
    setup.call("contribute", pid=pid, amount=20 * PHA, as_vault=None)
    assert setup.wpha(owner) == 30 * PHA
    assert setup.wpha(pool_account(pid, owner)) == 20 * PHA
    basepool = setup.pool()["basepool"]
    assert (basepool["total_value"], basepool["total_shares"]) == (20 * PHA, 20 * PHA)
    assert chain.events()[-1][1:] == (
        "Contribution",
        {"pid": pid, "user": owner, "amount": 20 * PHA, "shares": 20 * PHA, "as_vault": None},
    )
    assert setup.error("contribute", pid=pid, amount=10**9, as_vault=None) == (
        "PhalaStakePoolv2.InsufficientContribution"
    )
    assert setup.error("contribute", pid=pid, amount=31 * PHA, as_vault=None) == (
        "PhalaStakePoolv2.InsufficientBalance"
    )
    assert (
        setup.error("contribute", pid=99, amount=PHA, as_vault=None)
        == "PhalaBasePool.PoolDoesNotExist"
    )
    assert (
        setup.error("contribute", pid=pid, amount=PHA, as_vault=pid)
        == "PhalaBasePool.PoolTypeNotMatch"
    )
    setup.call("set_cap", pid=pid, cap=25 * PHA)
    assert setup.error("contribute", pid=pid, amount=6 * PHA, as_vault=None) == (
        "PhalaStakePoolv2.StakeExceedsCapacity"
    )
    assert setup.error("set_cap", pid=pid, cap=19 * PHA) == "PhalaStakePoolv2.InadequateCapacity"
    assert setup.error("set_cap", account("x"), pid=pid, cap=30 * PHA) == (
        "PhalaStakePoolv2.UnauthorizedPoolOwner"
    )
    setup.call("set_payout_pref", pid=pid, payout_commission=250_000)
    assert setup.pool()["payout_commission"] == 250_000
    assert chain.events()[-1][1:] == ("PoolCommissionSet", {"pid": pid, "commission": 250_000})


# -- add_worker -------------------------------------------------------------------------
def test_add_worker_binds_a_ready_session() -> None:
    setup = added()
    chain, pid, pubkey, session = setup.chain, setup.pid, setup.worker.pubkey, setup.session
    assert setup.pool()["workers"] == [pubkey]
    assert setup.state() == "Ready"
    assert chain.events()[-2:] == [
        ("PhalaComputation", "SessionBound", {"session": session, "worker": pubkey}),
        ("PhalaStakePoolv2", "PoolWorkerAdded", {"pid": pid, "worker": pubkey, "session": session}),
    ]
    changed = {(c[0], c[1]) for c in chain.drain()}
    assert changed == {
        ("PhalaComputation", "SessionBindings"),
        ("PhalaComputation", "WorkerBindings"),
        ("PhalaComputation", "Sessions"),
        ("PhalaStakePoolv2", "WorkerAssignments"),
        ("PhalaStakePoolv2", "SubAccountPreimages"),
        ("PhalaBasePool", "Pools"),
    }
    assert chain.pallet("PhalaStakePoolv2").sub_account_preimages[session] == (pid, pubkey)


def test_add_worker_preconditions() -> None:
    setup = make_setup()
    chain, owner, pid = setup.chain, setup.owner, setup.pid
    stranger = make_worker("stranger")
    assert (
        setup.error("add_worker", pid=pid, pubkey=stranger.pubkey)
        == "PhalaStakePoolv2.WorkerNotRegistered"
    )
    chain.register(stranger, account("someone-else"))
    assert setup.error("add_worker", pid=pid, pubkey=stranger.pubkey) == (
        "PhalaStakePoolv2.UnauthorizedOperator"
    )
    unbenched = make_worker("unbenched")
    chain.register(unbenched, owner)
    assert (
        setup.error("add_worker", pid=pid, pubkey=unbenched.pubkey)
        == "PhalaStakePoolv2.BenchmarkMissing"
    )
    pubkey = setup.worker.pubkey
    assert setup.error("add_worker", pid=42, pubkey=pubkey) == "PhalaBasePool.PoolDoesNotExist"
    foreign_pid = chain.create_pool(account("other-owner"))
    assert setup.error("add_worker", pid=foreign_pid, pubkey=pubkey) == (
        "PhalaStakePoolv2.UnauthorizedPoolOwner"
    )
    setup.call("add_worker", pid=pid, pubkey=pubkey)
    assert setup.error("add_worker", pid=pid, pubkey=pubkey) == "PhalaStakePoolv2.WorkerExists"
    second_pid = chain.create_pool(owner)
    assert setup.error("add_worker", pid=second_pid, pubkey=pubkey) == (
        "PhalaStakePoolv2.FailedToBindSessionAndWorker"
    )
    assert (
        chain.error_of("PhalaStakePoolv2", "add_worker", None, pid=pid, pubkey=pubkey)
        == "System.BadOrigin"
    )


def test_add_worker_limit_is_200() -> None:
    owner = account("owner")
    chain = Chain({"phala": {"pools": [{"owner": owner, "worker_count": 200}]}})
    extra = make_worker("extra")
    chain.register(extra, owner)
    chain.bench(extra, 1000)
    error = chain.error_of("PhalaStakePoolv2", "add_worker", owner, pid=0, pubkey=extra.pubkey)
    assert error == "PhalaStakePoolv2.WorkersExceedLimit"


# -- remove_worker ----------------------------------------------------------------------
def test_remove_worker_unbinds_and_keeps_the_session() -> None:
    setup = added()
    chain, pid, pubkey, session = setup.chain, setup.pid, setup.worker.pubkey, setup.session
    chain.drain()
    setup.call("remove_worker", pid=pid, worker=pubkey)
    assert setup.pool()["workers"] == []
    assert [e[1] for e in chain.events()[-2:]] == ["SessionUnbound", "PoolWorkerRemoved"]
    changes = chain.drain()
    assert ("PhalaComputation", "WorkerBindings", (pubkey,), None) in changes
    assert ("PhalaComputation", "SessionBindings", (session,), None) in changes
    assert ("PhalaStakePoolv2", "WorkerAssignments", (pubkey,), None) in changes
    assert session in chain.pallet("PhalaComputation").sessions
    setup.call("add_worker", pid=pid, pubkey=pubkey)  # a Ready session can be bound again


def test_remove_worker_preconditions() -> None:
    setup = computing()
    chain, pid, pubkey = setup.chain, setup.pid, setup.worker.pubkey
    assert (
        setup.error("remove_worker", pid=pid, worker=pubkey) == "PhalaStakePoolv2.WorkerIsNotReady"
    )
    assert setup.error("remove_worker", account("x"), pid=pid, worker=pubkey) == (
        "PhalaStakePoolv2.UnauthorizedPoolOwner"
    )
    assert setup.error("remove_worker", pid=pid, worker=make_worker("nope").pubkey) == (
        "PhalaStakePoolv2.WorkerDoesNotExist"
    )
    other_pid = chain.create_pool(setup.owner)
    assert (
        setup.error("remove_worker", pid=other_pid, worker=pubkey)
        == "PhalaStakePoolv2.WorkerInAnotherPool"
    )


# -- start / stop / reclaim / restart ------------------------------------------------------
def test_start_computing_locks_the_stake_and_tells_the_worker() -> None:
    setup = added()
    chain, pid, pubkey, session, owner = (
        setup.chain,
        setup.pid,
        setup.worker.pubkey,
        setup.session,
        setup.owner,
    )
    chain.ctx.worker_messages.clear()
    setup.call("start_computing", pid=pid, worker=pubkey, stake=1000 * PHA)
    assert setup.state() == "WorkerIdle"
    assert chain.pallet("PhalaComputation").stakes[session] == 1000 * PHA
    assert setup.wpha(pool_account(pid, owner)) == 9000 * PHA
    assert setup.wpha(lock_account(pid, owner)) == 1000 * PHA
    ve = 1500 * 2**64  # re 1.5 · 1000 PHA in U64F64 bits
    events = [e for e in chain.events() if e[0] != "Assets"]
    assert events[-2:] == [
        ("PhalaComputation", "WorkerStarted", {"session": session, "init_v": ve, "init_p": 2000}),
        (
            "PhalaStakePoolv2",
            "WorkingStarted",
            {"pid": pid, "worker": pubkey, "amount": 1000 * PHA},
        ),
    ]
    raw = bytes.fromhex(pubkey[2:])
    started = (
        b"\x00"
        + raw
        + b"\x03"
        + (0).to_bytes(4, "little")
        + ve.to_bytes(16, "little")
        + (2000).to_bytes(4, "little")
    )
    assert chain.ctx.worker_messages == [(b"phala/computation", b"phala/system/worker", started)]
    info = chain.pallet("PhalaComputation").sessions[session]
    assert (info["ve"], info["v"], info["benchmark"]["p_init"]) == (ve, ve, 2000)


def test_start_computing_preconditions() -> None:
    setup = added()
    pid, pubkey = setup.pid, setup.worker.pubkey
    start = {"pid": pid, "worker": pubkey}
    assert setup.error("start_computing", account("x"), **start, stake=PHA * 100) == (
        "PhalaStakePoolv2.UnauthorizedPoolOwner"
    )
    assert (
        setup.error("start_computing", **start, stake=10_001 * PHA)
        == "PhalaStakePoolv2.InsufficientFreeStake"
    )
    assert setup.error("start_computing", pid=pid, worker=make_worker("x").pubkey, stake=PHA) == (
        "PhalaStakePoolv2.WorkerDoesNotExist"
    )
    # min stake = 1 PHA · √2000 ≈ 44.72 PHA
    assert (
        setup.error("start_computing", **start, stake=44 * PHA)
        == "PhalaComputation.InsufficientStake"
    )
    setup.call("start_computing", **start, stake=45 * PHA)
    assert (
        setup.error("start_computing", **start, stake=45 * PHA) == "PhalaComputation.WorkerNotReady"
    )


def test_stake_upper_bound_and_benchmark_floor() -> None:
    setup = added(v_max=3000)  # ve = 1.5 · stake ≤ 3000 PHA → stake ≤ 2000 PHA
    start = {"pid": setup.pid, "worker": setup.worker.pubkey}
    assert (
        setup.error("start_computing", **start, stake=2001 * PHA) == "PhalaComputation.TooMuchStake"
    )
    setup.call("start_computing", **start, stake=2000 * PHA)
    low = added(score=40)
    assert low.error("start_computing", pid=low.pid, worker=low.worker.pubkey, stake=100 * PHA) == (
        "PhalaComputation.BenchmarkTooLow"
    )


def test_stop_then_reclaim_after_the_cool_down() -> None:
    setup = computing()
    chain, pid, pubkey, session, owner = (
        setup.chain,
        setup.pid,
        setup.worker.pubkey,
        setup.session,
        setup.owner,
    )
    chain.ctx.worker_messages.clear()
    stopped_at = chain.ctx.timestamp_ms // 1000
    setup.call("stop_computing", pid=pid, worker=pubkey)
    assert setup.state() == "WorkerCoolingDown"
    info = chain.pallet("PhalaComputation").sessions[session]
    assert info["cool_down_start"] == stopped_at
    assert setup.pool()["cd_workers"] == [pubkey]
    assert chain.events()[-1] == ("PhalaComputation", "WorkerStopped", {"session": session})
    raw = bytes.fromhex(pubkey[2:])
    assert chain.ctx.worker_messages == [
        (b"phala/computation", b"phala/system/worker", b"\x00" + raw + b"\x04")
    ]
    assert (
        setup.error("stop_computing", pid=pid, worker=pubkey)
        == "PhalaStakePoolv2.WorkerAlreadyStopped"
    )

    anyone = account("anyone")
    chain.next_block(seconds=COOL_DOWN - 7)
    assert (
        setup.error("reclaim_pool_worker", anyone, pid=pid, worker=pubkey)
        == "PhalaComputation.CoolDownNotReady"
    )
    chain.next_block(seconds=1)  # the cool-down ends exactly now (blocks are 6 s apart)
    chain.next_block(seconds=6)
    setup.call("reclaim_pool_worker", anyone, pid=pid, worker=pubkey)
    assert setup.state() == "Ready"
    assert setup.pool()["cd_workers"] == []
    assert setup.wpha(pool_account(pid, owner)) == 10_000 * PHA
    assert setup.wpha(lock_account(pid, owner)) == 0
    assert session not in chain.pallet("PhalaComputation").stakes
    events = [e for e in chain.events() if e[0] != "Assets"]
    assert events == [
        (
            "PhalaComputation",
            "WorkerReclaimed",
            {"session": session, "original_stake": 1000 * PHA, "slashed": 0},
        ),
        ("PhalaStakePoolv2", "WorkerReclaimed", {"pid": pid, "worker": pubkey}),
    ]
    assert ("PhalaComputation", "Stakes", (session,), None) in chain.drain()
    assert (
        setup.error("reclaim_pool_worker", anyone, pid=pid, worker=pubkey)
        == "PhalaComputation.CoolDownNotReady"
    )
    setup.call("remove_worker", pid=pid, worker=pubkey)


def test_cool_down_boundary_is_inclusive() -> None:
    setup = computing()
    setup.call("stop_computing", pid=setup.pid, worker=setup.worker.pubkey)
    setup.chain.next_block(seconds=COOL_DOWN)
    setup.call("reclaim_pool_worker", account("anyone"), pid=setup.pid, worker=setup.worker.pubkey)
    assert setup.state() == "Ready"


def test_stop_needs_a_computing_worker() -> None:
    setup = added()
    assert setup.error("stop_computing", pid=setup.pid, worker=setup.worker.pubkey) == (
        "PhalaComputation.WorkerNotComputing"
    )
    assert setup.error("stop_computing", pid=setup.pid, worker=make_worker("x").pubkey) == (
        "PhalaStakePoolv2.WorkerDoesNotExist"
    )


def test_restart_computing_needs_more_stake() -> None:
    setup = computing(stake=1000 * PHA)
    chain, pid, pubkey = setup.chain, setup.pid, setup.worker.pubkey
    before = chain.pallet("PhalaComputation").sessions[setup.session]
    assert setup.error("restart_computing", pid=pid, worker=pubkey, stake=1000 * PHA) == (
        "PhalaStakePoolv2.CannotRestartWithLessStake"
    )
    # the failed call was rolled back entirely: still computing with the old stake
    assert chain.pallet("PhalaComputation").sessions[setup.session] is before
    assert setup.pool()["cd_workers"] == []
    setup.call("restart_computing", pid=pid, worker=pubkey, stake=1500 * PHA)
    assert setup.state() == "WorkerIdle"
    assert chain.pallet("PhalaComputation").stakes[setup.session] == 1500 * PHA
    assert setup.wpha(lock_account(pid, setup.owner)) == 1500 * PHA


# -- unbind (operator) --------------------------------------------------------------------
def test_unbind_by_the_operator_force_stops_and_leaves_the_pool() -> None:
    setup = computing()
    chain, pid, pubkey, session = setup.chain, setup.pid, setup.worker.pubkey, setup.session
    assert chain.error_of("PhalaComputation", "unbind", account("x"), session=session) == (
        "PhalaComputation.BadSender"
    )
    chain.call("PhalaComputation", "unbind", setup.owner, session=session)
    assert setup.state() == "WorkerCoolingDown"
    assert setup.pool()["workers"] == []
    names = [f"{e[0]}.{e[1]}" for e in chain.events()[-3:]]
    assert names == [
        "PhalaComputation.WorkerStopped",
        "PhalaComputation.SessionUnbound",
        "PhalaStakePoolv2.PoolWorkerRemoved",
    ]
    assert pubkey not in chain.pallet("PhalaStakePoolv2").worker_assignments
    assert chain.error_of("PhalaComputation", "unbind", setup.owner, session=session) == (
        "PhalaComputation.SessionNotBound"
    )
    # the stake still comes back after the cool-down
    chain.next_block(seconds=COOL_DOWN)
    setup.call("reclaim_pool_worker", account("anyone"), pid=pid, worker=pubkey)
    assert setup.wpha(pool_account(pid, setup.owner)) == 10_000 * PHA


# -- liveness -----------------------------------------------------------------------------
def challenges(chain: Chain) -> list[bytes]:
    return [p for _s, _t, p in chain.ctx.worker_messages if p[:1] == b"\x01"]


def test_heartbeat_challenges_while_computing() -> None:
    setup = added(heartbeat_interval=3, unresponsive_after=100)
    chain = setup.chain

    def run(blocks: int) -> list[tuple[int, bytes]]:
        found = []
        for _ in range(blocks):
            ctx, before = chain.ctx, len(chain.ctx.worker_messages)
            chain.next_block()
            found += [
                (ctx.number, p) for _s, _t, p in ctx.worker_messages[before:] if p[:1] == b"\x01"
            ]
        return found

    assert run(6) == []  # nobody computes
    setup.call("start_computing", pid=setup.pid, worker=setup.worker.pubkey, stake=100 * PHA)
    collected = run(7)
    assert len(collected) == 2
    assert all(number % 3 == 0 for number, _ in collected)
    assert all(len(p) == 65 and p[33:] == b"\xff" * 32 for _n, p in collected)


def test_missing_heartbeats_make_a_worker_unresponsive_and_heartbeats_recover_it() -> None:
    setup = computing(heartbeat_interval=2, unresponsive_after=5)
    chain, session, pubkey = setup.chain, setup.session, setup.worker.pubkey
    raw = bytes.fromhex(pubkey[2:])
    for _ in range(3):
        chain.next_block()
        chain.heartbeat(setup.worker, 1000 * chain.ctx.number)
    assert setup.state() == "WorkerIdle"
    history = len(chain.past_events)
    for _ in range(5):  # the block of the last heartbeat and 4 silent ones
        chain.next_block()
    assert setup.state() == "WorkerIdle"
    last_ctx = chain.ctx
    chain.next_block()
    assert setup.state() == "WorkerUnresponsive"
    new_events = [*chain.past_events[history:]]
    assert [
        (e.pallet, e.event, e.attributes)
        for e in new_events
        if e.event == "WorkerEnterUnresponsive"
    ] == [("PhalaComputation", "WorkerEnterUnresponsive", {"session": session})]
    assert (
        b"phala/computation",
        b"phala/system/worker",
        b"\x00" + raw + b"\x05",
    ) in last_ctx.worker_messages
    chain.next_block()
    chain.heartbeat(setup.worker, 99_000)
    assert setup.state() == "WorkerIdle"
    assert chain.events()[-2:] == [
        (
            "PhalaComputation",
            "BenchmarkUpdated",
            {
                "session": session,
                "p_instant": chain.pallet("PhalaComputation").sessions[session]["benchmark"][
                    "p_instant"
                ],
            },
        ),
        ("PhalaComputation", "WorkerExitUnresponsive", {"session": session}),
    ]
    assert chain.ctx.worker_messages[-1] == (
        b"phala/computation",
        b"phala/system/worker",
        b"\x00" + raw + b"\x06",
    )
    # an unresponsive worker can be stopped too (next challenge, then 5 silent blocks)
    for _ in range(7):
        chain.next_block()
    assert setup.state() == "WorkerUnresponsive"
    setup.call("stop_computing", pid=setup.pid, worker=pubkey)
    assert setup.state() == "WorkerCoolingDown"


def test_heartbeat_updates_the_benchmark() -> None:
    setup = computing()
    chain, session = setup.chain, setup.session
    chain.next_block()
    chain.heartbeat(setup.worker, 12_000)
    chain.next_block(seconds=60)
    chain.heartbeat(setup.worker, 32_000)
    bench = chain.pallet("PhalaComputation").sessions[session]["benchmark"]
    assert bench["iterations"] == 32_000
    assert bench["challenge_time_last"] == chain.ctx.timestamp_ms // 1000
    assert bench["p_instant"] == 20_000 * 6 // 60


@pytest.mark.parametrize(
    "call", ["start_computing", "stop_computing", "reclaim_pool_worker", "restart_computing"]
)
def test_unsigned_pool_calls_are_bad_origin(call: str) -> None:
    setup = added()
    args = {"pid": setup.pid, "worker": setup.worker.pubkey}
    if call in ("start_computing", "restart_computing"):
        args["stake"] = PHA
    assert setup.chain.error_of("PhalaStakePoolv2", call, None, **args) == "System.BadOrigin"


def test_sampled_challenges_only_hold_selected_workers_to_answer() -> None:
    owner = account("owner")
    chain = Chain(
        {
            "phala": {
                "heartbeat_interval": 4,
                "unresponsive_after": 3,
                "expected_heartbeats": 1,
                "pools": [
                    {
                        "owner": owner,
                        "free_stake": 0,
                        "workers": [
                            {"pubkey": make_worker(f"s{i}").pubkey, "stake": 100 * PHA}
                            for i in range(8)
                        ],
                    }
                ],
            }
        }
    )
    computation = chain.pallet("PhalaComputation")
    assert computation.online_target() == (2**256 - 1) // 8
    selected: set[str] = set()
    for _ in range(12):
        ctx, before = chain.ctx, len(chain.ctx.worker_messages)
        chain.next_block()
        for _s, _t, payload in ctx.worker_messages[before:]:
            if payload[:1] != b"\x01":
                continue
            seed, target = payload[1:33], int.from_bytes(payload[33:65], "little")
            assert target == (2**256 - 1) // 8
            for i in range(8):
                pubkey = make_worker(f"s{i}").pubkey
                mine = hashlib.blake2b(bytes.fromhex(pubkey[2:]) + seed, digest_size=32).digest()
                if int.from_bytes(mine, "little") <= target:
                    selected.add(pubkey)
    states = {
        make_worker(f"s{i}").pubkey: computation.sessions[
            session_account(0, make_worker(f"s{i}").pubkey)
        ]["state"]
        for i in range(8)
    }
    unresponsive = {k for k, v in states.items() if v == "WorkerUnresponsive"}
    # a worker selected by the last challenge may still be within its grace blocks
    assert unresponsive <= selected
    assert 0 < len(unresponsive) < 8
    assert all(v == "WorkerIdle" for k, v in states.items() if k not in selected)
