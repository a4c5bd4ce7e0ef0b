"""Top-ups and balance alerts against a real Substrate runtime (chopsticks, Asset Hub).

The same product path as on the devnet (``Reconciler.reconcile_once``: observe, plan,
journaled executor sending ``Balances.transfer_keep_alive``), but executed by a real
runtime's ``pallet_balances``, fees and all. Accounts are derived from a test
mnemonic and funded with ``dev_setStorage``.

This chain uses its own SS58 prefix (read from ``System.SS58Prefix``), not Khala's 30,
which the inventory loader enforces. The test therefore builds ``Desired`` directly,
with the accounts' addresses encoded in the chain's prefix (the public keys are what
poolkeeper derives; only the address text differs). Nothing in the product is bent
for it: observation keys accounts by the address given, and signing uses the chain's
own prefix. Marked ``realnode``; skipped with the reason when chopsticks is not
installed, failed under CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolkeeper.app import build_reconciler
from poolkeeper.apply.executor import Job
from poolkeeper.chain.ports import CallSpec
from poolkeeper.keys import Mnemonic, derive_keys
from poolkeeper.model.actions import ActionKind, Plan
from poolkeeper.model.desired import (
    AccountRole,
    AccountSpec,
    ChainSettings,
    Desired,
    Settings,
    TopUpPolicy,
)
from poolkeeper.model.ss58 import encode_address
from poolkeeper.plan import PlanPolicy
from tests.peers import ChainPeer, chopsticks_peer
from tests.realnode import _chopsticks

pytestmark = [pytest.mark.realnode, pytest.mark.slow]

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
LABELS = ("funding", "operator//pool-a", "funding//poor", "relay//0")
KEYS = derive_keys(Mnemonic(PHRASE), list(LABELS), 30)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainPeer]:
    reason = _chopsticks.unavailable_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"real-runtime tests are required under CI: {reason}")
        pytest.skip(f"real-runtime tests skipped: {reason}")
    with chopsticks_peer(tmp_path_factory.mktemp("chopsticks")) as peer:
        yield peer


def address(peer: ChainPeer, label: str) -> str:
    return encode_address(KEYS[label].public_key, peer.ss58_format)


def desired_for(peer: ChainPeer) -> Desired:
    unit = peer.unit
    return Desired(
        settings=Settings(
            network="devnet",
            chain=ChainSettings(endpoints=(peer.url,)),
            warn_below=20 * unit,
            critical_below=5 * unit,
        ),
        accounts=(
            AccountSpec(
                name="funding",
                role=AccountRole.FUNDING,
                derivation="funding",
                address=address(peer, "funding"),
                warn_below=1000 * unit,
                critical_below=100 * unit,
            ),
            AccountSpec(
                name="operator-a",
                role=AccountRole.OPERATOR,
                derivation="operator//pool-a",
                address=address(peer, "operator//pool-a"),
                top_up=TopUpPolicy(from_account="funding", to=100 * unit, max_per_day=150 * unit),
            ),
            AccountSpec(
                name="poor-funding",
                role=AccountRole.FUNDING,
                derivation="funding//poor",
                address=address(peer, "funding//poor"),
                warn_below=1000 * unit,
                critical_below=100 * unit,
            ),
            AccountSpec(
                name="relay",
                role=AccountRole.RELAY_SIGNER,
                derivation="relay//0",
                address=address(peer, "relay//0"),
                top_up=TopUpPolicy(
                    from_account="poor-funding", to=50 * unit, max_per_day=500 * unit
                ),
            ),
        ),
    )


def top_ups(plan: Plan) -> dict[str, int]:
    return {a.target: a.amount or 0 for a in plan.actions if a.kind is ActionKind.TOP_UP}


def alerts_of(plan: Plan, target: str) -> list[str]:
    return [f"{a.severity.value}: {a.message}" for a in plan.alerts if a.target == target]


async def test_top_ups_cap_and_funding_floor_on_a_real_runtime(
    chain: ChainPeer, tmp_path: Path
) -> None:
    unit = chain.unit
    desired = desired_for(chain)
    operator, funding = address(chain, "operator//pool-a"), address(chain, "funding")
    poor, relay = address(chain, "funding//poor"), address(chain, "relay//0")
    chain.fund(funding, 10_000 * unit)
    chain.fund(operator, 2 * unit)
    chain.fund(poor, 1010 * unit)
    chain.fund(relay, 1 * unit)
    alice = chain.dev_accounts["Alice"].ss58_address
    policy = PlanPolicy()
    rec = build_reconciler(
        desired, mnemonic=Mnemonic(PHRASE), state_dir=tmp_path, chain_url=chain.url
    )
    try:
        first = await rec.reconcile_once(policy)
        assert top_ups(first.plan) == {"account/operator-a": 98 * unit, "account/relay": 10 * unit}
        assert all(r.ok for r in first.results), first.results
        assert "critical: balance 2" in alerts_of(first.plan, "account/operator-a")[0]
        state = (await rec.chain.read_state((), (operator, poor, relay))).accounts
        assert state[operator].free == 100 * unit
        assert state[relay].free == 11 * unit
        # The funding transfer stops at the floor; only the runtime's fee goes below it.
        poor_after = state[poor].free
        assert 999 * unit < poor_after < 1000 * unit
        spend = CallSpec(
            "Balances", "transfer_keep_alive", {"dest": {"Id": alice}, "value": 90 * unit}
        )
        (spent,) = await rec.executor.execute_jobs([Job("spend", spend, "operator-a")])
        assert spent.ok, spent.error
        second = await rec.reconcile_once(policy)
        assert top_ups(second.plan) == {"account/operator-a": 52 * unit}
        assert all(r.ok for r in second.results), second.results
        assert any("would go below its floor" in t for t in alerts_of(second.plan, "account/relay"))
        third = await rec.reconcile_once(policy)
        assert top_ups(third.plan) == {}
        assert any("top-up cap reached" in t for t in alerts_of(third.plan, "account/operator-a"))
        final = (await rec.chain.read_state((), (poor, operator))).accounts
        assert final[poor].free == poor_after
        assert 61 * unit < final[operator].free < 62 * unit
    finally:
        await rec.close()
    # The cap is counted in the journal: a new process over the same state still stops.
    again = build_reconciler(
        desired, mnemonic=Mnemonic(PHRASE), state_dir=tmp_path, chain_url=chain.url
    )
    try:
        fourth = await again.reconcile_once(policy)
        assert fourth.observed.topped_up_today[operator] == 150 * unit
        assert top_ups(fourth.plan) == {}
    finally:
        await again.close()
