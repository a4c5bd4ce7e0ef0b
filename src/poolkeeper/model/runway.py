"""Funding runway: each signer's fee burn rate and how many days its balance lasts.

Fees are paid by the accounts that sign (owners, operators, the relay signer); an
operator wants to know before a signer runs dry, not when an extrinsic fails. The
burn rate is the fees the audit log records for the signer over the runway window,
per day; the runway is its free balance divided by that rate. Pure: the fees come in
the observation (``Observed.fees_paid``, read from the audit by the apply layer), so
the planner's alert, ``status`` and the metrics agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed

MIN_SPAN_SECONDS = 3600.0
"""A fee record shorter than an hour is rated as an hour: one apply a minute ago is not
a burn rate of a thousand extrinsics a day."""
FUNDING_RUNWAY_LOW = "FundingRunwayLow"


@dataclass(frozen=True)
class Runway:
    """One signer's burn rate and runway."""

    account: str
    address: str
    free: int | None
    """Free balance now; None when not observed."""
    fees: int
    """Plancks paid within the window."""
    extrinsics: int
    span_seconds: float
    """How long the fee record covers (at least ``MIN_SPAN_SECONDS``)."""
    burn_per_day: int
    """Plancks a day at the window's rate."""
    days: float | None
    """Days the free balance lasts at that rate; None when nothing was burnt."""


def runways(desired: Desired, observed: Observed) -> dict[str, Runway]:
    """By account name, every inventory account with an address; empty when no fee
    record exists (no audit log yet)."""
    if observed.fees_since is None:
        return {}
    span = max((observed.read_at - observed.fees_since).total_seconds(), MIN_SPAN_SECONDS)
    result: dict[str, Runway] = {}
    for account in sorted(desired.accounts, key=lambda a: a.name):
        if account.address is None:
            continue
        paid = observed.fees_paid.get(account.address)
        fees = paid.plancks if paid else 0
        seen = observed.accounts.get(account.address)
        free = seen.free if seen is not None else None
        burn = int(fees * 86400 / span)
        days = None
        if burn > 0 and free is not None:
            days = round(free / burn, 2)
        result[account.name] = Runway(
            account=account.name,
            address=account.address,
            free=free,
            fees=fees,
            extrinsics=paid.extrinsics if paid else 0,
            span_seconds=span,
            burn_per_day=burn,
            days=days,
        )
    return result


def low_runways(desired: Desired, observed: Observed) -> list[Runway]:
    """Signers whose runway is below ``settings.runway.alert_below_days``."""
    limit = desired.settings.runway.alert_below_days
    if limit is None:
        return []
    return [r for r in runways(desired, observed).values() if r.days is not None and r.days < limit]
