"""Conditions on the devnet, through ``status --json``: a pRuntime that goes down keeps its
chain state (its key is remembered), and a pRuntime initialized on another chain is named
as such, alerted, and gets no relay."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from poolkeeper.app import build_reconciler
from poolkeeper.chain import SubstrateChain
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import Mnemonic
from tests.functional.apply._world import PHRASE, World


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("conditions"), 3, block_time=0.3, cool_down=3)
    try:
        w.apply()
        yield w
    finally:
        w.close()


def status(world: World) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(status_text(world, "--json"))
    return document


def status_text(world: World, *args: str) -> str:
    done = subprocess.run(
        world.command("status", str(world.inventory), *args),
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def row(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in document["workers"] if r["worker"] == name)
    return found


def test_a_down_pruntime_keeps_its_chain_state(world: World) -> None:
    key = world.sim.simulator.identity(0).public.hex()
    world.sim.set_fault(0, "unreachable")
    try:
        doc = status(world)
        text = status_text(world)
    finally:
        world.sim.set_fault(0, "clear")
    w0 = row(doc, "w00")
    assert w0["error"], w0
    assert (w0["pubkey"], w0["phase"], w0["session_state"]) == (key, "Computing", "WorkerIdle")
    assert w0["stake"] == 1000 * 10**12
    assert w0["conditions"]["Healthy"]["reason"] == "Unreachable"
    assert w0["conditions"]["Computing"]["status"] == "True"
    assert w0["conditions"]["InPool"]["status"] == "True"
    assert row(doc, "w01")["conditions"]["Healthy"]["status"] == "True"
    assert "\nconditions:\n  w00: Unreachable since " in text, text
    assert "\naccounts:\n" in text and "relay-signer" in text, text
    assert "[warn] worker/w00: pRuntime unreachable" in text, text
    balances = {a["address"]: a["free"] for a in doc["accounts"]}
    assert set(balances) == set(world.addresses.values())

    async def on_chain() -> dict[str, int]:
        adapter = SubstrateChain(world.chain.url)
        try:
            state = await adapter.read_state((), sorted(balances))
        finally:
            await adapter.close()
        return {a.address: a.free for a in state.accounts.values()}

    chain = asyncio.run(on_chain())
    # The relay signer may pay a fee between the two reads; the others do not move.
    assert {a: f for a, f in balances.items() if f == chain[a]}, (balances, chain)
    assert all(abs(balances[a] - chain[a]) < 10**12 for a in balances), (balances, chain)
    assert any(
        a["target"] == "worker/w00" and "unreachable" in a["message"] for a in doc["alerts"]
    ), doc["alerts"]


def test_a_pruntime_on_another_genesis_is_named_alerted_and_not_relayed(world: World) -> None:
    world.sim.set_fault(1, "wrong_genesis")
    doc = status(world)
    healthy = row(doc, "w01")["conditions"]["Healthy"]
    assert (healthy["reason"], healthy["severity"]) == ("WrongGenesis", "critical"), healthy
    assert row(doc, "w01")["conditions"]["Synced"]["reason"] == "WrongGenesis"
    [alert] = [a for a in doc["alerts"] if a["target"] == "worker/w01"]
    assert alert["severity"] == "critical" and "another chain" in alert["message"]
    assert row(doc, "w02")["conditions"]["Healthy"]["status"] == "True"

    async def relays() -> set[str]:
        desired = load_inventory(world.inventory)
        rec = build_reconciler(desired, mnemonic=Mnemonic(PHRASE), state_dir=world.state_dir)
        try:
            return set(rec.relay_plan(await rec.observe()))
        finally:
            await rec.close()

    wanted = asyncio.run(relays())
    assert "w01" not in wanted and {"w00", "w02"} <= wanted
    plan = world.plan_json()
    assert not [a for a in plan["actions"] if a["target"] == "worker/w01"], plan["actions"]
