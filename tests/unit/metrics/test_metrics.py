"""The metrics exposition, fed with one pass, one settled extrinsic and one failed pass;
and the dashboard and alert rules in docs/ name only metrics that exist."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from poolkeeper.apply.audit import AuditCall, AuditEntry
from poolkeeper.apply.executor import ActionResult
from poolkeeper.errors import TemporaryError
from poolkeeper.loop import PassResult
from poolkeeper.metrics import PoolMetrics, alert_kind, parse_listen
from poolkeeper.model.actions import Action, ActionKind, Alert, Plan, Severity
from poolkeeper.model.conditions import derive_conditions
from poolkeeper.model.desired import AccountRole, AccountSpec, Desired, PoolSpec, WorkerSpec
from poolkeeper.model.observed import (
    ChainHead,
    ChainWorker,
    FeesPaid,
    Observed,
    ObservedAccount,
    PRuntimeInfo,
    PRuntimeObservation,
    SessionState,
)

DOCS = Path(__file__).resolve().parents[3] / "docs"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
PHA = 10**12


def world() -> tuple[Desired, PassResult]:
    desired = Desired(
        pools=(PoolSpec(name="pool-a", pid=0, owner="owner"),),
        workers=(
            WorkerSpec(name="w0", endpoint="http://w0", pool="pool-a"),
            WorkerSpec(name="w1", endpoint="http://w1", pool="pool-a"),
        ),
        accounts=(AccountSpec(name="owner", role=AccountRole.OWNER, address="5Owner"),),
    )
    observed = Observed(
        read_at=NOW,
        head=ChainHead(best_number=120, finalized_number=118),
        pruntimes={
            "http://w0": PRuntimeObservation(
                endpoint="http://w0",
                info=PRuntimeInfo(initialized=True, blocknum=110, public_key="aa" * 32),
            ),
            "http://w1": PRuntimeObservation(endpoint="http://w1", error="refused"),
        },
        chain_workers={
            "aa" * 32: ChainWorker(
                pubkey="aa" * 32, session_state=SessionState.WORKER_IDLE, pool_pid=0
            )
        },
        accounts={"5Owner": ObservedAccount(address="5Owner", free=3 * PHA)},
        fees_paid={"5Owner": FeesPaid(plancks=PHA // 2, extrinsics=4)},
        fees_since=NOW - timedelta(days=1),
    )
    top_up = Action(
        id="top_up:account/owner", kind=ActionKind.TOP_UP, target="account/owner", reason="low"
    )
    plan = Plan(
        actions=(top_up,),
        alerts=(
            Alert(target="worker/w1", severity=Severity.WARN, message="pRuntime unreachable: x"),
            Alert(
                target="account/owner",
                severity=Severity.CRITICAL,
                message="balance 3 PHA is below the critical threshold 5 PHA",
            ),
        ),
    )
    result = PassResult(
        observed,
        plan,
        results=[ActionResult(top_up.id, True, extrinsic_hash="0x1", block_number=119)],
        conditions=derive_conditions(desired, observed, None, NOW),
        duration_seconds=0.7,
    )
    return desired, result


def scrape(metrics: PoolMetrics) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    text = generate_latest(metrics.registry).decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


@pytest.fixture
def fed() -> PoolMetrics:
    metrics = PoolMetrics(CollectorRegistry())
    desired, result = world()
    metrics.on_pass(result, desired)
    metrics.record(
        AuditEntry(
            extrinsic_hash="0x1",
            signer_address="5Op",
            signer_name="operator",
            nonce=1,
            status="in_block",
            calls=(AuditCall("top_up:account/owner", "Balances.transfer_keep_alive", ok=True),),
            fee=123,
        )
    )
    metrics.on_error(TemporaryError("node gone"))
    return metrics


def test_values_of_one_pass(fed: PoolMetrics) -> None:
    m = scrape(fed)
    assert m["poolkeeper_workers"][(("phase", "Computing"), ("pool", "pool-a"))] == 1
    assert m["poolkeeper_workers"][(("phase", "Unreachable"), ("pool", "pool-a"))] == 1
    assert m["poolkeeper_workers"][(("phase", "Syncing"), ("pool", "pool-a"))] == 0
    assert m["poolkeeper_relay_lag_blocks"] == {(("pool", "pool-a"), ("worker", "w0")): 8}
    assert m["poolkeeper_pruntime_up"] == {(("worker", "w0"),): 1, (("worker", "w1"),): 0}
    assert m["poolkeeper_plan_actions"] == {(("kind", "top_up"),): 1}
    assert m["poolkeeper_alerts"] == {
        (("kind", "balance"), ("level", "critical")): 1,
        (("kind", "pruntime_unreachable"), ("level", "warn")): 1,
    }
    assert m["poolkeeper_account_free_plancks"] == {
        (("account", "owner"), ("role", "owner")): 3 * PHA
    }
    # 0.5 PHA of fees in one day, 3 PHA free: 6 days of runway; no threshold declared
    assert m["poolkeeper_account_fee_burn_plancks_per_day"] == {(("account", "owner"),): PHA // 2}
    assert m["poolkeeper_account_funding_runway_days"] == {(("account", "owner"),): 6.0}
    assert m["poolkeeper_funding_runway_alert_below_days"] == {(): 0}
    assert m["poolkeeper_chain_best_block_number"] == {(): 120}
    assert m["poolkeeper_chain_finalized_block_number"] == {(): 118}
    assert m["poolkeeper_pass_duration_seconds_count"] == {(): 1}
    assert m["poolkeeper_passes_total"] == {(("result", "ok"),): 1, (("result", "failed"),): 1}
    assert m["poolkeeper_rpc_errors_total"] == {(("peer", "chain"),): 1, (("peer", "pruntime"),): 1}
    assert m["poolkeeper_extrinsics_total"][(("status", "in_block"),)] == 1
    assert m["poolkeeper_fees_paid_plancks_total"] == {(("signer", "operator"),): 123}
    assert m["poolkeeper_actions_executed_total"] == {(("kind", "top_up"), ("result", "ok")): 1}
    assert m["poolkeeper_loop_healthy"] == {(): 0}  # the failed pass came last
    assert m["poolkeeper_chain_stalled"] == {(): 0}
    assert m["poolkeeper_last_good_pass_timestamp_seconds"][()] > 1.7e9
    healthy = m["poolkeeper_worker_conditions"]
    unreachable = (
        ("condition", "Healthy"),
        ("reason", "Unreachable"),
        ("severity", "warn"),
        ("status", "False"),
    )
    assert healthy[unreachable] == 1


def test_alert_kinds_are_named() -> None:
    alert = Alert(target="worker/w", severity=Severity.CRITICAL, message="on another chain: x")
    assert alert_kind(alert) == "wrong_genesis"
    assert alert_kind(Alert(target="pool/p", severity=Severity.WARN, message="odd")) == "pool"
    named = Alert(target="account/a", severity=Severity.WARN, message="x", name="FundingRunwayLow")
    assert alert_kind(named) == "funding_runway_low"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9100", ("127.0.0.1", 9100)), ("[::1]:91", ("::1", 91)), (":9", ("0.0.0.0", 9))],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9100", "host:", "host:99999", "host:http"])
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(text)


def exposed_names(metrics: PoolMetrics) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        names |= {s.name for s in family.samples}
    return names


def referenced(text: str) -> set[str]:
    return set(re.findall(r"\bpoolkeeper_[a-z_]+\b", text))


def test_dashboard_and_alert_rules_use_only_exposed_metrics(fed: PoolMetrics) -> None:
    names = exposed_names(fed)
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    assert dashboard["panels"] and dashboard["title"]
    exprs = " ".join(
        t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t
    )
    assert referenced(exprs) and referenced(exprs) <= names, referenced(exprs) - names
    rules = YAML(typ="safe").load((DOCS / "prometheus-alerts.yml").read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
    for wanted in (
        "PoolkeeperChainStalled",
        "PoolkeeperWorkerUnresponsive",
        "PoolkeeperBalanceCritical",
        "PoolkeeperLoopNotPassing",
        "PoolkeeperRelayLagging",
    ):
        assert wanted in alerts
    used = referenced(" ".join(alerts.values()))
    assert used <= names, used - names


def test_every_exposed_metric_is_documented(fed: PoolMetrics) -> None:
    documented = referenced((DOCS / "metrics.md").read_text())
    families = {
        f.name for f in text_string_to_metric_families(generate_latest(fed.registry).decode())
    }
    # ``X_created`` (a counter's start time) comes with every counter and histogram X.
    bases = {n.removesuffix("_created") for n in families}
    missing = {n for n in bases if not ({n, n + "_total"} & documented)}
    assert not missing, missing


def test_a_second_pass_shows_what_changed_and_reuses_the_samples_that_did_not() -> None:
    metrics = PoolMetrics(CollectorRegistry())
    desired, result = world()
    metrics.on_pass(result, desired)

    def samples(name: str) -> dict[tuple[str, ...], object]:
        (family,) = [f for f in metrics._snapshot.families if f.name == name]
        return {tuple(s.labels.values()): s for s in family.samples}

    up, lag = samples("poolkeeper_pruntime_up"), samples("poolkeeper_relay_lag_blocks")
    # w0 moved 5 blocks on (its lag changes), w1 still unreachable (nothing changes).
    observed = result.observed
    moved = observed.pruntimes["http://w0"].model_copy(
        update={"info": PRuntimeInfo(initialized=True, blocknum=115, public_key="aa" * 32)}
    )
    second = observed.model_copy(update={"pruntimes": {**observed.pruntimes, "http://w0": moved}})
    metrics.on_pass(PassResult(second, result.plan, conditions=result.conditions), desired)
    m = scrape(metrics)
    assert m["poolkeeper_relay_lag_blocks"] == {(("pool", "pool-a"), ("worker", "w0")): 3}
    assert m["poolkeeper_pruntime_up"] == {(("worker", "w0"),): 1, (("worker", "w1"),): 0}
    assert samples("poolkeeper_pruntime_up")[("w1",)] is up[("w1",)]
    assert samples("poolkeeper_pruntime_up")[("w0",)] is up[("w0",)]
    assert samples("poolkeeper_relay_lag_blocks")[("w0", "pool-a")] is not lag[("w0", "pool-a")]
