"""The machine-readable plan: a documented JSON document, ``format_version`` 1.

Within version 1 changes are additive only (new keys may appear; none is removed or
changes meaning). Amounts are strings of plancks: a u128 does not fit a JSON number
that every reader handles exactly. The schema is described in docs/planner.md.
"""

from __future__ import annotations

import json
from typing import Any

from poolkeeper.model.actions import Action, Plan, Symbol

FORMAT_VERSION = 1


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON-ready data, with the derived ``summary`` and ``symbol`` keys."""
    actions = []
    for action in plan.actions:
        data = action.model_dump(mode="json")
        data["symbol"] = action.symbol.value
        if action.amount is not None:
            data["amount"] = str(action.amount)
        for key in ("stake_change", "fee"):
            value = getattr(action, key)
            data[key] = None if value is None else str(value)
        actions.append(data)
    return {
        "format_version": FORMAT_VERSION,
        "block": plan.block,
        "summary": {
            "add": plan.count(Symbol.CREATE),
            "change": plan.count(Symbol.CHANGE),
            "remove": plan.count(Symbol.REMOVE),
            "alerts": len(plan.alerts),
            "waits": len(plan.waits),
            "drift": len(plan.drift),
            "destructive": sum(1 for a in plan.actions if a.destructive),
            "stake_locked": str(plan.stake_locked),
            "stake_released": str(plan.stake_released),
            "fee_total": None if plan.fee_total is None else str(plan.fee_total),
            "last_wait_ends_at": _last_end(plan),
            "waits_without_eta": sum(1 for w in plan.waits if w.eta_seconds is None),
        },
        "warnings": list(plan.warnings),
        "actions": actions,
        "waits": [w.model_dump(mode="json") for w in plan.waits],
        "alerts": [a.model_dump(mode="json") for a in plan.alerts],
        "drift": [d.model_dump(mode="json") for d in plan.drift],
    }


def _last_end(plan: Plan) -> str | None:
    """When the last wait with an ETA ends (ISO 8601, UTC); None when none has one."""
    ends = [w.ends_at for w in plan.waits if w.ends_at is not None]
    return max(ends).isoformat().replace("+00:00", "Z") if ends else None


def render_json(plan: Plan) -> str:
    """The plan document as indented JSON text."""
    return json.dumps(plan_document(plan), indent=2, ensure_ascii=False) + "\n"


class PlanDocumentError(ValueError):
    """A plan document that is not a poolkeeper plan of a version this code reads."""


def plan_from_document(data: Any) -> Plan:
    """Read a plan document back (e.g. a plan saved with ``plan -o``), ignoring derived keys."""
    if not isinstance(data, dict):
        raise PlanDocumentError("a plan document is a JSON object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanDocumentError(
            f"plan format_version {version!r} is not supported (this poolkeeper reads "
            f"{FORMAT_VERSION})"
        )
    known = set(Plan.model_fields)
    body = {k: v for k, v in data.items() if k in known}
    action_keys = set(Action.model_fields)
    body["actions"] = [
        {k: v for k, v in action.items() if k in action_keys} for action in data.get("actions", [])
    ]
    try:
        return Plan.model_validate(body)
    except ValueError as exc:
        raise PlanDocumentError(f"not a valid plan document: {exc}") from exc
