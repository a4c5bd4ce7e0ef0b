"""Pools: create the ones declared with ``create: true``, check the rest against the chain.

A pool whose transactions cannot succeed (missing on chain, another owner, an
operator that is not a proxy of the owner, unknown signer address) is alerted once
here and marked blocked, so its workers plan no transaction that would only fail.
"""

from __future__ import annotations

from poolkeeper.model.actions import ActionKind
from poolkeeper.plan._context import MAX_POOL_WORKERS, Context, PoolRun, make_action

POOL_MANAGER_PROXY_TYPES = frozenset({"StakePoolManager", "Any"})


def plan_pools(ctx: Context) -> None:
    """Fill ``ctx.pools`` and plan pool-level actions and alerts."""
    for spec in sorted(ctx.desired.pools, key=lambda p: p.name):
        observed = ctx.observed.pools.get(spec.pid) if spec.pid is not None else None
        run = PoolRun(spec=spec, observed=observed, owner_address=ctx.address_of.get(spec.owner))
        ctx.pools[spec.name] = run
        if spec.pid is not None:
            ctx.pools_by_pid[spec.pid] = run
        run.prerequisites = tuple(
            ctx.derive_ids[name] for name in (spec.owner, spec.signer) if name in ctx.derive_ids
        )
        _check_pool(ctx, run)


def _check_pool(ctx: Context, run: PoolRun) -> None:
    spec = run.spec
    target = run.target
    for name in dict.fromkeys((spec.owner, spec.signer)):
        if name not in ctx.address_of:
            ctx.alert(target, f"account {name!r} is not in the inventory", spec.name, critical=True)
            run.blocked = True
        elif ctx.address_of[name] is None and name not in ctx.derive_ids:
            ctx.alert(target, f"account {name!r} has no address: cannot sign", spec.name)
            run.blocked = True
    if spec.pid is None:
        run.blocked = True
        if spec.create:
            ctx.add_action(
                make_action(
                    ActionKind.CREATE_POOL,
                    target,
                    "declared with create: true and no pid",
                    pool=spec.name,
                    signer=spec.owner,
                    prerequisites=run.prerequisites,
                )
            )
        else:
            ctx.alert(
                target,
                "has no pid: write the pool's pid, or create: true to create it",
                spec.name,
                critical=True,
            )
        return
    observed = run.observed
    if observed is None:
        ctx.alert(target, f"pid {spec.pid} does not exist on chain", spec.name, critical=True)
        run.blocked = True
        return
    run.free_stake = observed.free_stake
    run.slots = MAX_POOL_WORKERS - len(observed.workers)
    if run.owner_address is not None and observed.owner != run.owner_address:
        ctx.alert(
            target,
            f"owner on chain is {observed.owner}, the inventory says {spec.owner} "
            f"({run.owner_address}): no pool transaction is planned",
            spec.name,
            critical=True,
        )
        run.blocked = True
        return
    if spec.proxied and not run.blocked:
        operator = ctx.address_of.get(spec.signer)
        if run.owner_address is None or operator is None:
            return
        granted = any(
            grant.real == run.owner_address
            and grant.delegate == operator
            and grant.proxy_type in POOL_MANAGER_PROXY_TYPES
            for grant in ctx.observed.proxies
        )
        if not granted:
            ctx.alert(
                target,
                f"operator {spec.signer} ({operator}) is not a StakePoolManager proxy of owner "
                f"{spec.owner}: add the proxy on chain (Proxy.add_proxy), pool transactions "
                "would fail",
                spec.name,
                critical=True,
            )
            run.blocked = True
