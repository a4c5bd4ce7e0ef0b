"""Conditions as a pure function: each case is an observation (and what came before) and
the conditions it must give, by type: (status, reason)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from poolkeeper.model.conditions import (
    ConditionPolicy,
    Conditions,
    ConditionStatus,
    Reason,
    derive_conditions,
    with_loop_failure,
)
from poolkeeper.model.desired import Desired, PoolSpec, WorkerSpec, WorkerState
from poolkeeper.model.observed import (
    ChainHead,
    ChainWorker,
    Observed,
    PRuntimeInfo,
    PRuntimeObservation,
    RelayStatus,
    SessionState,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = "ab" * 32
GENESIS = "11" * 32
URL = "http://w0"
T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def desired(state: WorkerState = WorkerState.COMPUTING, pubkey: str | None = None) -> Desired:
    return Desired(
        pools=(PoolSpec(name="p", pid=3, owner="o"),),
        workers=(WorkerSpec(name="w0", endpoint=URL, pool="p", state=state, pubkey=pubkey),),
    )


@dataclass
class World:
    """One observation, described by its parts."""

    info: PRuntimeInfo | None = field(
        default_factory=lambda: PRuntimeInfo(
            initialized=True,
            blocknum=100,
            public_key=KEY,
            genesis_block_hash=GENESIS,
            genesis_block=0,
        )
    )
    error: str | None = None
    chain: ChainWorker | None = None
    finalized: int = 100
    relay_detail: str | None = None
    genesis: dict[int, str] = field(default_factory=lambda: {0: GENESIS})
    remembered: dict[str, str] = field(default_factory=dict)
    relay: RelayStatus | None = None

    def observed(self) -> Observed:
        return Observed(
            read_at=T0,
            head=ChainHead(best_number=self.finalized + 2, finalized_number=self.finalized),
            pruntimes={URL: PRuntimeObservation(endpoint=URL, info=self.info, error=self.error)},
            chain_workers={KEY: self.chain} if self.chain else {},
            relay_details={"w0": self.relay_detail} if self.relay_detail else {},
            genesis_hashes=self.genesis,
            remembered_pubkeys=self.remembered,
            relays={"w0": self.relay} if self.relay else {},
        )


def computing(state: SessionState = SessionState.WORKER_IDLE, pid: int | None = 3) -> ChainWorker:
    return ChainWorker(
        pubkey=KEY, initial_score=10, session="5S", session_state=state, pool_pid=pid
    )


CASES: list[tuple[str, World, dict[str, tuple[ConditionStatus, Reason]]]] = [
    (
        "computing and healthy",
        World(chain=computing()),
        {
            "Synced": (T, Reason.OK),
            "Registered": (T, Reason.OK),
            "InPool": (T, Reason.OK),
            "Computing": (T, Reason.OK),
            "Healthy": (T, Reason.OK),
        },
    ),
    (
        "fresh pRuntime: not initialized, no key",
        World(info=PRuntimeInfo(initialized=False)),
        {
            "Synced": (F, Reason.NOT_INITIALIZED),
            "Registered": (U, Reason.UNKNOWN_PUBKEY),
            "InPool": (U, Reason.NO_POOL),
            "Computing": (U, Reason.NOT_COMPUTING),
            "Healthy": (T, Reason.OK),
        },
    ),
    (
        "syncing, registered, in no pool",
        World(
            info=PRuntimeInfo(initialized=True, blocknum=20, public_key=KEY),
            chain=ChainWorker(pubkey=KEY),
        ),
        {
            "Synced": (F, Reason.SYNCING),
            "Registered": (T, Reason.OK),
            "InPool": (F, Reason.NO_POOL),
            "Computing": (F, Reason.NOT_COMPUTING),
        },
    ),
    (
        "down pRuntime keeps the chain state through the remembered key",
        World(info=None, error="connection refused", chain=computing(), remembered={URL: KEY}),
        {
            "Synced": (U, Reason.UNREACHABLE),
            "Registered": (T, Reason.OK),
            "InPool": (T, Reason.OK),
            "Computing": (T, Reason.OK),
            "Healthy": (F, Reason.UNREACHABLE),
        },
    ),
    (
        "another genesis",
        World(
            info=PRuntimeInfo(
                initialized=True,
                blocknum=1,
                public_key=KEY,
                genesis_block_hash="22" * 32,
                genesis_block=0,
            )
        ),
        {"Synced": (F, Reason.WRONG_GENESIS), "Healthy": (F, Reason.WRONG_GENESIS)},
    ),
    (
        "a pRuntime not saying its genesis block number is not judged",
        World(
            info=PRuntimeInfo(
                initialized=True, blocknum=100, public_key=KEY, genesis_block_hash="22" * 32
            )
        ),
        {"Synced": (T, Reason.OK), "Healthy": (T, Reason.OK)},
    ),
    (
        "genesis unknown (offline): no diagnosis",
        World(
            info=PRuntimeInfo(
                initialized=True, blocknum=100, public_key=KEY, genesis_block_hash="22" * 32
            ),
            genesis={},
        ),
        {"Synced": (T, Reason.OK), "Healthy": (T, Reason.OK)},
    ),
    (
        "unresponsive on chain",
        World(chain=computing(SessionState.WORKER_UNRESPONSIVE)),
        {"Computing": (F, Reason.SESSION), "Healthy": (F, Reason.UNRESPONSIVE_ON_CHAIN)},
    ),
    (
        "RCU busy, seen by the relay",
        World(
            info=PRuntimeInfo(initialized=True, blocknum=40, public_key=KEY),
            relay_detail="BackingOff, pRuntime at #40; last error: RCU in progress, please try",
        ),
        {"Healthy": (F, Reason.RCU_BUSY)},
    ),
    (
        "the relay sees the pRuntime stalled",
        World(
            info=PRuntimeInfo(initialized=True, blocknum=40, public_key=KEY),
            relay=RelayStatus.STALLED,
        ),
        {"Synced": (F, Reason.SYNCING), "Healthy": (F, Reason.PRUNTIME_STALLED)},
    ),
    (
        "in another pool",
        World(chain=computing(pid=9)),
        {"InPool": (F, Reason.OTHER_POOL)},
    ),
]


@pytest.mark.parametrize(("world", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_conditions(world: World, expected: dict[str, tuple[ConditionStatus, Reason]]) -> None:
    got = derive_conditions(desired(), world.observed(), None, T0).worker("w0")
    assert set(got) == {"Synced", "Registered", "InPool", "Computing", "Healthy"}
    assert {t: (got[t].status, got[t].reason) for t in expected} == expected
    assert all(c.last_transition == T0 for c in got.values())


def test_removed_workers_are_not_judged_healthy_or_not() -> None:
    got = derive_conditions(desired(WorkerState.REMOVED), World().observed(), None, T0)
    assert got.worker("w0")["Healthy"].reason is Reason.REMOVED


def run(worlds: Sequence[tuple[float, World]], policy: ConditionPolicy | None = None) -> Conditions:
    state: Conditions | None = None
    for seconds, world in worlds:
        state = derive_conditions(
            desired(), world.observed(), state, T0 + timedelta(seconds=seconds), policy
        )
    assert state is not None
    return state


def test_transition_time_kept_while_the_status_stays() -> None:
    state = run([(0, World()), (30, World()), (60, World(chain=computing()))])
    got = state.worker("w0")
    assert got["Synced"].last_transition == T0
    assert got["Computing"].last_transition == T0 + timedelta(seconds=60)


def test_unreachable_warns_then_turns_critical_after_the_threshold() -> None:
    down = World(info=None, error="refused")
    policy = ConditionPolicy(unreachable_critical_seconds=300)
    early = run([(0, World()), (10, down), (200, down)], policy).worker("w0")["Healthy"]
    assert (early.reason, early.severity) == (Reason.UNREACHABLE, "warn")
    late = run([(0, World()), (10, down), (200, down), (320, down)], policy).worker("w0")
    assert late["Healthy"].severity == "critical"
    assert late["Healthy"].last_transition == T0 + timedelta(seconds=10)
    back = run([(0, World()), (10, down), (320, down), (330, World())], policy).worker("w0")
    assert back["Healthy"].status is T


def test_pruntime_stalled_when_behind_and_its_block_does_not_move() -> None:
    stuck = World(info=PRuntimeInfo(initialized=True, blocknum=40, public_key=KEY), finalized=100)
    policy = ConditionPolicy(pruntime_stall_seconds=60)
    assert run([(0, stuck), (30, stuck)], policy).worker("w0")["Healthy"].status is T
    got = run([(0, stuck), (30, stuck), (61, stuck)], policy).worker("w0")["Healthy"]
    assert got.reason is Reason.PRUNTIME_STALLED
    moving = World(info=PRuntimeInfo(initialized=True, blocknum=41, public_key=KEY))
    assert run([(0, stuck), (61, moving)], policy).worker("w0")["Healthy"].status is T


def test_computing_but_not_earning_when_the_session_keeps_falling_unresponsive() -> None:
    idle, unresponsive = (
        World(chain=computing()),
        World(chain=computing(SessionState.WORKER_UNRESPONSIVE)),
    )
    flapping = [(0, idle), (10, unresponsive), (20, idle), (30, unresponsive), (40, idle)]
    assert run(flapping).worker("w0")["Healthy"].reason is Reason.NOT_EARNING
    assert run(flapping[:3]).worker("w0")["Healthy"].status is T
    policy = ConditionPolicy(flap_window_seconds=15)
    assert run(flapping, policy).worker("w0")["Healthy"].status is T


def test_chain_stalled_after_n_block_times_without_finality_and_recovered() -> None:
    policy = ConditionPolicy(chain_stall_blocks=5)
    passes = [(i * 2.0, World(finalized=100 + i)) for i in range(6)]  # 2 s blocks
    moving = run(passes, policy)
    assert {c.type: c.status for c in moving.process} == {"ChainStalled": F, "LoopHealthy": T}
    stuck = World(finalized=105)
    stalled = run([*passes, (15, stuck), (21, stuck)], policy)
    chain = {c.type: c for c in stalled.process}["ChainStalled"]
    assert (chain.status, chain.reason, chain.severity) == (T, Reason.NO_NEW_FINALIZED, "critical")
    assert chain.last_transition == T0 + timedelta(seconds=21)
    again = run([*passes, (15, stuck), (21, stuck), (23, World(finalized=106))], policy)
    assert {c.type: c for c in again.process}["ChainStalled"].status is F


def test_a_failed_pass_makes_the_loop_unhealthy_until_one_passes() -> None:
    state = run([(0, World())])
    failed = with_loop_failure(state, T0 + timedelta(seconds=5), "chain unavailable")
    loop = {c.type: c for c in failed.process}["LoopHealthy"]
    assert (loop.status, loop.message) == (F, "chain unavailable")
    after = derive_conditions(desired(), World().observed(), failed, T0 + timedelta(seconds=9))
    assert {c.type: c for c in after.process}["LoopHealthy"].status is T


def test_conditions_of_many_workers_share_their_fields_set() -> None:
    """The conditions of 10,000 workers held ~54 MB, two thirds of it a fields set per
    object; they share one now, and copies with updates still work."""
    import gc
    import tracemalloc

    n = 500
    many = Desired(
        pools=(PoolSpec(name="p", pid=3, owner="o"),),
        workers=tuple(
            WorkerSpec(name=f"w{i}", endpoint=f"http://w{i}", pool="p") for i in range(n)
        ),
    )
    info = PRuntimeInfo(initialized=True, blocknum=100, public_key=KEY)
    observed = Observed(
        read_at=T0,
        head=ChainHead(best_number=102, finalized_number=100),
        pruntimes={
            f"http://w{i}": PRuntimeObservation(endpoint=f"http://w{i}", info=info)
            for i in range(n)
        },
        genesis_hashes={0: GENESIS},
    )
    gc.collect()
    tracemalloc.start()
    try:
        conditions = derive_conditions(many, observed, None, T0)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert sum(len(c) for c in conditions.workers.values()) >= 5 * n
    assert held / n < 3_000  # was ~6,600 bytes a worker (derived from nothing)
    first = conditions.workers["w0"][0]
    moved = first.model_copy(update={"message": "changed"})
    assert moved.message == "changed" and first.message != "changed"
    assert "message" in moved.model_fields_set


def _many(count: int) -> Desired:
    return Desired(
        pools=(PoolSpec(name="p", pid=3, owner="o"),),
        workers=tuple(
            WorkerSpec(name=f"w{i}", endpoint=f"http://w{i}", pool="p") for i in range(count)
        ),
    )


def _synced_world(spec: Desired, blocks: dict[str, int], finalized: int = 100) -> Observed:
    return Observed(
        read_at=T0,
        head=ChainHead(best_number=finalized + 2, finalized_number=finalized),
        pruntimes={
            w.endpoint: PRuntimeObservation(
                endpoint=w.endpoint,
                info=PRuntimeInfo(
                    initialized=True, blocknum=blocks.get(w.name, finalized), headernum=1
                ),
            )
            for w in spec.workers
        },
    )


def test_workers_in_the_same_state_since_the_same_moment_share_their_conditions() -> None:
    spec = _many(3)
    first = derive_conditions(spec, _synced_world(spec, {}), None, T0)
    w0, w1, w2 = (first.workers[f"w{i}"] for i in range(3))
    assert all(a is b for a, b in zip(w0, w1, strict=True))
    assert all(a is b for a, b in zip(w0, w2, strict=True))
    assert first.memory["w0"] is first.memory["w1"]


def test_a_worker_whose_state_changed_gets_its_own_conditions_the_others_keep_theirs() -> None:
    spec = _many(3)
    first = derive_conditions(spec, _synced_world(spec, {}), None, T0)
    later = T0 + timedelta(seconds=30)
    # w1 fell behind: its Synced changes; w0 and w2 did not move (same objects kept).
    second = derive_conditions(spec, _synced_world(spec, {"w1": 10}), first, later)
    synced = {name: second.worker(name)["Synced"] for name in ("w0", "w1", "w2")}
    assert synced["w0"] is first.worker("w0")["Synced"]
    assert synced["w2"] is synced["w0"]
    assert (synced["w1"].status, synced["w1"].reason) == (F, Reason.SYNCING)
    assert synced["w1"].message == "90 blocks behind the finalized head"
    assert synced["w1"].last_transition == later
    assert second.memory["w1"].blocknum == 10 and second.memory["w0"].blocknum == 100
    assert second.memory["w1"] is not second.memory["w0"]
    # Equal values made at different moments are not shared: the transition time differs.
    third = derive_conditions(
        spec, _synced_world(spec, {"w1": 10, "w2": 10}), second, later + timedelta(seconds=30)
    )
    assert third.worker("w1")["Synced"].last_transition == later
    assert third.worker("w2")["Synced"].last_transition == later + timedelta(seconds=30)
    assert third.worker("w1")["Synced"] is not third.worker("w2")["Synced"]
