"""Properties of the planner, over generated inventories and worlds.

- A world that already satisfies the inventory plans to nothing.
- Planning is deterministic: same inputs twice, and with every dict and tuple shuffled.
- No destructive action without a reason the operator gave: a worker declared
  removed/idle/sync_only, a declared pool move, or ``--prune`` (stake decrease, or a
  worker missing from the inventory).
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from poolkeeper.model.actions import Plan
from poolkeeper.model.desired import Desired, WorkerState
from poolkeeper.model.observed import Observed
from poolkeeper.model.ss58 import encode_address
from poolkeeper.plan import PlanPolicy, plan_for

PHA = 10**12
NOW = 1_700_000_000
PERIOD = 604_800
OWNER = encode_address(bytes([1]) * 32)
OPERATOR = encode_address(bytes([2]) * 32)
FUNDING = encode_address(bytes([3]) * 32)
PHASES = (
    "unreachable",
    "uninitialized",
    "syncing",
    "synced",
    "registered",
    "scored",
    "ready",
    "computing",
    "unresponsive",
    "cooling",
    "cooled",
)
SESSION = {
    "ready": "Ready",
    "computing": "WorkerIdle",
    "unresponsive": "WorkerUnresponsive",
    "cooling": "WorkerCoolingDown",
    "cooled": "WorkerCoolingDown",
}
STATES = [s.value for s in WorkerState]


def _pubkey(i: int) -> str:
    return f"{i:064x}"


def _base(
    pool_count: int, proxied: list[bool], stakes: list[int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    accounts = [
        {"name": "owner", "role": "owner", "address": OWNER},
        {
            "name": "operator",
            "role": "operator",
            "address": OPERATOR,
            "top_up": {"from": "funding", "to": "100 PHA", "max_per_day": "500 PHA"},
        },
        {"name": "funding", "role": "funding", "address": FUNDING},
    ]
    pools = [
        {
            "name": f"pool-{pid}",
            "pid": pid,
            "owner": "owner",
            **({"operator": "operator"} if proxied[pid - 1] else {}),
            "default_stake": stakes[pid - 1],
        }
        for pid in range(1, pool_count + 1)
    ]
    inventory = {"accounts": accounts, "pools": pools, "workers": []}
    observed: dict[str, Any] = {
        "read_at": "2023-11-14T22:13:20Z",
        "head": {"best_number": 1000, "finalized_number": 998, "timestamp_ms": NOW * 1000},
        "cool_down_period": PERIOD,
        "accounts": {a: {"address": a, "free": 1000 * PHA} for a in (OWNER, OPERATOR, FUNDING)},
        "pools": {
            pid: {"pid": pid, "owner": OWNER, "free_stake": 10**7 * PHA, "workers": []}
            for pid in range(1, pool_count + 1)
        },
        "proxies": [{"real": OWNER, "delegate": OPERATOR, "proxy_type": "StakePoolManager"}],
        "pruntimes": {},
        "chain_workers": {},
        "relays": {},
    }
    return inventory, observed


def _add_worker(
    inventory: dict[str, Any],
    observed: dict[str, Any],
    index: int,
    *,
    state: str,
    pool: int | None,
    phase: str,
    bound_pid: int,
    stake: int | None,
    chain_stake: int,
    relay: str | None,
    pinned: bool,
) -> None:
    name = f"w{index:03d}"
    endpoint = f"http://{name}.lan:8000"
    key = _pubkey(index + 1)
    spec: dict[str, Any] = {"name": name, "endpoint": endpoint, "state": state}
    if pool is not None:
        spec["pool"] = f"pool-{pool}"
    if stake is not None:
        spec["stake"] = stake
    if pinned:
        spec["pubkey"] = key
    inventory["workers"].append(spec)
    if relay is not None:
        observed["relays"][name] = relay
    if phase == "unreachable":
        observed["pruntimes"][endpoint] = {"endpoint": endpoint, "error": "refused"}
    elif phase == "uninitialized":
        observed["pruntimes"][endpoint] = {"endpoint": endpoint, "info": {"initialized": False}}
    else:
        blocknum = 10 if phase == "syncing" else 998
        info = {"initialized": True, "blocknum": blocknum, "public_key": key}
        observed["pruntimes"][endpoint] = {"endpoint": endpoint, "info": info}
    if phase in ("unreachable", "uninitialized", "syncing", "synced"):
        if not (phase == "unreachable" and pinned):
            return
        phase = "computing"
    chain: dict[str, Any] = {"pubkey": key, "operator": OWNER}
    if phase != "registered":
        chain["initial_score"] = 100
    if phase in SESSION:
        start = {"cooling": NOW - 10, "cooled": NOW - PERIOD - 10}.get(phase, 0)
        chain.update(
            session=f"s{index}",
            session_state=SESSION[phase],
            pool_pid=bound_pid,
            stake=chain_stake,
            cool_down_start=start,
        )
        if bound_pid in observed["pools"]:
            observed["pools"][bound_pid]["workers"].append(key)
    observed["chain_workers"][key] = chain


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Desired, Observed, PlanPolicy]:
    """Any world: workers in every phase and state, moves, strangers, balances."""
    pool_count = draw(st.integers(1, 3))
    proxied = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    stakes = draw(st.lists(st.sampled_from([1000, 3000, 5000]), min_size=3, max_size=3))
    inventory, observed = _base(pool_count, proxied, [s * PHA for s in stakes])
    pids = list(range(1, pool_count + 1))
    for index in range(draw(st.integers(0, 12))):
        state = draw(st.sampled_from(STATES))
        pool = draw(st.sampled_from(pids))
        _add_worker(
            inventory,
            observed,
            index,
            state=state,
            pool=None if state == "sync_only" and draw(st.booleans()) else pool,
            phase=draw(st.sampled_from(PHASES)),
            bound_pid=draw(st.sampled_from([*pids, pool, pool, 99])),
            stake=draw(st.sampled_from([None, 1000 * PHA, 5000 * PHA, 8000 * PHA])),
            chain_stake=draw(st.sampled_from([1000 * PHA, 5000 * PHA, 8000 * PHA])),
            relay=draw(st.sampled_from([None, "running", "stopped", "stalled", "backing_off"])),
            pinned=draw(st.booleans()),
        )
    for extra in range(draw(st.integers(0, 3))):
        key = _pubkey(1000 + extra)
        pid = draw(st.sampled_from(pids))
        state = draw(st.sampled_from(list(SESSION.values())))
        observed["chain_workers"][key] = {
            "pubkey": key,
            "operator": OWNER,
            "initial_score": 1,
            "session": f"x{extra}",
            "session_state": state,
            "pool_pid": pid,
            "stake": PHA,
            "cool_down_start": NOW - PERIOD - 1,
        }
        observed["pools"][pid]["workers"].append(key)
    for address in (OWNER, OPERATOR, FUNDING):
        observed["accounts"][address]["free"] = (
            draw(st.sampled_from([0, 4, 19, 20, 150, 5000])) * PHA
        )
    policy = PlanPolicy(
        prune=draw(st.booleans()), top_up=draw(st.booleans()), derive=draw(st.booleans())
    )
    return Desired.model_validate(inventory), Observed.model_validate(observed), policy


@st.composite
def converged_worlds(draw: st.DrawFn) -> tuple[Desired, Observed]:
    """An inventory and the world that already satisfies it."""
    pool_count = draw(st.integers(1, 3))
    proxied = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    stakes = [
        s * PHA for s in draw(st.lists(st.sampled_from([1000, 3000]), min_size=3, max_size=3))
    ]
    inventory, observed = _base(pool_count, proxied, stakes)
    pids = list(range(1, pool_count + 1))
    for index in range(draw(st.integers(0, 15))):
        state = draw(st.sampled_from(STATES))
        pool = draw(st.sampled_from(pids))
        stake = draw(st.sampled_from([None, 2000 * PHA, 7000 * PHA]))
        effective = stake if stake is not None else stakes[pool - 1]
        phase = {
            "computing": "computing",
            "idle": "ready",
            "sync_only": draw(st.sampled_from(["synced", "registered", "scored", "ready"])),
            "removed": draw(st.sampled_from(["uninitialized", "synced", "registered", "scored"])),
        }[state]
        _add_worker(
            inventory,
            observed,
            index,
            state=state,
            pool=pool,
            phase=phase,
            bound_pid=pool,
            stake=stake,
            chain_stake=effective,
            relay=draw(st.sampled_from([None, "running"])) if state != "removed" else None,
            pinned=draw(st.booleans()),
        )
    return Desired.model_validate(inventory), Observed.model_validate(observed)


def _shuffled(desired: Desired, observed: Observed, seed: int) -> tuple[Desired, Observed]:
    rng = random.Random(seed)

    def shuffle_dict(data: dict[Any, Any]) -> dict[Any, Any]:
        items = list(data.items())
        rng.shuffle(items)
        return dict(items)

    def shuffle_tuple(items: tuple[Any, ...]) -> tuple[Any, ...]:
        listed = list(items)
        rng.shuffle(listed)
        return tuple(listed)

    new_desired = desired.model_copy(
        update={
            "pools": shuffle_tuple(desired.pools),
            "workers": shuffle_tuple(desired.workers),
            "accounts": shuffle_tuple(desired.accounts),
        }
    )
    new_observed = observed.model_copy(
        update={
            name: shuffle_dict(getattr(observed, name))
            for name in ("pruntimes", "chain_workers", "pools", "accounts", "relays")
        }
        | {"proxies": shuffle_tuple(observed.proxies)}
    )
    return Desired.model_validate(new_desired.model_dump()), new_observed


@settings(max_examples=150, deadline=None)
@given(converged_worlds())
def test_a_converged_world_plans_to_nothing(world: tuple[Desired, Observed]) -> None:
    desired, observed = world
    plan = plan_for(desired, observed, PlanPolicy())
    assert plan == Plan(block=observed.head.best_number), plan
    assert plan_for(desired, observed, PlanPolicy(prune=True)) == plan


@settings(max_examples=150, deadline=None)
@given(worlds(), st.integers(0, 2**32))
def test_planning_is_deterministic(world: tuple[Desired, Observed, PlanPolicy], seed: int) -> None:
    desired, observed, policy = world
    first = plan_for(desired, observed, policy)
    assert plan_for(desired, observed, policy) == first
    shuffled_desired, shuffled_observed = _shuffled(desired, observed, seed)
    assert plan_for(shuffled_desired, shuffled_observed, policy) == first


def _justified(desired: Desired, observed: Observed, policy: PlanPolicy, target: str) -> bool:
    name = target.partition("/")[2]
    spec = desired.workers_by_name.get(name)
    if spec is None:
        return policy.prune
    if spec.state is not WorkerState.COMPUTING:
        return True
    pool = desired.pools_by_name[spec.pool] if spec.pool else None
    key = spec.pubkey or next(
        (
            o.info.public_key
            for e, o in observed.pruntimes.items()
            if e == spec.endpoint and o.info and o.info.public_key
        ),
        None,
    )
    chain = observed.chain_workers.get(key) if key else None
    if chain is not None and pool is not None and chain.pool_pid != pool.pid:
        return True
    stake = desired.stake_of(spec)
    return bool(policy.prune and chain and stake is not None and stake < (chain.stake or 0))


@settings(max_examples=200, deadline=None)
@given(worlds())
def test_no_destructive_action_without_a_declared_reason(
    world: tuple[Desired, Observed, PlanPolicy],
) -> None:
    desired, observed, policy = world
    plan = plan_for(desired, observed, policy)
    for action in plan.actions:
        if action.destructive:
            assert _justified(desired, observed, policy, action.target), action


@settings(max_examples=100, deadline=None)
@given(worlds())
def test_prerequisites_point_backwards_within_the_plan(
    world: tuple[Desired, Observed, PlanPolicy],
) -> None:
    desired, observed, policy = world
    seen: set[str] = set()
    for action in plan_for(desired, observed, policy).actions:
        assert action.id not in seen
        assert all(p in seen for p in action.prerequisites), action
        seen.add(action.id)
