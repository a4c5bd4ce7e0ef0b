"""Plan renderers: exact human text for a small plan, the JSON document's schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from poolkeeper.model.actions import (
    Action,
    ActionKind,
    Alert,
    Drift,
    EtaBasis,
    Plan,
    Severity,
    Wait,
)
from poolkeeper.model.amounts import format_pha
from poolkeeper.model.durations import format_duration
from poolkeeper.render import (
    NO_CHANGES,
    PlanDocumentError,
    plan_document,
    plan_from_document,
    render_json,
    render_text,
    summary_line,
)

PK = "ab" * 32
PHA = 10**12


def _small_plan() -> Plan:
    return Plan(
        block=1000,
        actions=(
            Action(
                id="top_up:account/operator",
                kind=ActionKind.TOP_UP,
                target="account/operator",
                reason="balance 10 PHA < 100 PHA: send 90 PHA from funding",
                amount=90 * 10**12,
                signer="funding",
                destination="addr",
            ),
            Action(
                id="add_worker:worker/w1",
                kind=ActionKind.ADD_WORKER,
                target="worker/w1",
                reason="scored and not in a pool: add to pid 1",
                pool="alpha",
                pid=1,
                pubkey=PK,
                signer="operator",
                proxy_for="owner",
            ),
            Action(
                id="start_computing:worker/w1",
                kind=ActionKind.START_COMPUTING,
                target="worker/w1",
                reason="in pool and Ready: start computing with 5000 PHA",
                pool="alpha",
                pid=1,
                pubkey=PK,
                amount=5000 * 10**12,
                signer="operator",
                proxy_for="owner",
                prerequisites=("add_worker:worker/w1",),
            ),
            Action(
                id="stop_computing:worker/w2",
                kind=ActionKind.STOP_COMPUTING,
                target="worker/w2",
                reason="declared idle: stop computing",
                pool="alpha",
                pid=1,
                destructive=True,
            ),
            Action(
                id="start_relay:worker/s1",
                kind=ActionKind.START_RELAY,
                target="worker/s1",
                reason="pRuntime is not initialized",
            ),
        ),
        waits=(
            Wait(
                target="worker/w3",
                awaiting="cool-down",
                reason="declared idle: reclaim once the cool-down ends",
                pool="alpha",
                eta_seconds=3 * 3600 + 12 * 60 + 59,
                ends_at=datetime(2023, 11, 15, 1, 26, 19, tzinfo=UTC),
                eta_basis=EtaBasis.CHAIN,
            ),
            Wait(target="worker/s1", awaiting="sync", reason="pRuntime not initialized yet"),
        ),
        alerts=(
            Alert(
                target="pool/alpha",
                severity=Severity.CRITICAL,
                message="owner on chain is X",
                pool="alpha",
            ),
        ),
        drift=(Drift(target="worker/w4", message="stake on chain 5 PHA > 3 PHA", pool="alpha"),),
    )


EXPECTED = """\
accounts
  account operator
    ~ top_up (90 PHA): balance 10 PHA < 100 PHA: send 90 PHA from funding

pool alpha (pid 1)
  ! critical: owner on chain is X
  worker w1
    + add_worker (pid 1): scored and not in a pool: add to pid 1
    + start_computing (pid 1, 5000 PHA): in pool and Ready: start computing with 5000 PHA
  worker w2
    - stop_computing (pid 1): declared idle: stop computing
  worker w3
    (waiting) cool-down ends in 3h 12m (2023-11-15 01:26:19 UTC): \
declared idle: reclaim once the cool-down ends
  worker w4
    ~ drift: stake on chain 5 PHA > 3 PHA

(no pool)
  worker s1
    + start_relay: pRuntime is not initialized
    (waiting) sync: pRuntime not initialized yet

