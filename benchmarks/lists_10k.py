"""How long ``poolkeeper list`` takes for 10,000 workers, 50 pools and 200 accounts (offline).

Builds an inventory and a matching observation in memory (every worker computing), then
times the planner pass the lists use for alerts, the row joins and each renderer. The
observation itself (chain + pRuntimes) is not included: it is the same as ``status``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from poolkeeper.cli._lists import (
    BUILDERS,
    ListKind,
    render_csv,
    render_json,
    render_table,
)
from poolkeeper.model.desired import AccountRole, AccountSpec, Desired, PoolSpec, WorkerSpec
from poolkeeper.model.observed import (
    ChainHead,
    ChainWorker,
    Observed,
    ObservedAccount,
    ObservedPool,
    PRuntimeInfo,
    PRuntimeObservation,
    SessionState,
)
from poolkeeper.model.ss58 import encode_address
from poolkeeper.plan import plan_for

PHA = 10**12
POOLS, PER_POOL, ACCOUNTS = 50, 200, 200


def world() -> tuple[Desired, Observed]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    addresses = [encode_address(i.to_bytes(32, "big")) for i in range(1, ACCOUNTS + 1)]
    accounts = tuple(
        AccountSpec(name=f"acct-{i}", role=AccountRole.OWNER, address=a)
        for i, a in enumerate(addresses)
    )
    pools, workers, pruntimes, chain_workers, observed_pools = [], [], {}, {}, {}
    for p in range(POOLS):
        pools.append(PoolSpec(name=f"pool-{p}", pid=p, owner=f"acct-{p}", default_stake=PHA * 100))
        keys = []
        for w in range(PER_POOL):
            n = p * PER_POOL + w
            endpoint = f"http://10.0.{n // 250}.{n % 250}:8000"
            key = f"{n:064x}"
            keys.append(key)
            workers.append(WorkerSpec(name=f"w-{n}", endpoint=endpoint, pool=f"pool-{p}"))
            pruntimes[endpoint] = PRuntimeObservation(
                endpoint=endpoint,
                info=PRuntimeInfo(initialized=True, blocknum=1000, headernum=1001, public_key=key),
                read_at=at,
            )
            chain_workers[key] = ChainWorker(
                pubkey=key,
                initial_score=1000,
                session=addresses[0],
                session_state=SessionState.WORKER_IDLE,
                stake=PHA * 100,
                pool_pid=p,
            )
        observed_pools[p] = ObservedPool(pid=p, owner=addresses[p], workers=tuple(keys))
    desired = Desired(pools=tuple(pools), workers=tuple(workers), accounts=accounts)
    observed = Observed(
        read_at=at,
        head=ChainHead(best_number=1000, finalized_number=999),
        pruntimes=pruntimes,
        chain_workers=chain_workers,
        pools=observed_pools,
        accounts={a: ObservedAccount(address=a, free=i * PHA) for i, a in enumerate(addresses)},
    )
    return desired, observed


def timed(label: str, fn: object) -> object:
    start = time.perf_counter()
    result = fn()  # type: ignore[operator]
    print(f"{label}: {(time.perf_counter() - start) * 1000:.0f} ms")
    return result


def main() -> None:
    desired, observed = world()
    plan = timed("plan_for (alerts for the lists)", lambda: plan_for(desired, observed))
    for kind in ListKind:
        build, columns = BUILDERS[kind]
        rows = timed(f"{kind.value}: rows", lambda b=build: b(desired, observed, plan))
        timed(f"{kind.value}: csv", lambda r=rows, c=columns: render_csv(r, c))
        timed(f"{kind.value}: json", lambda r=rows, k=kind: render_json(k, r, observed, "bench"))
        timed(
            f"{kind.value}: table",
            lambda r=rows, c=columns, k=kind: render_table(k, r, c, observed),
        )


if __name__ == "__main__":
    main()
