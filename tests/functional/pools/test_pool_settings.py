"""A pool's cap and commission kept as the inventory says, on the devnet over the network.

``apply`` sets the declared cap and commission of existing pools (signed by the owner:
the operator's StakePoolManager proxy may not make these calls) and of a pool it creates,
in the same run; a later inventory change is planned as ``~`` and applied; a change made
on chain by someone else shows as drift and is not undone. A created pool's pid is used
by ``plan``, ``status`` and ``list`` too: none of them proposes creating it again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from substrateinterface import Keypair, SubstrateInterface

from tests.functional.apply._world import PHRASE, World

PHA = 10**12
POOLS = """\
pools:
  - {{name: pool-a, pid: 0, owner: owner, operator: operator-a, default_stake: 1000 PHA,
      cap: {cap_a}, commission: {commission_a}}}
  - {{name: pool-b, pid: 1, owner: owner, operator: operator-b, default_stake: 1000 PHA}}
  - {{name: pool-c, create: true, owner: owner, cap: 5000 PHA, commission: 1%}}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("pool-settings"), 2, block_time=0.3, cool_down=3)
    try:
        yield w
    finally:
        w.close()


def write_pools(world: World, cap_a: str, commission_a: str) -> None:
    (world.inventory / "pools.yaml").write_text(
        POOLS.format(cap_a=cap_a, commission_a=commission_a), encoding="utf-8"
    )


def pool_settings(world: World) -> dict[int, tuple[Any, Any]]:
    state = world.chain_state(pids=(0, 1, 2))
    return {pid: (p.cap, p.commission) for pid, p in state.pools.items()}


def pool_kinds(plan: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["kind"], a["target"]) for a in plan["actions"] if a["target"].startswith("pool/")]


def cli(world: World, *args: str) -> str:
    done = world.cli(*args)
    assert done.returncode in (0, 2), done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_declared_settings_are_planned_then_applied_at_creation_too(world: World) -> None:
    write_pools(world, "100000 PHA", "5%")
    plan = world.plan_json()
    assert pool_kinds(plan) == [
        ("set_cap", "pool/pool-a"),
        ("set_payout_pref", "pool/pool-a"),
        ("create_pool", "pool/pool-c"),
    ]
    cap = next(a for a in plan["actions"] if a["kind"] == "set_cap")
    assert (cap["signer"], cap["proxy_for"], int(cap["amount"])) == ("owner", None, 100000 * PHA)
    # live plans carry each call's share of its batch's fee estimate, and the total
    fees = [int(a["fee"]) for a in plan["actions"] if a["signer"] is not None]
    assert fees and all(fee > 0 for fee in fees), plan["actions"]
    assert int(plan["summary"]["fee_total"]) == sum(fees)
    output = world.apply()
    assert "FAILED" not in output, output
    assert pool_settings(world) == {
        0: (100000 * PHA, 50_000),
        1: (None, None),
        2: (5000 * PHA, 10_000),
    }
    # the created pool (pid 2, from the journal) is not proposed again by any command
    after = world.plan_json()
    assert pool_kinds(after) == [], after["actions"]
    assert not any("no pid" in a["message"] for a in after["alerts"]), after["alerts"]
    status = json.loads(cli(world, "status", str(world.inventory), "--json"))
    assert "create_pool" not in json.dumps(status)
    listing = cli(world, "list", "pools", str(world.inventory), "--format", "json")
    pool_c = next(p for p in json.loads(listing)["pools"] if p["name"] == "pool-c")
    assert (pool_c["pid"], pool_c["on_chain"], pool_c["cap_plancks"]) == (2, True, 5000 * PHA)
    assert pool_c["commission_permill"] == 10_000 and pool_c["alerts"] == [], pool_c


def test_an_inventory_change_is_planned_as_a_change_and_converges(world: World) -> None:
    write_pools(world, "120000 PHA", "7.5%")
    plan = world.plan_json()
    changes = [a for a in plan["actions"] if a["target"] == "pool/pool-a"]
    assert [(a["kind"], int(a["amount"])) for a in changes] == [
        ("set_cap", 120000 * PHA),
        ("set_payout_pref", 75_000),
    ]
    assert "cap on chain is 100000 PHA, the inventory says 120000 PHA" in changes[0]["reason"]
    assert plan["summary"]["change"] >= 2
    output = world.apply()
    # apply's plan shows each call's fee share and the total before asking
    assert "~ set_cap (pid 0, 120000 PHA, fee ≈ " in output, output[:3000]
    assert "Fees ≈ " in output and "(estimated); stake locked 0 PHA, released 0 PHA." in output
    assert pool_settings(world)[0] == (120000 * PHA, 75_000)
    assert pool_kinds(world.plan_json()) == []


def test_a_change_on_chain_by_someone_else_is_drift_not_undone(world: World) -> None:
    owner = Keypair.create_from_uri(PHRASE + "//poolkeeper//owner", ss58_format=30)
    assert owner.ss58_address == world.addresses["owner"]
    substrate = SubstrateInterface(url=world.chain.url)
    try:
        call = substrate.compose_call(
            "PhalaStakePoolv2", "set_cap", {"pid": 0, "cap": 150000 * PHA}
        )
        receipt = substrate.submit_extrinsic(
            substrate.create_signed_extrinsic(call, owner), wait_for_inclusion=True
        )
        assert receipt.is_success, receipt.error_message
    finally:
        substrate.close()
    plan = world.plan_json()
    assert pool_kinds(plan) == []
    drift = [d["message"] for d in plan["drift"] if d["target"] == "pool/pool-a"]
    assert drift == [
        "cap on chain is 150000 PHA, the inventory says 120000 PHA: changed on chain by "
        "someone else (self_heal is off)"
    ]
    text = cli(world, "plan", str(world.inventory))
    assert "changed on chain by someone else" in text
