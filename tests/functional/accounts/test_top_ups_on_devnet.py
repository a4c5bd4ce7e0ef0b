"""Top-ups and balance alerts end to end on the devnet chain, through ``Reconciler``.

Accounts are derived from a test mnemonic and funded by the devnet genesis. A pass
observes the chain, plans with the pure planner and sends ``transfer_keep_alive`` from
the funding account through the journaled executor. Checked: an account below its
``to`` is topped up; repeated passes stop at ``max_per_day`` (counted in the journal,
which survives a new process); a funding account near its floor (its own
``warn_below``) is not drained: an alert stands instead; and the webhook hears the
alerts and the recovery.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from poolkeeper.app import build_reconciler
from poolkeeper.apply.executor import Job
from poolkeeper.chain.ports import CallSpec
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import Mnemonic, derive_keys
from poolkeeper.loop import Reconciler
from poolkeeper.model.actions import ActionKind, Plan
from poolkeeper.model.desired import Desired
from poolkeeper.plan import PlanPolicy
from poolkeeper_devnet.chain.server import DevnetChain
from tests.functional._webhook import Hook

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
PHA = 10**12
LABELS = ("funding", "operator//pool-a", "funding//poor", "relay//0")
KEYS = derive_keys(Mnemonic(PHRASE), list(LABELS), 30)
ADDR = {label: key.address for label, key in KEYS.items()}
ALICE = "45R2pfjQUW2s9PQRHU48HQKLKHVMaDja7N3wpBtmF28UYDs2"


def inventory_text(chain_url: str, state_dir: Path, webhook: str | None) -> str:
    alerts = f"  alerts: {{webhook_url: '{webhook}', debounce_seconds: 0}}\n" if webhook else ""
    return f"""\
settings:
  network: devnet
  chain: {{endpoints: ['{chain_url}']}}
  state_dir: '{state_dir}'
  warn_below: 20 PHA
  critical_below: 5 PHA
{alerts}accounts:
  - name: funding
    role: funding
    derivation: funding
    address: {ADDR["funding"]}
    warn_below: 1000 PHA
    critical_below: 100 PHA
  - name: operator-a
    role: operator
    derivation: operator//pool-a
    address: {ADDR["operator//pool-a"]}
    top_up: {{from: funding, to: 100 PHA, max_per_day: 150 PHA}}
  - name: poor-funding
    role: funding
    derivation: funding//poor
    address: {ADDR["funding//poor"]}
    warn_below: 1000 PHA
    critical_below: 100 PHA
  - name: relay
    role: relay_signer
    derivation: relay//0
    address: {ADDR["relay//0"]}
    top_up: {{from: poor-funding, to: 50 PHA, max_per_day: 500 PHA}}
