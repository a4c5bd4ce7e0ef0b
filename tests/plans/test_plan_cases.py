"""Table-driven planner cases: every ``*.yaml`` here is one case (inventory + observed → plan).

A case merges its ``inventory`` and ``observed`` onto ``_base.yaml`` (named list items
replace or extend by ``name``; mappings merge key by key; ``null`` deletes a key), plans
with its ``policy``, and compares the whole plan with ``expect``: the exact sequence of
actions (kind, target) with any listed parameters, the exact waits (target, awaiting,
and ETA, end time and ETA basis when given), alerts (target, severity, and a text the
message contains) and drift (target and a text). Amounts may be written ``"5000 PHA"``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from poolkeeper.model.actions import Plan
from poolkeeper.model.amounts import parse_amount
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed
from poolkeeper.plan import PlanPolicy, plan_for

HERE = Path(__file__).parent
CASE_FILES = sorted(p for p in HERE.glob("*.yaml") if not p.name.startswith("_"))
AMOUNT_KEYS = {"amount"}


def _read(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def merge(base: Any, over: Any) -> Any:
    """Merge ``over`` onto ``base`` (see the module docstring)."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value)
            else:
                out[key] = value
        return out
    if (
        isinstance(base, list)
        and isinstance(over, list)
        and all(isinstance(i, dict) and "name" in i for i in [*base, *over])
    ):
        out_list = [dict(i) for i in base]
        names = [i["name"] for i in out_list]
        for item in over:
            if item["name"] in names:
                out_list[names.index(item["name"])] = merge(
                    out_list[names.index(item["name"])], item
                )
            else:
                out_list.append(item)
                names.append(item["name"])
        return [i for i in out_list if not i.get("delete")]
    return copy.deepcopy(over)


def load_case(path: Path) -> tuple[Desired, Observed, PlanPolicy, dict[str, Any]]:
    base = _read(HERE / "_base.yaml")
    case = _read(path)
    unknown = set(case) - {"description", "inventory", "observed", "policy", "expect"}
    assert not unknown, f"{path.name}: unknown keys {unknown}"
    desired = Desired.model_validate(merge(base["inventory"], case.get("inventory") or {}))
    observed = Observed.model_validate(merge(base["observed"], case.get("observed") or {}))
    policy_data = case.get("policy", {})
    policy = PlanPolicy(
        prune=policy_data.get("prune", False),
        targets=tuple(policy_data.get("targets", ())),
        top_up=policy_data.get("top_up", True),
        derive=policy_data.get("derive", True),
    )
    return desired, observed, policy, case["expect"]


def _describe(plan: Plan) -> str:
    lines = [f"  action {a.kind.value} {a.target} {a.reason}" for a in plan.actions]
    lines += [f"  wait {w.target} {w.awaiting} eta={w.eta_seconds}" for w in plan.waits]
    lines += [f"  alert {a.target} {a.severity.value} {a.message}" for a in plan.alerts]
    lines += [f"  drift {d.target} {d.message}" for d in plan.drift]
    return "the plan was:\n" + "\n".join(lines)


def check_plan(plan: Plan, expect: dict[str, Any]) -> None:
    """Compare a plan with a case's ``expect``; the message shows the whole plan."""
    unknown = set(expect) - {"actions", "waits", "alerts", "drift", "warnings"}
    assert not unknown, f"unknown expect keys {unknown}"
    info = _describe(plan)
    actions = expect.get("actions", [])
    assert [(a.kind.value, a.target) for a in plan.actions] == [
        (e["kind"], e["target"]) for e in actions
    ], info
    for action, wanted in zip(plan.actions, actions, strict=True):
        for key, written in wanted.items():
            if key in ("kind", "target"):
                continue
            if key == "reason_contains":
                assert written in action.reason, info
                continue
            value = written
            if key in AMOUNT_KEYS and written is not None:
                value = parse_amount(written)
            if key == "prerequisites":
                value = tuple(written)
            assert getattr(action, key) == value, f"{action.id}.{key}\n{info}"
    waits = expect.get("waits", [])
    assert [(w.target, w.awaiting) for w in plan.waits] == [
        (e["target"], e["awaiting"]) for e in waits
    ], info
    for wait, wanted in zip(plan.waits, waits, strict=True):
        if "eta_seconds" in wanted:
            assert wait.eta_seconds == wanted["eta_seconds"], info
        if "ends_at" in wanted:
            ends_at = None if wait.ends_at is None else wait.ends_at.isoformat()
            assert ends_at == wanted["ends_at"], info
        if "eta_basis" in wanted:
            basis = None if wait.eta_basis is None else wait.eta_basis.value
            assert basis == wanted["eta_basis"], info
        if "reason_contains" in wanted:
            assert wanted["reason_contains"] in wait.reason, info
    alerts = expect.get("alerts", [])
    assert [(a.target, a.severity.value) for a in plan.alerts] == [
        (e["target"], e["severity"]) for e in alerts
    ], info
    for alert, wanted in zip(plan.alerts, alerts, strict=True):
        assert wanted["contains"] in alert.message, f"{alert.message!r}\n{info}"
        if "name" in wanted:
            assert alert.name == wanted["name"], info
    drift = expect.get("drift", [])
    assert [d.target for d in plan.drift] == [e["target"] for e in drift], info
    for item, wanted in zip(plan.drift, drift, strict=True):
        assert wanted["contains"] in item.message, f"{item.message!r}\n{info}"
    warnings = expect.get("warnings", [])
    assert len(plan.warnings) == len(warnings), plan.warnings
    for text, wanted in zip(plan.warnings, warnings, strict=True):
        assert wanted in text


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_plan_case(path: Path) -> None:
    desired, observed, policy, expect = load_case(path)
    check_plan(plan_for(desired, observed, policy), expect)


def test_cases_exist() -> None:
    assert len(CASE_FILES) >= 20


def test_checker_rejects_a_wrong_expectation() -> None:
    """The comparison can fail: a case's plan against another case's expectations."""
    desired, observed, policy, _ = load_case(HERE / "computing-from-every-phase.yaml")
    _, _, _, other = load_case(HERE / "removed-from-every-phase.yaml")
    with pytest.raises(AssertionError):
        check_plan(plan_for(desired, observed, policy), other)