Waits: 2; the last ends in 3h 12m (2023-11-15 01:26:19 UTC) (cool-down, worker/w3); \
1 without an ETA.
Plan: 3 to add, 1 to change, 1 to remove, 1 alert.
"""


def test_human_text_of_a_small_plan() -> None:
    assert render_text(_small_plan()) == EXPECTED


def test_colour_wraps_symbols_only_when_asked() -> None:
    coloured = render_text(_small_plan(), colour=True)
    assert "\x1b[32m+\x1b[0m add_worker" in coloured
    assert "\x1b[31m-\x1b[0m stop_computing" in coloured
    assert "\x1b[1;31m!\x1b[0m critical" in coloured
    assert "\x1b[" not in render_text(_small_plan())


def test_empty_plan_says_no_changes() -> None:
    assert render_text(Plan()) == NO_CHANGES + "\n"


def test_warnings_come_first_and_alert_only_plans_still_summarise() -> None:
    plan = Plan(
        alerts=(Alert(target="account/a", severity=Severity.WARN, message="low"),),
        warnings=("limited by --target worker/x",),
    )
    assert render_text(plan) == (
        "Warning: limited by --target worker/x\n\naccounts\n  account a\n    ! warn: low\n\n"
        "Plan: 0 to add, 0 to change, 0 to remove, 1 alert.\n"
    )
    assert summary_line(Plan()) == "Plan: 0 to add, 0 to change, 0 to remove, 0 alerts."


def test_json_document_schema() -> None:
    document = json.loads(render_json(_small_plan()))
    assert set(document) == {
        "format_version",
        "block",
        "summary",
        "warnings",
        "actions",
        "waits",
        "alerts",
        "drift",
    }
    assert document["format_version"] == 1
    assert document["summary"] == {
        "add": 3,
        "change": 1,
        "remove": 1,
        "alerts": 1,
        "waits": 2,
        "drift": 1,
        "destructive": 1,
        "stake_locked": "0",
        "stake_released": "0",
        "fee_total": None,
        "last_wait_ends_at": "2023-11-15T01:26:19Z",
        "waits_without_eta": 1,
    }
    start = document["actions"][2]
    assert set(start) == {
        "id",
        "kind",
        "symbol",
        "target",
        "reason",
        "pool",
        "pid",
        "worker",
        "pubkey",
        "amount",
        "signer",
        "proxy_for",
        "destination",
        "prerequisites",
        "destructive",
        "stake_change",
        "fee",
    }
    assert start["amount"] == "5000000000000000"
    assert start["symbol"] == "+"
    assert start["prerequisites"] == ["add_worker:worker/w1"]
    assert set(document["waits"][0]) == {
        "target",
        "awaiting",
        "reason",
        "pool",
        "eta_seconds",
        "ends_at",
        "eta_basis",
    }
    assert document["waits"][0]["ends_at"] == "2023-11-15T01:26:19Z"
    assert document["waits"][0]["eta_basis"] == "chain"
    assert document["summary"]["last_wait_ends_at"] == "2023-11-15T01:26:19Z"
    assert document["summary"]["waits_without_eta"] == 1
    assert set(document["alerts"][0]) == {"target", "severity", "message", "pool", "name"}
    assert set(document["drift"][0]) == {"target", "message", "pool"}


def test_json_document_reads_back_to_the_same_plan() -> None:
    plan = _small_plan()
    assert plan_from_document(json.loads(render_json(plan))) == plan
    assert plan_from_document(plan_document(plan)) == plan


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object"),
        ({"format_version": 2}, "format_version 2 is not supported"),
        ({"format_version": 1, "actions": [{"id": "x"}]}, "not a valid plan document"),
    ],
)
def test_bad_plan_documents_are_refused(document: object, message: str) -> None:
    with pytest.raises(PlanDocumentError, match=message):
        plan_from_document(document)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0s"),
        (45, "45s"),
        (60, "1m"),
        (3600, "1h"),
        (11520, "3h 12m"),
        (86400, "1d"),
        (604799, "6d 23h"),
        (604800, "7d"),
    ],
)
def test_durations(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_stake_and_fees_per_action_and_in_total() -> None:
    """Each action shows the stake it moves and its fee share; the totals line sums them,
    above the summary line; the JSON carries them as strings of plancks."""
    base = _small_plan()
    actions = tuple(
        a.model_copy(update={"stake_change": 5000 * PHA, "fee": 12_345_678})
        if a.kind.value == "start_computing"
        else a.model_copy(update={"fee": 1_000_000})
        for a in base.actions
    )
    reclaim = actions[0].model_copy(
        update={
            "id": "reclaim_pool_worker:worker/w3",
            "kind": ActionKind.RECLAIM_WORKER,
            "target": "worker/w3",
            "stake_change": -2000 * PHA,
            "fee": 0,
        }
    )
    plan = base.model_copy(update={"actions": (*actions, reclaim)})
    text = render_text(plan)
    assert "+ start_computing (pid 1, 5000 PHA, locks 5000 PHA, fee ≈ 0.000012345678 PHA)" in text
    assert "releases 2000 PHA" in text
    fee_total = sum(a.fee or 0 for a in plan.actions)
    assert text.endswith(
        f"Fees ≈ {format_pha(fee_total)} (estimated); stake locked 5000 PHA, released 2000 PHA.\n"
        + summary_line(plan)
        + "\n"
    )
    document = json.loads(render_json(plan))
    assert document["summary"]["stake_locked"] == str(5000 * PHA)
    assert document["summary"]["stake_released"] == str(2000 * PHA)
    assert document["summary"]["fee_total"] == str(fee_total)
    start = next(a for a in document["actions"] if a["kind"] == "start_computing")
    assert (start["stake_change"], start["fee"]) == (str(5000 * PHA), "12345678")
    assert plan_from_document(document).actions == plan.actions
