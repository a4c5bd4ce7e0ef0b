"""The human plan: grouped by pool, then by worker, one line per item, Terraform style.

Symbols: ``+`` create, ``~`` change, ``-`` remove, ``!`` alert; waits read
``(waiting)`` and drift ``~ drift:``. The summary counts actions by symbol and the
alerts; waits and drift are listed, not counted. Colour only when the caller asks.
"""

from __future__ import annotations

from collections.abc import Iterable

from poolkeeper.model.actions import (
    Action,
    ActionKind,
    Alert,
    Drift,
    EtaBasis,
    Plan,
    Symbol,
    Wait,
)
from poolkeeper.model.amounts import format_pha
from poolkeeper.model.durations import format_duration

NO_CHANGES = "No changes. The pools match the inventory."
NO_POOL = "(no pool)"
ACCOUNTS = "accounts"

_COLOURS = {
    Symbol.CREATE: "32",
    Symbol.CHANGE: "33",
    Symbol.REMOVE: "31",
    Symbol.ALERT: "1;31",
    "wait": "36",
    "drift": "33",
    "warning": "1;33",
}


def _paint(text: str, colour: str, enabled: bool) -> str:
    return f"\x1b[{colour}m{text}\x1b[0m" if enabled else text


def summary_line(plan: Plan) -> str:
    """``Plan: 3 to add, 2 to change, 1 to remove, 1 alert.``"""
    alerts = len(plan.alerts)
    return (
        f"Plan: {plan.count(Symbol.CREATE)} to add, {plan.count(Symbol.CHANGE)} to change, "
        f"{plan.count(Symbol.REMOVE)} to remove, {alerts} alert{'' if alerts == 1 else 's'}."
    )


def _group_of(target: str, pool: str | None) -> str:
    if target.startswith("account/"):
        return ACCOUNTS
    return pool if pool is not None else NO_POOL


def _action_line(action: Action, colour: bool) -> str:
    details = []
    if action.pid is not None:
        details.append(f"pid {action.pid}")
    if action.amount is not None and action.kind is ActionKind.SET_POOL_COMMISSION:
        details.append(f"{action.amount} Permill")
    elif action.amount is not None:
        details.append(format_pha(action.amount))
    if action.stake_change:
        verb = "locks" if action.stake_change > 0 else "releases"
        details.append(f"{verb} {format_pha(abs(action.stake_change))}")
    if action.fee is not None:
        details.append(f"fee ≈ {format_pha(action.fee)}")
    suffix = f" ({', '.join(details)})" if details else ""
    symbol = _paint(action.symbol.value, _COLOURS[action.symbol], colour)
    return f"{symbol} {action.kind.value}{suffix}: {action.reason}"


def _wait_line(wait: Wait, colour: bool) -> str:
    head = _paint("(waiting)", _COLOURS["wait"], colour)
    if wait.eta_seconds is not None:
        return f"{head} {wait.awaiting} ends {_eta_text(wait)}: {wait.reason}"
    return f"{head} {wait.awaiting}: {wait.reason}"


def _eta_text(wait: Wait) -> str:
    """``in 3h 12m (2023-11-15 01:25 UTC)``; ``≈`` marks estimates from measured rates."""
    assert wait.eta_seconds is not None
    about = "≈ " if wait.eta_basis is EtaBasis.ESTIMATE else ""
    text = f"in {about}{format_duration(wait.eta_seconds)}"
    if wait.ends_at is not None:
        text += f" ({about}{wait.ends_at:%Y-%m-%d %H:%M:%S} UTC)"
    return text


def waits_line(plan: Plan) -> str | None:
    """``Waits: 3; the last ends in 6d 23h (...); 1 without an ETA.``; None without waits."""
    if not plan.waits:
        return None
    timed = [w for w in plan.waits if w.eta_seconds is not None]
    text = f"Waits: {len(plan.waits)}"
    if timed:
        last = max(timed, key=lambda w: w.eta_seconds or 0)
        text += f"; the last ends {_eta_text(last)} ({last.awaiting}, {last.target})"
    untimed = len(plan.waits) - len(timed)
    if untimed:
        text += f"; {untimed} without an ETA"
    return text + "."


def _alert_line(alert: Alert, colour: bool) -> str:
    symbol = _paint(Symbol.ALERT.value, _COLOURS[Symbol.ALERT], colour)
    name = f" {alert.name}" if alert.name else ""
    return f"{symbol} {alert.severity.value}{name}: {alert.message}"


def _drift_line(drift: Drift, colour: bool) -> str:
    return f"{_paint('~ drift:', _COLOURS['drift'], colour)} {drift.message}"


def _group_order(name: str) -> tuple[int, str]:
    if name == ACCOUNTS:
        return (0, "")
    if name == NO_POOL:
        return (2, "")
    return (1, name)


def render_text(plan: Plan, *, colour: bool = False) -> str:
    """The whole human plan, ending with the summary line (or the no-changes line)."""
    lines = [_paint(f"Warning: {w}", _COLOURS["warning"], colour) for w in plan.warnings]
    if lines:
        lines.append("")
    if not (plan.actions or plan.waits or plan.alerts or plan.drift):
        return "\n".join([*lines, NO_CHANGES]) + "\n"
    groups: dict[str, dict[str, list[str]]] = {}
    pids: dict[str, int] = {}

    def add(items: Iterable[Action | Wait | Alert | Drift]) -> None:
        for item in items:
            group = _group_of(item.target, item.pool)
            rendered = _render_item(item, colour)
            groups.setdefault(group, {}).setdefault(item.target, []).append(rendered)
            if isinstance(item, Action) and item.pid is not None and item.pool is not None:
                pids.setdefault(item.pool, item.pid)

    add(plan.actions)
    add(plan.waits)
    add(plan.alerts)
    add(plan.drift)
    for group in sorted(groups, key=_group_order):
        if group in (ACCOUNTS, NO_POOL):
            lines.append(group)
        else:
            pid = f" (pid {pids[group]})" if group in pids else ""
            lines.append(f"pool {group}{pid}")
        targets = groups[group]
        for target in sorted(targets, key=lambda t: (not t.startswith("pool/"), t)):
            if target.startswith("pool/"):
                lines.extend(f"  {line}" for line in targets[target])
                continue
            kind, _, name = target.partition("/")
            lines.append(f"  {kind} {name}")
            lines.extend(f"    {line}" for line in targets[target])
        lines.append("")
    for totals in (waits_line(plan), money_line(plan)):
        if totals:
            lines.append(totals)
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def money_line(plan: Plan) -> str | None:
    """``Fees ≈ 0.05 PHA; stake locked 8000 PHA, released 0 PHA.``; None when unknown."""
    fee = plan.fee_total
    if fee is None and not any(a.stake_change for a in plan.actions):
        return None
    parts = []
    if fee is not None:
        parts.append(f"Fees ≈ {format_pha(fee)} (estimated)")
    parts.append(
        f"stake locked {format_pha(plan.stake_locked)}, released {format_pha(plan.stake_released)}"
    )
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


def _render_item(item: Action | Wait | Alert | Drift, colour: bool) -> str:
    if isinstance(item, Action):
        return _action_line(item, colour)
    if isinstance(item, Wait):
        return _wait_line(item, colour)
    if isinstance(item, Alert):
        return _alert_line(item, colour)
    return _drift_line(item, colour)
