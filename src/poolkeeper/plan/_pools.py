"""Pools: create the ones declared with ``create: true``, check the rest against the chain.

A pool whose transactions cannot succeed (missing on chain, another owner, an
operator that is not a proxy of the owner, unknown signer address) is alerted once
here and marked blocked, so its workers plan no transaction that would only fail.
"""

from __future__ import annotations

from decimal import Decimal

from poolkeeper.model.actions import ActionKind
from poolkeeper.model.amounts import format_pha
from poolkeeper.model.desired import commission_permill
from poolkeeper.model.observed import ObservedPool
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
    _check_chain_pool(ctx, run)
    if not run.blocked and run.observed is not None:
        if run.spec.draining:
            _drained(ctx, run, run.observed)
        else:
            _pool_settings(ctx, run, run.observed)


def _drained(ctx: Context, run: PoolRun, observed: ObservedPool) -> None:
    """A draining pool with no worker left (none computing, none cooling down): say what
    stake remains and how it leaves; the workers' own actions and waits show the path."""
    bound = any(w.pool_pid == observed.pid for w in ctx.observed.chain_workers.values())
    if observed.workers or observed.cd_workers or bound:
        return
    ctx.alert(
        run.target,
        f"drained: no worker left in pid {observed.pid}; {format_pha(observed.free_stake)} "
        f"of free stake remains in the pool: each staker (the owner too) withdraws its "
        f"share with PhalaStakePoolv2.withdraw(pid {observed.pid}, shares, None); then "
        f"remove the pool from the inventory",
        run.spec.name,
    )


def _check_chain_pool(ctx: Context, run: PoolRun) -> None:
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


def _show(setting: str, value: int | None) -> str:
    if value is None:
        return "not set"
    if setting == "cap":
        return format_pha(value)
    text = f"{Decimal(value) / 10_000:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"


def _pool_settings(ctx: Context, run: PoolRun, observed: ObservedPool) -> None:
    """Cap and commission: set when the inventory changed them (or never matched);
    reported as drift when the chain moved away from a value that once matched.

    Both calls are the owner's own: the runtime's StakePoolManager proxy filter admits
    only the worker lifecycle calls, so these are never wrapped in ``Proxy.proxy``."""
    spec = run.spec
    declared_commission = commission_permill(spec.commission) if spec.commission else None
    known = ctx.observed.pool_settings_known.get(observed.pid, {})
    for setting, kind, declared, on_chain in (
        ("cap", ActionKind.SET_POOL_CAP, spec.cap, observed.cap),
        ("commission", ActionKind.SET_POOL_COMMISSION, declared_commission, observed.commission),
    ):
        if declared is None or declared == on_chain:
            continue
        difference = (
            f"{setting} on chain is {_show(setting, on_chain)}, "
            f"the inventory says {_show(setting, declared)}"
        )
        if known.get(setting) == declared:
            ctx.report_drift(
                run.target,
                f"{difference}: changed on chain by someone else"
                + ("" if ctx.desired.settings.loop.self_heal else " (self_heal is off)"),
                spec.name,
            )
            if not ctx.desired.settings.loop.self_heal:
                continue
            difference += " (self-heal)"
        owner = ctx.desired.accounts_by_name.get(spec.owner)
        if owner is None or (owner.derivation is None and owner.key is None):
            ctx.alert(
                run.target,
                f"{difference}: only the owner may set it (a StakePoolManager proxy may not) "
                f"and poolkeeper has no key for {spec.owner!r}: give it a key or derivation, "
                f"or set it yourself (PhalaStakePoolv2.{kind.value})",
                spec.name,
            )
            continue
        ctx.add_action(
            make_action(
                kind,
                run.target,
                difference,
                prerequisites=run.prerequisites,
                pool=spec.name,
                pid=spec.pid,
                amount=declared,
                signer=spec.owner,
            )
        )