"""


GENESIS: dict[str, Any] = {
    "chain_name": "Khala Devnet",
    "block_time": "0.1s",
    "finality_lag": 1,
    "balances": {
        "//Alice": "1000000 PHA",
        ADDR["funding"]: "10000 PHA",
        ADDR["operator//pool-a"]: "2 PHA",
        ADDR["funding//poor"]: "1010 PHA",
        ADDR["relay//0"]: "1 PHA",
    },
}


@pytest.fixture
def devnet() -> Iterator[DevnetChain]:
    handle = DevnetChain.start(GENESIS)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def desired_for(tmp_path: Path, devnet: DevnetChain, hook: Hook | None) -> Desired:
    inventory = tmp_path / "inventory"
    inventory.mkdir(exist_ok=True)
    (inventory / "inventory.yaml").write_text(
        inventory_text(devnet.url, tmp_path / "state", hook.url if hook else None),
        encoding="utf-8",
    )
    return load_inventory(inventory)


def reconciler(desired: Desired, tmp_path: Path) -> Reconciler:
    return build_reconciler(desired, mnemonic=Mnemonic(PHRASE), state_dir=tmp_path / "state")


def top_ups(plan: Plan) -> dict[str, int]:
    return {a.target: a.amount or 0 for a in plan.actions if a.kind is ActionKind.TOP_UP}


def alert_texts(plan: Plan, target: str) -> list[str]:
    return [f"{a.severity.value}: {a.message}" for a in plan.alerts if a.target == target]


async def test_top_up_stops_at_the_daily_cap_across_restarts(
    devnet: DevnetChain, tmp_path: Path
) -> None:
    desired = desired_for(tmp_path, devnet, None)
    policy = PlanPolicy()
    operator, funding = ADDR["operator//pool-a"], ADDR["funding"]
    rec = reconciler(desired, tmp_path)
    try:
        first = await rec.reconcile_once(policy)
        assert top_ups(first.plan)["account/operator-a"] == 98 * PHA
        assert all(r.ok for r in first.results), first.results
        assert alert_texts(first.plan, "account/operator-a") == [
            "critical: balance 2 PHA is below the critical threshold 5 PHA"
        ]
        state = await rec.chain.read_state((), (operator, funding))
        assert state.accounts[operator].free == 100 * PHA
        # The operator spends; the next pass may only send what is left of the cap.
        spend = CallSpec(
            "Balances", "transfer_keep_alive", {"dest": {"Id": ALICE}, "value": 90 * PHA}
        )
        (spent,) = await rec.executor.execute_jobs([Job("spend", spend, "operator-a")])
        assert spent.ok, spent.error
        second = await rec.reconcile_once(policy)
        (action,) = [a for a in second.plan.actions if a.target == "account/operator-a"]
        assert action.amount == 52 * PHA
        assert "limited by the daily cap" in action.reason
        assert all(r.ok for r in second.results), second.results
        third = await rec.reconcile_once(policy)
        assert "account/operator-a" not in top_ups(third.plan)
        assert any("top-up cap reached" in t for t in alert_texts(third.plan, "account/operator-a"))
        assert rec.journal.topped_up_on(today()) == {
            operator: 150 * PHA,
            ADDR["relay//0"]: 10 * PHA,
        }
        funding_left = (await rec.chain.read_state((), (funding,))).accounts[funding].free
        operator_left = (await rec.chain.read_state((), (operator,))).accounts[operator].free
    finally:
        await rec.close()
    # 150 PHA in two transfers plus two fees (a small fraction of a PHA each).
    assert 10_000 * PHA - 151 * PHA < funding_left < 10_000 * PHA - 150 * PHA
    assert 61 * PHA < operator_left < 62 * PHA
    # A new process over the same state directory reads the journal: still capped.
    again = reconciler(desired_for(tmp_path, devnet, None), tmp_path)
    try:
        fourth = await again.reconcile_once(policy)
        assert fourth.observed.topped_up_today[operator] == 150 * PHA
        assert "account/operator-a" not in top_ups(fourth.plan)
        assert any(
            "top-up cap reached: 150 PHA of 150 PHA" in t
            for t in alert_texts(fourth.plan, "account/operator-a")
        )
        assert (await again.chain.read_state((), (funding,))).accounts[funding].free == (
            funding_left
        )
    finally:
        await again.close()


def posted(hook: Hook, index: int) -> set[tuple[str, str, str]]:
    return {(e["event"], e["target"], e["severity"]) for e in hook.posts[index]["events"]}


async def test_funding_near_its_floor_is_not_drained_and_the_webhook_hears_it(
    devnet: DevnetChain, hook: Hook, tmp_path: Path
) -> None:
    desired = desired_for(tmp_path, devnet, hook)
    policy = PlanPolicy()
    poor, relay = ADDR["funding//poor"], ADDR["relay//0"]
    rec = reconciler(desired, tmp_path)
    try:
        first = await rec.reconcile_once(policy)
        (action,) = [a for a in first.plan.actions if a.target == "account/relay"]
        assert action.amount == 10 * PHA
        assert "limited by poor-funding's floor 1000 PHA" in action.reason
        assert all(r.ok for r in first.results), first.results
        after_first = (await rec.chain.read_state((), (poor,))).accounts[poor].free
        # The transfer stops at the floor; only its fee goes below it.
        assert 999 * PHA < after_first < 1000 * PHA
        second = await rec.reconcile_once(policy)
        assert "account/relay" not in top_ups(second.plan)
        assert any(
            "cannot top up from poor-funding: it would go below its floor 1000 PHA" in t
            for t in alert_texts(second.plan, "account/relay")
        )
        assert alert_texts(second.plan, "account/poor-funding")[0].startswith("warn: balance 999.")
        third = await rec.reconcile_once(policy)
        assert "account/relay" not in top_ups(third.plan)
        assert (await rec.chain.read_state((), (poor,))).accounts[poor].free == after_first
        # Someone refills the relay signer: its alerts clear and the webhook hears it once.
        refill = CallSpec(
            "Balances", "transfer_keep_alive", {"dest": {"Id": relay}, "value": 50 * PHA}
        )
        (done,) = await rec.executor.execute_jobs([Job("refill", refill, "funding")])
        assert done.ok, done.error
        fourth = await rec.reconcile_once(policy)
        assert alert_texts(fourth.plan, "account/relay") == []
        await rec.reconcile_once(policy)
    finally:
        await rec.close()
    assert len(hook.posts) == 3, hook.posts
    assert posted(hook, 0) == {
        ("alert", "account/relay", "critical"),
        ("alert", "account/operator-a", "critical"),
    }
    assert posted(hook, 1) == {
        ("recovered", "account/relay", "critical"),
        ("recovered", "account/operator-a", "critical"),
        ("alert", "account/relay", "warn"),
        ("alert", "account/poor-funding", "warn"),
    }
    relay_warns = [e["message"] for e in hook.posts[1]["events"] if e["target"] == "account/relay"]
    assert any("would go below its floor" in m for m in relay_warns)
    assert any(m.startswith("balance 11 PHA") for m in relay_warns)
    assert posted(hook, 2) == {("recovered", "account/relay", "warn")}
    assert len(hook.posts[2]["events"]) == 2
    assert all(p["format_version"] == 1 for p in hook.posts)
    state = json.loads((tmp_path / "state" / "alerts.json").read_text(encoding="utf-8"))
    assert [s["target"] for s in state["standing"]] == ["account/poor-funding"]


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")
