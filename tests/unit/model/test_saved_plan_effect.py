"""A saved plan still applies while its chain actions would do the same thing.

Found under load: an approved ``restart_computing`` could be refused because the fresh
plan's copy carried a top-up that had become due meanwhile as a prerequisite. What a call
does is its kind, target, pool, worker, amount, signer and destination; its reason and the
other actions one plan happens to hold are not part of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from poolkeeper.app import inventory_digest
from poolkeeper.cli._live import SAVED_PLAN_VERSION, check_saved_plan
from poolkeeper.errors import StalePlan
from poolkeeper.model.actions import ActionKind, Plan
from poolkeeper.plan._context import make_action
from poolkeeper.render import plan_document

RESTART = make_action(
    ActionKind.RESTART_COMPUTING,
    "worker/w05",
    "stake 1,000 PHA → 1,200 PHA",
    pool="pool-a",
    pid=0,
    worker="w05",
    pubkey="ab" * 32,
    amount=1200,
    signer="operator-a",
)
TOP_UP_DUE = ("top_up:account/operator-a",)


def saved(plan: Plan, directory: Path) -> dict[str, Any]:
    (directory / "settings.yaml").write_text("settings: {}\n")
    return {
        "format_version": SAVED_PLAN_VERSION,
        "inventory_digest": inventory_digest(directory),
        "plan": plan_document(plan),
    }


def test_same_effect_ignores_reason_and_prerequisites() -> None:
    moved = RESTART.model_copy(update={"reason": "other words", "prerequisites": TOP_UP_DUE})
    assert RESTART.effect_differences(moved) == []


def test_a_changed_amount_is_named_field_by_field() -> None:
    assert RESTART.effect_differences(RESTART.model_copy(update={"amount": 1300})) == [
        "amount 1200 → 1300"
    ]


def test_saved_plan_applies_when_only_prerequisites_moved(tmp_path: Path) -> None:
    document = saved(Plan(actions=(RESTART,)), tmp_path)
    fresh = Plan(actions=(RESTART.model_copy(update={"prerequisites": TOP_UP_DUE}),))
    assert [a.id for a in check_saved_plan(document, tmp_path, fresh).actions] == [RESTART.id]


def test_saved_plan_refused_with_the_difference_named(tmp_path: Path) -> None:
    document = saved(Plan(actions=(RESTART,)), tmp_path)
    more = Plan(actions=(RESTART.model_copy(update={"amount": 1300}),))
    with pytest.raises(StalePlan, match=r"restart_computing:worker/w05 \(amount 1200 → 1300\)"):
        check_saved_plan(document, tmp_path, more)
    with pytest.raises(StalePlan, match=r"restart_computing:worker/w05 \(no longer planned\)"):
        check_saved_plan(document, tmp_path, Plan())
