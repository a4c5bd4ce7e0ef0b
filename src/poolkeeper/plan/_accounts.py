"""Accounts: derive missing addresses, alert on low balances, plan top-ups.

Accounts are planned first: pools and workers need their signers' addresses, and a
derivation planned here becomes a prerequisite of every transaction signed by it.
"""

from __future__ import annotations

from poolkeeper.model.actions import ActionKind
from poolkeeper.model.amounts import format_pha
from poolkeeper.model.balances import BalanceLevel, balance_level, thresholds_of
from poolkeeper.model.desired import AccountSpec
from poolkeeper.model.durations import format_duration
from poolkeeper.model.runway import FUNDING_RUNWAY_LOW, low_runways
from poolkeeper.plan._context import Context, make_action


def plan_accounts(ctx: Context) -> None:
    """Resolve addresses (deriving where allowed), then check balances and top-ups."""
    accounts = sorted(ctx.desired.accounts, key=lambda a: a.name)
    for account in accounts:
        ctx.address_of[account.name] = account.address
        if account.address is not None:
            continue
        target = f"account/{account.name}"
        if account.derivation is None:
            ctx.alert(
                target,
                "has neither an address nor a derivation label: add one of them",
                None,
                critical=True,
            )
        elif ctx.policy.derive:
            action = make_action(
                ActionKind.DERIVE_ACCOUNT,
                target,
                f"no address yet: derive it from the master secret at //{account.derivation}",
            )
            ctx.derive_ids[account.name] = ctx.add_action(action).id
        else:
            ctx.alert(target, "has no address yet: run `poolkeeper accounts generate`", None)
    spendable: dict[str, int] = {}
    for account in accounts:
        if account.address is not None:
            _check_balance(ctx, account, spendable)
    _check_runways(ctx)


def _check_runways(ctx: Context) -> None:
    """``FundingRunwayLow``: a signer whose balance lasts fewer days than declared."""
    settings = ctx.desired.settings.runway
    for runway in low_runways(ctx.desired, ctx.observed):
        assert runway.days is not None and runway.free is not None
        ctx.alert(
            f"account/{runway.account}",
            f"funding runway {runway.days:.1f} days is below {settings.alert_below_days:g} days: "
            f"{format_pha(runway.free)} at {format_pha(runway.burn_per_day)}/day of fees "
            f"({runway.extrinsics} extrinsics in the last "
            f"{format_duration(int(runway.span_seconds))})",
            None,
            name=FUNDING_RUNWAY_LOW,
        )


def _thresholds(ctx: Context, account: AccountSpec) -> tuple[int, int]:
    return thresholds_of(ctx.desired.settings, account)


def _free_of(ctx: Context, address: str) -> int:
    """Free balance; an account the chain does not hold has nothing (System.Account default)."""
    observed = ctx.observed.accounts.get(address)
    return observed.free if observed is not None else 0


def _check_balance(ctx: Context, account: AccountSpec, spendable: dict[str, int]) -> None:
    assert account.address is not None
    target = f"account/{account.name}"
    free = _free_of(ctx, account.address)
    warn, critical = _thresholds(ctx, account)
    level = balance_level(free, warn, critical)
    if level is BalanceLevel.CRITICAL:
        ctx.alert(
            target,
            f"balance {format_pha(free)} is below the critical threshold {format_pha(critical)}",
            None,
            critical=True,
        )
    elif level is BalanceLevel.WARN:
        ctx.alert(
            target,
            f"balance {format_pha(free)} is below the warn threshold {format_pha(warn)}",
            None,
        )
    policy = account.top_up
    if policy is None or not ctx.policy.top_up or free >= policy.to:
        return
    funding = ctx.desired.accounts_by_name.get(policy.from_account)
    if funding is None or funding.address is None:
        ctx.alert(
            target,
            f"cannot top up: funding account {policy.from_account!r} has no address",
            None,
        )
        return
    funding_floor, _ = _thresholds(ctx, funding)
    if funding.name not in spendable:
        spendable[funding.name] = _free_of(ctx, funding.address) - funding_floor
    available = spendable[funding.name]
    sent_today = ctx.observed.topped_up_today.get(account.address, 0)
    cap_left = policy.max_per_day - sent_today
    needed = policy.to - free
    if cap_left <= 0:
        ctx.alert(
            target,
            f"top-up cap reached: {format_pha(sent_today)} of {format_pha(policy.max_per_day)} "
            f"sent today; balance {format_pha(free)} stays below {format_pha(policy.to)}",
            None,
        )
        return
    if available <= 0:
        ctx.alert(
            target,
            f"cannot top up from {funding.name}: it would go below its floor "
            f"{format_pha(funding_floor)}",
            None,
        )
        return
    amount = min(needed, cap_left, available)
    limits = []
    if amount == cap_left and amount < needed:
        limits.append("limited by the daily cap")
    if amount == available and amount < needed:
        limits.append(f"limited by {funding.name}'s floor {format_pha(funding_floor)}")
    note = f" ({', '.join(limits)})" if limits else ""
    spendable[funding.name] = available - amount
    ctx.add_action(
        make_action(
            ActionKind.TOP_UP,
            target,
            f"balance {format_pha(free)} < {format_pha(policy.to)}: "
            f"send {format_pha(amount)} from {funding.name}{note}",
            amount=amount,
            signer=funding.name,
            destination=account.address,
            prerequisites=(ctx.derive_ids.get(funding.name, ""),),
        )
    )
