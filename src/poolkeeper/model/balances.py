"""The balance rule: which thresholds apply to an account and how low is too low.

The planner's ``!`` alerts, ``poolkeeper list accounts`` and the webhook notifier must
never disagree about whether an account is fine, so the rule lives here once.
"""

from __future__ import annotations

from enum import StrEnum

from poolkeeper.model.desired import AccountSpec, Settings


class BalanceLevel(StrEnum):
    """How an account's free balance stands against its thresholds."""

    OK = "ok"
    WARN = "warn"
    """Below ``warn_below`` (but not below ``critical_below``)."""
    CRITICAL = "critical"
    """Below ``critical_below``."""


def thresholds_of(settings: Settings, account: AccountSpec) -> tuple[int, int]:
    """``(warn_below, critical_below)``: the account's own, else the settings defaults."""
    warn = account.warn_below if account.warn_below is not None else settings.warn_below
    critical = (
        account.critical_below if account.critical_below is not None else settings.critical_below
    )
    return warn, critical


def balance_level(free: int, warn_below: int, critical_below: int) -> BalanceLevel:
    """Strictly below a threshold is an alert; exactly at it is not."""
    if free < critical_below:
        return BalanceLevel.CRITICAL
    if free < warn_below:
        return BalanceLevel.WARN
    return BalanceLevel.OK
